//! `ganlab train-classifier` and `ganlab eval`.

use super::GpuFlags;
use clap::Args;
use ganlab::data::idx::{read_idx_file, IdxKind};
use ganlab::data::{self, LoadOptions};
use ganlab::eval::classifier::{check_scored, Classifier};
use ganlab::eval::report::{evaluate, sample_images, table};
use ganlab::models;
use ganlab::{Error, Result, Rng};
use std::path::{Path, PathBuf};

fn default_classifier(dataset: &str) -> PathBuf {
    PathBuf::from(format!("classifiers/{dataset}.safetensors"))
}

fn load_dataset(name: &str, dir: &Option<PathBuf>) -> Result<data::Dataset> {
    let mut opts = LoadOptions::from_env();
    if let Some(d) = dir {
        opts.data_dir = Some(d.clone());
    }
    Ok(data::load(name, &opts)?)
}

#[derive(Args)]
pub struct TrainClassifierArgs {
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Passes over the training set (1 to 1,000).
    #[arg(long, default_value_t = 6, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    epochs: usize,
    /// Images per batch (1 to 65,536).
    #[arg(long, default_value_t = 64, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=65_536))]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to save it (default classifiers/<dataset>.safetensors, where `eval` looks).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    gpu: GpuFlags,
}

pub fn train_classifier(args: &TrainClassifierArgs) -> Result<()> {
    if let data::Entry::Toy(_) = data::registry::lookup(&args.dataset)? {
        return Err(Error::Invalid(format!(
            "the evaluation classifier scores images (mnist, fashion-mnist); {} is a toy set, \
             which training scores by the modes its samples cover",
            args.dataset
        )));
    }
    check_scored(&args.dataset)?;
    let device = args.gpu.device(&args.device)?;
    let data = load_dataset(&args.dataset, &args.data_dir)?;
    let mut clf = Classifier::new(&args.dataset, &mut Rng::seed(args.seed), &device)?;
    println!(
        "training the evaluation classifier on {} ({} images, {} epochs) on {device:?}",
        args.dataset, data.train.n, args.epochs
    );
    let acc = clf.fit(
        &data.train,
        &data.test,
        args.epochs,
        args.batch_size,
        args.seed,
        |step, loss| {
            println!("step {step:>6}  loss {loss:.4}");
        },
    )?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_classifier(&args.dataset));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            context: format!("{}", dir.display()),
            source: e,
        })?;
    }
    clf.save(&out, acc)?;
    println!(
        "test accuracy {:.2}% on {} images; saved {}",
        acc * 100.0,
        data.test.n,
        out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct EvalArgs {
    /// A generator checkpoint written by `ganlab train`.
    #[arg(long, conflicts_with = "images")]
    checkpoint: Option<PathBuf>,
    /// Samples from any generator as an IDX image file (28x28, magic 2051, plain or gzip).
    #[arg(long)]
    images: Option<PathBuf>,
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Samples to draw from the checkpoint (2 to 100,000: FID needs a covariance).
    #[arg(long, default_value_t = 10_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(2..=100_000))]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The classifier (default classifiers/<dataset>.safetensors).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Also write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    #[command(flatten)]
    gpu: GpuFlags,
}

fn idx_images(path: &Path) -> Result<Vec<f32>> {
    let arr = read_idx_file(path, IdxKind::Images)?;
    if arr.dims[0] < 2 {
        return Err(Error::Invalid(format!(
            "{}: {} image(s); FID and IS need at least 2",
            path.display(),
            arr.dims[0]
        )));
    }
    if arr.dims[1..] != [28, 28] {
        return Err(Error::Invalid(format!(
            "{}: images are {:?}, the classifier takes 28x28",
            path.display(),
            &arr.dims[1..]
        )));
    }
    Ok(arr
        .data
        .iter()
        .map(|&b| f32::from(b) / 127.5 - 1.0)
        .collect())
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    check_scored(&args.dataset)?;
    let device = args.gpu.device(&args.device)?;
    // The images first: a model that draws what the classifier cannot score says so before
    // anything else is asked of the user.
    let images = match (&args.checkpoint, &args.images) {
        (Some(ckpt), None) => {
            let mut model = models::load(ckpt, &device)?;
            sample_images(&mut *model, args.n, args.seed, &device)?
        }
        (None, Some(path)) => idx_images(path)?,
        _ => {
            return Err(Error::Invalid(
                "give --checkpoint C or --images FILE".into(),
            ))
        }
    };
    let clf_path = args
        .classifier
        .clone()
        .unwrap_or_else(|| default_classifier(&args.dataset));
    if !clf_path.exists() {
        return Err(Error::Invalid(format!(
            "no classifier at {}; train one with `ganlab train-classifier --dataset {}`",
            clf_path.display(),
            args.dataset
        )));
    }
    let clf = Classifier::load_for(&clf_path, &args.dataset, &device)?;
    let data = load_dataset(&args.dataset, &args.data_dir)?;
    let train_ref = data.train.items(0..data.train.n.min(10_000));
    let rows = evaluate(&clf, &images, &data.test.all_values(), &train_ref, &device)?;
    print!("{}", table(&rows));
    if let Some(path) = &args.json {
        let json = format!(
            "[{}]\n",
            rows.iter().map(|r| r.json()).collect::<Vec<_>>().join(",")
        );
        std::fs::write(path, json).map_err(|e| Error::Io {
            context: format!("{}", path.display()),
            source: e,
        })?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
