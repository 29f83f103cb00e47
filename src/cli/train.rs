//! `ganlab train <model>`: the book's defaults, every output in one folder.

use super::settings::{default_dataset, RunFlags, Settings};
use super::GpuFlags;
use clap::Args;
use ganlab::data::{self, Dataset, LoadOptions};
use ganlab::device::CounterSnapshot;
use ganlab::eval::classifier::Classifier;
use ganlab::eval::report::TrainingEval;
use ganlab::eval::toy::ToyEval;
use ganlab::models;
use ganlab::models::progan::ProGanConfig;
use ganlab::models::{Trainable, CLASSES};
use ganlab::train::trainer::{checkpoint_to_resume, CHECKPOINT};
use ganlab::train::trainer::{train_with_eval, Evaluator};
use ganlab::train::{memory, TrainConfig};
use ganlab::{Device, Result, Rng};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct TrainArgs {
    /// gan, dcgan, cgan, wgan, wgan-gp, progan, or dcgan64 (the DCGAN paper's and PyTorch
    /// example's 64x64 or 32x32 model, for colour images).
    model: String,
    #[command(flatten)]
    run: RunFlags,
    /// A folder holding the dataset's files (MNIST-like: the four IDX files; cifar10: the
    /// archive; folder: the images, in subfolders or not); else GANLAB_DATA, cache, download.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// auto (a hardware GPU, else the CPU), gpu (any adapter, software included) or cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Output folder (default runs/<model>-<dataset>); a resumed run writes where it is.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder from its checkpoint, with the settings it was started
    /// with (--steps and the intervals may change; other flags must match or be left out).
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Start over in an --out folder that already holds a run: its checkpoint, metrics.csv,
    /// losses.png and samples/ are deleted first (nothing else in the folder is touched).
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Log FID and Inception Score every K steps (needs `ganlab train-classifier` first); 0,
    /// the default, never.
    #[arg(long, default_value_t = 0)]
    eval_every: u64,
    /// Samples per training-time evaluation (2 to 100,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=100_000))]
    eval_n: usize,
    /// The evaluation classifier (default classifiers/<dataset>.safetensors).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// No progress bar (for logs and CI).
    #[arg(long)]
    quiet: bool,
    /// At the end, print what the GPU did per step: dispatches, compute passes, submits,
    /// buffers and bind groups created, and the buffer pool's peak.
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    gpu: GpuFlags,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let out_dir = out_dir(args)?;
    let device = args.gpu.device(&args.device)?;
    // Refused now if the folder holds a run; cleared (--overwrite) only once every other
    // check has passed, so a refused command deletes nothing.
    if args.resume.is_none() && !args.overwrite {
        claim_out_dir(&out_dir, false)?;
    }
    let (run, flags, dataset, source) = settle_and_load(args)?;
    check_classes(&args.model, &run, &dataset)?;
    let cfg = config(args, &run, &flags, &out_dir);
    let mut model = build_model(&args.model, &run, &dataset, &device)?;
    println!(
        "training {} on {} ({} images; {source}) on {device:?} -> {}",
        args.model,
        run.dataset,
        dataset.train.n,
        out_dir.display()
    );
    let mut eval = RunEval::new(args, &run, &dataset, &out_dir, &device)?;
    if args.resume.is_none() && args.overwrite {
        claim_out_dir(&out_dir, true)?;
    }
    let before = gpu_counters(&device);
    let summary = train_with_eval(&mut *model, &dataset.train, &cfg, eval.evaluator())?;
    if args.profile {
        print_run_profile(&device, before, summary.steps_run);
    }
    println!("{summary}");
    if let RunEval::Toy(toy) = &eval {
        print_toy_coverage(toy, &mut *model, summary.last_step)?;
    }
    println!(
        "metrics: {}, loss plot: {}",
        out_dir.join("metrics.csv").display(),
        out_dir.join("losses.png").display()
    );
    Ok(())
}

/// The run's folder: --resume's, else --out, else runs/<model>-<dataset>.
fn out_dir(args: &TrainArgs) -> Result<PathBuf> {
    if let (Some(out), Some(dir)) = (&args.out, &args.resume) {
        let same = |p: &PathBuf| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        if same(out) != same(dir) {
            return Err(ganlab::Error::Invalid(format!(
                "--out {} with --resume {}: a resumed run writes into its own folder; drop --out",
                out.display(),
                dir.display()
            )));
        }
    }
    Ok(args
        .resume
        .clone()
        .or_else(|| args.out.clone())
        .unwrap_or_else(|| {
            let dataset = args
                .run
                .dataset
                .as_deref()
                .unwrap_or(default_dataset(&args.model));
            PathBuf::from(format!("runs/{}-{dataset}", args.model))
        }))
}

