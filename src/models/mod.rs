//! The GAN zoo, one file per model; see `../shared/spec/models.md`.

pub mod book;
pub mod cgan;
pub mod dcgan;
pub mod dcgan64;
pub mod gan;
pub mod net;
pub mod progan;
pub mod saved;
pub mod toy;
mod trainable;
pub mod wasserstein;
pub mod wgan;

pub use book::{BookGan, LoopStyle};
pub use trainable::{RunState, Trainable, CLASSES};

use crate::data::{registry, Entry};
use crate::nn::FrozenNorm;
use crate::{Device, Error, Result, Rng};
use std::path::Path;

/// Every model `ganlab train` knows.
pub const NAMES: [&str; 7] = [
    "gan", "dcgan", "cgan", "wgan", "wgan-gp", "progan", "dcgan64",
];

/// What a model is built with besides its name and data.
#[derive(Clone, Debug)]
pub struct Options {
    /// The training-step semantics of the book's models (gan, dcgan, cgan).
    pub style: LoopStyle,
    /// ProGAN's schedule, widths and optimiser.
    pub progan: progan::ProGanConfig,
    /// The data's items, `[C, H, W]`: the book's models draw 28x28 (dcgan in 1 or 3 channels,
    /// the others MNIST's one) but cgan, an MLP, any grey or RGB size up to 64x64; dcgan64
    /// 64x64 or 32x32.
    pub image: [usize; 3],
    /// dcgan64's base widths (`--ngf`, `--ndf`).
    pub widths: (usize, usize),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            style: LoopStyle::default(),
            progan: progan::ProGanConfig::default(),
            image: gan::MNIST,
            widths: (64, 64),
        }
    }
}

/// One of the book's BCE models (gan, dcgan, cgan) by name, for MNIST.
pub fn book(name: &str, rng: &mut Rng, device: &Device) -> Result<BookGan> {
    book_for(name, &Options::default(), rng, device)
}

/// A BCE model (gan, dcgan, cgan, dcgan64) by name, for the items `opts.image`.
pub fn book_for(name: &str, opts: &Options, rng: &mut Rng, device: &Device) -> Result<BookGan> {
    let [channels, h, w] = opts.image;
    let grey_or_rgb = matches!(channels, 1 | 3);
    let mut model = match name {
        "dcgan64" => {
            let (ngf, ndf) = opts.widths;
            let cfg = dcgan64::Config::for_items(&opts.image, ngf, ndf)?;
            return dcgan64::build(&cfg, rng, device);
        }
        "dcgan" if !grey_or_rgb || (h, w) != (28, 28) => return Err(wrong_items(name, opts.image)),
        // An MLP: any image it can hold (CIFAR-10's 3x32x32 with its labels, say).
        "cgan" if !grey_or_rgb || h * w > 64 * 64 => return Err(wrong_items(name, opts.image)),
        "gan" if opts.image != gan::MNIST => return Err(wrong_items(name, opts.image)),
        "gan" => gan::build(rng, device)?,
        "dcgan" => dcgan::build(channels, rng, device)?,
        "cgan" => cgan::build(opts.image, rng, device)?,
        other => return Err(unknown(other)),
    };
    model.style = opts.style;
    Ok(model)
}

/// The error for a model asked to draw items it is not built for, with what to use instead.
fn wrong_items(name: &str, image: [usize; 3]) -> Error {
    let [c, h, w] = image;
    let takes = match name {
        "dcgan" => "28x28 images with 1 or 3 channels (a folder: --image-size 28)",
        "cgan" => "images of 1 or 3 channels up to 64x64",
        _ => "MNIST-like 1x28x28 images",
    };
    Error::Invalid(format!(
        "{name} draws {takes}; the data's items are {c}x{h}x{w}: use dcgan64 for 64x64 or          32x32 colour images"
    ))
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
    if matches!(name, "wgan" | "wgan-gp" | "progan") && opts.image != gan::MNIST {
        return Err(wrong_items(name, opts.image));
    }
    Ok(match name {
        "gan" | "dcgan" | "cgan" | "dcgan64" => Box::new(book_for(name, opts, rng, device)?),
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
    if matches!(name, "gan" | "dcgan" | "cgan" | "dcgan64") {
        let saved = book::SavedConfig::read(path)?;
        opts.image = saved.image;
        if let Some(cfg) = saved.dcgan64 {
            opts.widths = (cfg.ngf, cfg.ndf);
        }
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
