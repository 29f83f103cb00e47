//! Batch normalisation layer with Keras conventions (momentum, eps, running variance).

use super::{init, join, Ctx, Kind, Mode, Module};
use crate::ops::BatchNormState;
use crate::{Device, Result, Tensor};

pub struct BatchNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub momentum: f32,
    pub eps: f32,
}

impl BatchNorm {
    /// gamma 1, beta 0, running mean 0 and variance 1 (Keras defaults).
    pub fn new(channels: usize, momentum: f32, eps: f32, device: &Device) -> Result<Self> {
        Ok(BatchNorm {
            gamma: init::constant(&[channels], 1.0, device)?,
            beta: init::constant(&[channels], 0.0, device)?,
            running_mean: Tensor::zeros(&[channels], device)?,
            running_var: Tensor::ones(&[channels], device)?,
            momentum,
            eps,
        })
    }
}

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let state = BatchNormState {
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            momentum: self.momentum,
            eps: self.eps,
        };
        x.batch_norm(&self.gamma, &self.beta, &state, ctx.mode == Mode::Train)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Kind)) {
        f(join(prefix, "gamma"), &self.gamma, Kind::Parameter);
        f(join(prefix, "beta"), &self.beta, Kind::Parameter);
        f(
            join(prefix, "running_mean"),
            &self.running_mean,
            Kind::Buffer,
        );
        f(join(prefix, "running_var"), &self.running_var, Kind::Buffer);
    }
}