/// The run's settings (a resumed run's from its checkpoint) and its data, checked against
/// them, with where the data came from.
fn settle_and_load(args: &TrainArgs) -> Result<(Settings, RunFlags, Dataset, String)> {
    let mut flags = match &args.resume {
        Some(dir) => args.run.resumed(&checkpoint_to_resume(dir)?)?,
        None => args.run.clone(),
    };
    let run = flags.settle(&args.model)?;
    let mut opts = LoadOptions::from_env();
    opts.data_dir = args.data_dir.clone();
    if run.dataset == "folder" {
        // A folder run keeps its folder; a resumed one reads it again unless told otherwise.
        opts.data_dir = opts.data_dir.or(flags.folder.clone());
        flags.folder = opts
            .data_dir
            .as_ref()
            .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()));
    }
    opts.images = run.images;
    let dataset = data::load(&run.dataset, &opts)?;
    let source = match &dataset.source.dir {
        Some(dir) => format!("from {}", dir.display()),
        None => dataset.source.rule.to_string(),
    };
    flags.check_data(dataset.identity(), &source)?;
    Ok((run, flags, dataset, source))
}

/// cgan draws one embedding row and one grid row per class: only data with that many.
fn check_classes(model: &str, run: &Settings, dataset: &Dataset) -> Result<()> {
    let classes = dataset.classes.len();
    if model == "cgan" && run.toy.is_none() && classes != CLASSES {
        return Err(ganlab::Error::Invalid(format!(
            "cgan is built for {CLASSES} classes (one embedding row and one grid row each); \
             {} has {classes} ({}): train an unconditional model on it, such as dcgan64",
            run.dataset,
            dataset.classes.join(", ")
        )));
    }
    Ok(())
}

fn config(args: &TrainArgs, run: &Settings, flags: &RunFlags, out_dir: &Path) -> TrainConfig {
    TrainConfig {
        steps: run.steps,
        batch_size: run.batch_size,
        sample_every: run.sample_every,
        checkpoint_every: run.checkpoint_every,
        log_every: run.log_every,
        seed: run.seed,
        out_dir: out_dir.to_path_buf(),
        resume: args.resume.is_some(),
        sampling: run.sampling,
        progress: !args.quiet,
        // Toy runs are always scored and plotted, at the sample interval.
        eval_every: match run.toy {
            Some(_) => run.sample_every,
            None => args.eval_every,
        },
        settings: flags.to_json(),
    }
}

/// The model, once its training step is known to fit the device's memory, with --lr.
fn build_model(
    model: &str,
    run: &Settings,
    dataset: &Dataset,
    device: &Device,
) -> Result<Box<dyn Trainable>> {
    let opts = models::Options {
        style: run.style,
        progan: run.progan,
        image: item_shape(&dataset.train.item_shape)?,
        widths: run.widths,
    };
    check_memory(model, run, &opts, &dataset.train.item_shape, device)?;
    let mut built = models::build(model, &run.dataset, &opts, &mut Rng::seed(run.seed), device)?;
    if let Some(lr) = run.lr {
        built.set_learning_rate(lr)?;
    }
    Ok(built)
}

/// What scores the generator during the run: the toy sets' mode coverage, FID and IS with
/// the evaluation classifier (--eval-every), or nothing.
enum RunEval {
    Toy(ToyEval),
    Classifier(TrainingEval),
    None,
}

impl RunEval {
    fn new(
        args: &TrainArgs,
        run: &Settings,
        dataset: &Dataset,
        out_dir: &Path,
        device: &Device,
    ) -> Result<RunEval> {
        if let Some(spec) = run.toy.clone() {
            return Ok(RunEval::Toy(ToyEval {
                spec,
                data: dataset.test.all_values().into_owned(),
                out_dir: out_dir.join("samples"),
                device: device.clone(),
            }));
        }
        if args.eval_every == 0 {
            return Ok(RunEval::None);
        }
        ganlab::eval::classifier::check_scored(&run.dataset)?;
        let path = args
            .classifier
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("classifiers/{}.safetensors", run.dataset)));
        if !path.exists() {
            return Err(ganlab::Error::Invalid(format!(
                "--eval-every needs a classifier at {}: run `ganlab train-classifier --dataset {}` first",
                path.display(),
                run.dataset
            )));
        }
        let classifier = Classifier::load_for(&path, &run.dataset, device)?;
        let reference = classifier.outputs(&dataset.test.all_values(), device)?;
        Ok(RunEval::Classifier(TrainingEval {
            classifier,
            reference,
            n: args.eval_n,
            device: device.clone(),
        }))
    }

    fn evaluator(&mut self) -> Option<&mut dyn Evaluator> {
        match self {
            RunEval::Toy(t) => Some(t),
            RunEval::Classifier(e) => Some(e),
            RunEval::None => None,
        }
    }
}

