//! The GAN zoo, one file per model; see `../shared/spec/models.md`.

pub mod book;
pub mod cgan;
pub mod dcgan;
pub mod gan;
pub mod net;
pub mod progan;
pub mod saved;
pub mod toy;
pub mod wasserstein;
pub mod wgan;

pub use book::{BookGan, LoopStyle};

use crate::data::{registry, Entry};
use crate::nn::FrozenNorm;
use crate::train::Trainable;
use crate::{Device, Error, Result, Rng};
use std::path::Path;

/// Every model `ganlab train` knows.
pub const NAMES: [&str; 6] = ["gan", "dcgan", "cgan", "wgan", "wgan-gp", "progan"];

/// What a model is built with besides its name and data.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The training-step semantics of the book's models (gan, dcgan, cgan).
    pub style: LoopStyle,
    /// ProGAN's schedule, widths and optimiser.
    pub progan: progan::ProGanConfig,
}

/// One of the book's BCE models (gan, dcgan, cgan) by name.
pub fn book(name: &str, rng: &mut Rng, device: &Device) -> Result<BookGan> {
    match name {
        "gan" => gan::build(rng, device),
        "dcgan" => dcgan::build(rng, device),
        "cgan" => cgan::build(rng, device),
        other => Err(unknown(other)),
    }
}

/// `name` for training on `dataset`: the image architecture for MNIST-like sets, the toy
/// MLPs (kind `<name>-<dataset>`) for the toy distributions.
pub fn build(
    name: &str,
    dataset: &str,
    opts: &Options,
    rng: &mut Rng,
    device: &Device,
) -> Result<Box<dyn Trainable>> {
    // WGAN's critic has batch norm: TF1 or TF2 decides how it normalises while frozen.
    let wgan_choice = name == "wgan" && opts.style != LoopStyle::Torch;
    if opts.style != LoopStyle::default()
        && !matches!(name, "gan" | "dcgan" | "cgan")
        && !wgan_choice
    {
        return Err(Error::Invalid(format!(
            "{name} has its own training loop: --loop {} applies to gan, dcgan and cgan \
             (wgan takes keras-tf1 or keras-tf2, for its frozen critic's batch norm)",
            opts.style.name()
        )));
    }
    if let Ok(Entry::Toy(spec)) = registry::lookup(dataset) {
        return toy::build(name, &spec, opts.style, rng, device);
    }
    Ok(match name {
        "gan" | "dcgan" | "cgan" => {
            let mut model = book(name, rng, device)?;
            model.style = opts.style;
            Box::new(model)
        }
        "wgan" => {
            let mut model = wgan::build(rng, device)?;
            model.frozen_norm = match opts.style {
                LoopStyle::KerasTf2 => FrozenNorm::Running,
                _ => FrozenNorm::Batch,
            };
            Box::new(model)
        }
        "wgan-gp" => Box::new(wgan::build_gp(rng, device)?),
        "progan" => Box::new(progan::build(&opts.progan, rng, device)?),
        other => return Err(unknown(other)),
    })
}

/// The model a checkpoint holds, built for its kind and restored (for sampling and scoring).
pub fn load(path: &Path, device: &Device) -> Result<Box<dyn Trainable>> {
    let kind = saved::kind(path)?;
    // Toy models are named <model>-<dataset>.
    let (name, dataset) = ["toy-bimodal", "toy-ring"]
        .iter()
        .find_map(|d| {
            kind.strip_suffix(d)
                .and_then(|n| n.strip_suffix('-'))
                .map(|n| (n, *d))
        })
        .unwrap_or((kind.as_str(), "mnist"));
    let mut opts = Options::default();
    if name == progan::KIND {
        opts.progan = progan::ProGanConfig::from_checkpoint(path)?;
    }
    let mut model = build(name, dataset, &opts, &mut Rng::seed(0), device)?;
    model.load_checkpoint(path)?;
    Ok(model)
}

fn unknown(name: &str) -> Error {
    Error::Invalid(format!(
        "unknown model \"{name}\" (available: {})",
        NAMES.join(", ")
    ))
}
