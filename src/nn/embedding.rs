//! Embedding table (Keras `Embedding`).

use super::init::embedding_uniform;
use super::{Module, Role};
use crate::{Device, Result, Rng, Tensor};

/// A [rows, dim] table of learned vectors, looked up by integer label. Not a `Layer`: its
/// input is labels, not a tensor (the conditional GAN multiplies the looked-up rows into its
/// input).
pub struct Embedding {
    weight: Tensor,
}

impl Embedding {
    /// Keras default initialisation: U(-0.05, 0.05).
    pub fn new(rows: usize, dim: usize, rng: &mut Rng, device: &Device) -> Result<Embedding> {
        Ok(Embedding {
            weight: embedding_uniform(&[rows, dim], rng, device)?.with_grad(),
        })
    }

    /// The rows for `labels`: [labels.len(), dim]. Labels outside the table are an error.
    pub fn lookup(&self, labels: &[usize]) -> Result<Tensor> {
        self.weight.embedding(labels)
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Embedding {
    fn own_state(&self) -> Vec<(&'static str, Role, &Tensor)> {
        vec![("weight", Role::Parameter, &self.weight)]
    }
}
