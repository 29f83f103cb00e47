//! A generator or discriminator network: a layer chain, optionally conditioned on a class
//! label the way the book's conditional GAN does it.

use crate::nn::{Ctx, Embedding, Layer, Module, Sequential};
use crate::{Error, Result, Tensor};

/// `body`, whose flattened input is first multiplied element-wise by a learned embedding of
/// the label when the network is conditional (Mirza & Osindero as the book builds it: a
/// product, not a concatenation).
pub struct Net {
    pub body: Sequential,
    pub embedding: Option<Embedding>,
}

impl Net {
    pub fn plain(body: Sequential) -> Net {
        Net {
            body,
            embedding: None,
        }
    }

    pub fn conditional(body: Sequential, embedding: Embedding) -> Net {
        Net {
            body,
            embedding: Some(embedding),
        }
    }

    pub fn is_conditional(&self) -> bool {
        self.embedding.is_some()
    }

    /// The network on `x`, conditioned on `labels` (one per sample) when it is conditional.
    pub fn forward_labeled(
        &self,
        x: &Tensor,
        labels: Option<&[usize]>,
        ctx: &mut Ctx,
    ) -> Result<Tensor> {
        match (&self.embedding, labels) {
            (None, _) => self.body.forward(x, ctx),
            (Some(embedding), Some(labels)) => {
                if labels.len() != x.shape()[0] {
                    return Err(Error::Invalid(format!(
                        "{} labels for a batch of {}",
                        labels.len(),
                        x.shape()[0]
                    )));
                }
                let h = x.flatten(1)?.mul(&embedding.lookup(labels)?)?;
                self.body.forward(&h, ctx)
            }
            (Some(_), None) => Err(Error::Invalid(
                "a conditional network needs a class label per sample".into(),
            )),
        }
    }
}

impl Module for Net {
    /// The body's layers at the top level (so a plain network's names are its chain's), then
    /// the embedding as `label_embedding`.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut children = self.body.children();
        if let Some(e) = &self.embedding {
            children.push(("label_embedding".into(), e as &dyn Module));
        }
        children
    }
}

impl Layer for Net {
    /// The unconditional forward pass (an error for a conditional network).
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.forward_labeled(x, None, ctx)
    }
}

/// `generator.predict`: the generator in inference mode, without a graph.
pub fn predict(g: &Net, z: &Tensor, labels: Option<&[usize]>, ctx: &mut Ctx) -> Result<Tensor> {
    g.set_training(false);
    let images = crate::no_grad(|| g.forward_labeled(z, labels, ctx));
    g.set_training(true);
    images
}
