//! A chain of named modules.

use super::{join, Ctx, Kind, Module};
use crate::{Result, Tensor};

#[derive(Default)]
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module>)>,
}

impl Sequential {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer named `name` (its parameters become `<prefix>.<name>.<param>`).
    pub fn add(mut self, name: &str, layer: impl Module + 'static) -> Self {
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
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let mut h = x.clone();
        for (_, layer) in &self.layers {
            h = layer.forward(&h, ctx)?;
        }
        Ok(h)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Kind)) {
        for (name, layer) in &self.layers {
            layer.visit(&join(prefix, name), f);
        }
    }
}
