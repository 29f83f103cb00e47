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
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.layers
            .iter()
            .try_fold(x.clone(), |h, (_, layer)| layer.forward(&h, ctx))
    }
}
