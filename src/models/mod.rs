//! The GAN zoo, one file per model; see `../shared/spec/models.md`.

pub mod book;
pub mod dcgan;
pub mod gan;
pub mod progan;
pub mod saved;
pub mod wasserstein;

pub use book::{BookGan, LoopStyle};

use crate::{Device, Error, Result, Rng};

/// Builds a model by its CLI name.
pub fn build(name: &str, rng: &mut Rng, device: &Device) -> Result<BookGan> {
    match name {
        "gan" => gan::build(rng, device),
        "dcgan" => dcgan::build(rng, device),
        other => Err(Error::Invalid(format!(
            "unknown model \"{other}\" (available: gan, dcgan)"
        ))),
    }
}
