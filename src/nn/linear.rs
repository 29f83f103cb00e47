//! Dense layer (Keras `Dense`): y = x W + b with W stored [in, out] like Keras' kernel.

use super::{init, join, Ctx, Kind, Module};
use crate::{Device, Result, Rng, Tensor};

pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    /// Glorot-uniform kernel, zero bias.
    pub fn new(fan_in: usize, fan_out: usize, rng: &mut Rng, device: &Device) -> Result<Self> {
        Ok(Linear {
            weight: init::glorot_uniform(&[fan_in, fan_out], fan_in, fan_out, rng, device)?,
            bias: init::constant(&[fan_out], 0.0, device)?,
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.matmul(&self.weight)?.add(&self.bias)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Kind)) {
        f(join(prefix, "weight"), &self.weight, Kind::Parameter);
        f(join(prefix, "bias"), &self.bias, Kind::Parameter);
    }
}
