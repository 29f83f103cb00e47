//! `ganlab train <model>`: the book's defaults, every output in one folder.

use super::GpuFlags;
use clap::{Args, ValueEnum};
use ganlab::data::{self, LoadOptions, Sampling};
use ganlab::eval::classifier::Classifier;
use ganlab::eval::report::TrainingEval;
use ganlab::eval::toy::ToyEval;
use ganlab::models::progan::{self, ProGanConfig};
use ganlab::models::{self, LoopStyle};
use ganlab::train::trainer::CHECKPOINT;
use ganlab::train::trainer::{train_with_eval, Evaluator};
use ganlab::train::TrainConfig;
use ganlab::{Result, Rng};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum SamplingArg {
    /// Random batches drawn with replacement, as the book does.
    Replacement,
    /// Each epoch visits every image once, in a fresh random order.
    Epoch,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LoopArg {
    /// The book's Keras semantics under TF2 (fakes from G in inference mode, two D updates,
    /// D frozen with batch norm on running statistics in the G step).
    Keras,
    /// The PyTorch DCGAN example's loop (one D update on summed gradients, batch statistics
    /// everywhere).
    Torch,
}

#[derive(Args)]
pub struct TrainArgs {
    /// gan, dcgan, cgan, wgan, wgan-gp or progan.
    model: String,
    /// mnist or fashion-mnist; toy-bimodal or toy-ring (gan, wgan, wgan-gp with small MLPs).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// A folder holding the dataset's four IDX files (else: GANLAB_DATA, cache, download).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Training iterations, each one generator step (default: the book's, 30000 for gan,
    /// 4000 for dcgan and wgan, 20000 for cgan, 30000 for wgan-gp; progan: its 7 phases;
    /// 3000 on toy data).
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Write a 5x5 sample grid every K steps (default: the book's 200 for gan and cgan, 50 for
    /// dcgan and wgan, 100 for wgan-gp, 4 per phase for progan); on toy data, a samples-vs-data
    /// plot with the modes covered every K steps (default 250).
    #[arg(long)]
    sample_every: Option<u64>,
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: u64,
    /// Read losses back from the device and log them every K steps.
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto (a hardware GPU, else the CPU), gpu (any adapter, software included) or cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output folder (default runs/<model>-<dataset>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "replacement")]
    sampling: SamplingArg,
    /// Training-step semantics.
    #[arg(long = "loop", value_enum, default_value = "keras")]
    loop_style: LoopArg,
    /// Log FID and Inception Score every K steps (needs `ganlab train-classifier` first).
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Samples per training-time evaluation.
    #[arg(long, default_value_t = 1000)]
    eval_n: usize,
    /// The evaluation classifier (default classifiers/<dataset>.safetensors).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Learning rate of both networks (default: the model's own: 2e-4 for gan, dcgan and
    /// cgan, 5e-5 wgan, 1e-4 wgan-gp, 1e-3 progan). Give it again with --resume.
    #[arg(long)]
    lr: Option<f32>,
    /// ProGAN: images shown in each fade-in and each stabilise phase (7 phases: 4x4, then
    /// fade + stabilise for 8x8, 16x16, 32x32); the default run is 7 times this.
    #[arg(long, default_value_t = ProGanConfig::default().phase_images)]
    phase_images: u64,
    /// ProGAN: channels at every resolution.
    #[arg(long, default_value_t = ProGanConfig::default().width)]
    width: usize,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    gpu: GpuFlags,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let device = args.gpu.device(&args.device)?;
    let mut opts = LoadOptions::from_env();
    if let Some(dir) = &args.data_dir {
        opts.data_dir = Some(dir.clone());
    }
    let dataset = data::load(&args.dataset, &opts)?;
    let toy_spec = match data::registry::lookup(&args.dataset)? {
        data::Entry::Toy(spec) => Some(spec),
        data::Entry::Images(_) => None,
    };
    let out_dir = args
        .resume
        .clone()
        .or_else(|| args.out.clone())
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-{}", args.model, args.dataset)));
    let mut progan = ProGanConfig {
        phase_images: args.phase_images,
        width: args.width,
        ..ProGanConfig::default()
    };
    let checkpoint = out_dir.join(CHECKPOINT);
    if args.model == progan::KIND && args.resume.is_some() && checkpoint.exists() {
        // The schedule and widths a run started with are the run's, whatever the flags say.
        let saved = ProGanConfig::from_checkpoint(&checkpoint)?;
        if (saved.phase_images, saved.width) != (progan.phase_images, progan.width) {
            println!(
                "resuming with the run's own --phase-images {} --width {} (the flags are ignored)",
                saved.phase_images, saved.width
            );
        }
        progan = saved;
    }
    let batch = args.batch_size as u64;
    let phase_steps = progan.phase_images.div_ceil(batch).max(1);
    let (default_steps, default_sample_every) = match args.model.as_str() {
        _ if toy_spec.is_some() => (3_000, 250),
        "progan" => (
            progan.total_steps(args.batch_size),
            (phase_steps / 4).max(1),
        ),
        "gan" => (30_000, 200),
        "cgan" => (20_000, 200),
        "wgan-gp" => (30_000, 100),
        _ => (4_000, 50),
    };
    let mut cfg = TrainConfig {
        steps: args.steps.unwrap_or(default_steps),
        batch_size: args.batch_size,
        sample_every: args.sample_every.unwrap_or(default_sample_every),
        checkpoint_every: args.checkpoint_every,
        log_every: args.log_every,
        seed: args.seed,
        out_dir: out_dir.clone(),
        resume: args.resume.is_some(),
        sampling: match args.sampling {
            SamplingArg::Replacement => Sampling::WithReplacement,
            SamplingArg::Epoch => Sampling::EpochShuffle,
        },
        progress: !args.quiet,
        eval_every: args.eval_every,
    };
    let opts = models::Options {
        style: match args.loop_style {
            LoopArg::Keras => LoopStyle::Keras,
            LoopArg::Torch => LoopStyle::Torch,
        },
        progan,
    };
    let mut model = models::build(
        &args.model,
        &args.dataset,
        &opts,
        &mut Rng::seed(args.seed),
        &device,
    )?;
    if let Some(lr) = args.lr {
        model.set_learning_rate(lr)?;
    }
    println!(
        "training {} on {} ({} images, {:?}) on {device:?} -> {}",
        args.model,
        args.dataset,
        dataset.train.n,
        dataset.source.dir,
        out_dir.display()
    );
    // Toy runs are always scored and plotted, at the sample interval.
    let mut toy_eval = toy_spec.map(|spec| ToyEval {
        spec,
        data: dataset.test.images.clone(),
        out_dir: out_dir.join("samples"),
        device: device.clone(),
    });
    if toy_eval.is_some() {
        cfg.eval_every = cfg.sample_every;
    }
    let mut evaluator = if toy_eval.is_some() {
        None
    } else if args.eval_every > 0 {
        let path = args
            .classifier
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("classifiers/{}.safetensors", args.dataset)));
        if !path.exists() {
            return Err(ganlab::Error::Invalid(format!(
                "--eval-every needs a classifier at {}: run `ganlab train-classifier --dataset {}` first",
                path.display(),
                args.dataset
            )));
        }
        let classifier = Classifier::load(&path, &device)?;
        let reference = classifier.outputs(&dataset.test.images, &device)?;
        Some(TrainingEval {
            classifier,
            reference,
            n: args.eval_n,
            device: device.clone(),
        })
    } else {
        None
    };
    let evaluator: Option<&mut dyn Evaluator> = match (&mut toy_eval, &mut evaluator) {
        (Some(t), _) => Some(t),
        (None, Some(e)) => Some(e),
        (None, None) => None,
    };
    let summary = train_with_eval(&mut *model, &dataset.train, &cfg, evaluator)?;
    let metrics: Vec<String> = summary
        .last_metrics
        .iter()
        .map(|(n, v)| format!("{n} {v:.4}"))
        .collect();
    println!(
        "{} at step {}: {:.1} images/s; {}",
        if summary.interrupted {
            "interrupted"
        } else {
            "done"
        },
        summary.last_step,
        summary.images_per_s,
        metrics.join(", ")
    );
    println!("checkpoint: {}", summary.checkpoint.display());
    if let Some(grid) = summary.last_grid {
        println!("last sample grid: {}", grid.display());
    }
    if let Some(t) = &toy_eval {
        let cov = t.spec.mode_coverage(&t.samples(&mut *model)?);
        println!(
            "modes covered: {}/{}, high-quality share {:.1}% ({} samples)",
            cov.modes_covered,
            t.spec.modes.len(),
            100.0 * cov.high_quality_share,
            cov.samples
        );
        println!(
            "samples vs data: {}",
            t.out_dir
                .join(format!("toy_step_{:07}.png", summary.last_step))
                .display()
        );
    }
    println!(
        "metrics: {}, loss plot: {}",
        out_dir.join("metrics.csv").display(),
        out_dir.join("losses.png").display()
    );
    Ok(())
}