/// --profile: what the GPU did per step since `before`, and the most dispatched kernels.
fn print_run_profile(device: &Device, before: Option<CounterSnapshot>, steps: u64) {
    let Device::Gpu(ctx) = device else {
        println!("profile: the CPU path has no GPU counters");
        return;
    };
    if let Some(before) = before {
        print_profile(&ctx.counters().since(&before), steps);
    }
    let top: Vec<String> = ctx
        .kernel_dispatches()
        .iter()
        .take(12)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!("most dispatched kernels (whole run): {}", top.join(", "));
}

/// A toy run's final mode coverage, and where its last samples-against-data plot is.
fn print_toy_coverage(toy: &ToyEval, model: &mut dyn Trainable, step: u64) -> Result<()> {
    let cov = toy.spec.mode_coverage(&toy.samples(model)?);
    println!(
        "modes covered: {}/{}, high-quality share {:.1}% ({} samples)",
        cov.modes_covered,
        toy.spec.modes.len(),
        100.0 * cov.high_quality_share,
        cov.samples
    );
    println!(
        "samples vs data: {}",
        toy.out_dir
            .join(format!("toy_step_{step:07}.png"))
            .display()
    );
    Ok(())
}

/// The data's items as `[C, H, W]`; toy points (`[d]`) as the book's image shape, which the
/// toy models do not read.
fn item_shape(shape: &[usize]) -> Result<[usize; 3]> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        [_] => Ok(models::gan::MNIST),
        _ => Err(ganlab::Error::Invalid(format!(
            "items of shape {shape:?} are neither images nor toy points"
        ))),
    }
}

fn gpu_counters(device: &Device) -> Option<CounterSnapshot> {
    match device {
        Device::Gpu(ctx) => Some(ctx.counters()),
        Device::Cpu => None,
    }
}

fn print_profile(c: &CounterSnapshot, steps: u64) {
    let per = |v: u64| v as f64 / steps.max(1) as f64;
    println!(
        "profile over {steps} steps (grids and checkpoints included): per step {:.0} dispatches, \
         {:.1} compute passes, {:.1} submits, {:.2} buffers and {:.2} bind groups created; \
         {} pipelines compiled; buffer pool {:.1} MiB, peak {:.1} MiB",
        per(c.dispatches),
        per(c.compute_passes),
        per(c.submits),
        per(c.buffers_created),
        per(c.bind_groups_created),
        c.pipelines_created,
        c.pool_bytes as f64 / (1 << 20) as f64,
        c.peak_pool_bytes as f64 / (1 << 20) as f64
    );
}

/// What a run writes into its folder.
const RUN_FILES: [&str; 4] = [CHECKPOINT, "metrics.csv", "losses.png", "samples"];

/// Refuses a batch whose training step would not fit in the device's memory (measured on the
/// noop backend, see `train::memory`), before anything real is allocated.
fn check_memory(
    model: &str,
    run: &Settings,
    opts: &models::Options,
    item_shape: &[usize],
    device: &Device,
) -> Result<()> {
    let (available, what) = match device {
        Device::Cpu => match memory::host_available() {
            Some(bytes) => (bytes, "this machine"),
            None => return Ok(()),
        },
        Device::Gpu(ctx) if ctx.is_noop() => return Ok(()),
        Device::Gpu(ctx) => (ctx.pool_cap(), "the GPU (its buffer pool cap)"),
    };
    // A schedule of one image per phase: ProGAN reaches its last resolution in two steps.
    let small = models::Options {
        progan: ProGanConfig {
            phase_images: 1,
            ..opts.progan
        },
        ..*opts
    };
    let build = |d: &Device| models::build(model, &run.dataset, &small, &mut Rng::seed(0), d);
    // Batches of 64 and 128: large enough that the pool's size classes round little, and
    // free on the noop backend.
    let need = memory::measure(&build, item_shape, 64, 2)?;
    memory::check_fits(&need, run.batch_size, available, "--batch-size", what)
}

/// A new run may only write into `dir` if no run is there, or `overwrite` says to replace it:
/// a second `train dcgan` must not silently destroy the first one's checkpoint and metrics.
fn claim_out_dir(dir: &Path, overwrite: bool) -> Result<()> {
    let present: Vec<&str> = RUN_FILES
        .into_iter()
        .filter(|f| dir.join(f).symlink_metadata().is_ok())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    if !overwrite {
        return Err(ganlab::Error::Invalid(format!(
            "{} already holds a run ({}): continue it with --resume {}, start over with \
             --overwrite, or choose another --out",
            dir.display(),
            present.join(", "),
            dir.display()
        )));
    }
    for name in present {
        let path = dir.join(name);
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|source| ganlab::Error::Io {
            context: format!("removing the previous run's {}", path.display()),
            source,
        })?;
    }
    Ok(())
}
