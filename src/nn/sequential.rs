//! A chain of layers.

use super::{Ctx, Layer, Module};
use crate::{Result, Tensor};

/// Layers applied in order. Each child is named: by its index ("0", "1", ..., as PyTorch
/// does) or by the name given, and its state appears under that name
/// (`block1.conv.weight`). Names must be unique; a checkpoint refuses duplicates.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Layer>)>,
}

impl Sequential {
    pub fn new() -> Sequential {
        Sequential::default()
    }

    /// Appends `layer`, named by its index.
    pub fn layer(self, layer: impl Layer + 'static) -> Sequential {
        let name = self.layers.len().to_string();
        self.named(&name, layer)
    }

    /// Appends `layer` under `name`.
    pub fn named(mut self, name: &str, layer: impl Layer + 'static) -> Sequential {
        self.layers.push((name.to_string(), Box::new(layer)));
        self
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.layers
            .iter()
            .map(|(name, layer)| (name.clone(), &**layer as &dyn Module))
            .collect()
    }
}

impl Layer for Sequential {
    /// The layers in order; an activation that follows a layer able to fold it runs inside
    /// that layer's kernel (the same values, one launch fewer).
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut h = x.clone();
        let mut layers = self.layers.iter().map(|(_, l)| l).peekable();
        while let Some(layer) = layers.next() {
            let act = layers.peek().and_then(|next| next.as_activation());
            let fused = act.and_then(|act| layer.forward_activated(&h, act, ctx));
            h = match fused {
                Some(y) => {
                    layers.next();
                    y?
                }
                None => layer.forward(&h, ctx)?,
            };
        }
        Ok(h)
    }
}
