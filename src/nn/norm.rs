//! Batch normalisation with Keras' conventions (momentum, eps, which variance feeds the
//! running statistics), over (N, C) or (N, C, H, W).

use super::{Activation, Ctx, FrozenNorm, Layer, Mode, Module, Role};
use crate::ops::BatchNormState;
use crate::{Device, Result, Rng, Tensor};

/// Keras `BatchNormalization` for 2-D (BatchNorm1d) and 4-D (BatchNorm2d) input. Parameters
/// `weight` (gamma, ones) and `bias` (beta, zeros); buffers `running_mean` (zeros) and
/// `running_var` (ones): PyTorch's names. Training normalises with the batch statistics and
/// updates the running ones; inference, or a frozen module, uses the running ones.
pub struct BatchNorm {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f32,
    eps: f32,
    mode: Mode,
}

impl BatchNorm {
    /// Keras defaults: momentum 0.99, eps 1e-3 (the book's models use `momentum(0.8)`).
    pub fn new(channels: usize, device: &Device) -> Result<BatchNorm> {
        Ok(BatchNorm {
            gamma: Tensor::ones(&[channels], device)?.with_grad(),
            beta: Tensor::zeros(&[channels], device)?.with_grad(),
            running_mean: Tensor::zeros(&[channels], device)?,
            running_var: Tensor::ones(&[channels], device)?,
            momentum: 0.99,
            eps: 1e-3,
            mode: Mode::default(),
        })
    }

    /// running = momentum * running + (1 - momentum) * batch statistic.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// PyTorch's conventions: its momentum 0.1 (0.9 here, where the running statistic keeps
    /// `momentum` of itself) and eps 1e-5.
    pub fn torch(self) -> Self {
        self.momentum(0.9).eps(1e-5)
    }

    /// Gamma drawn from N(1, std^2) instead of ones (the DCGAN paper's initialisation).
    pub fn gamma_normal(mut self, std: f32, rng: &mut Rng) -> Result<Self> {
        let device = self.gamma.device();
        let shape = self.gamma.shape().to_vec();
        self.gamma = Tensor::randn(&shape, 1.0, f64::from(std), rng, &device)?.with_grad();
        Ok(self)
    }

    pub fn running_mean(&self) -> &Tensor {
        &self.running_mean
    }

    pub fn running_var(&self) -> &Tensor {
        &self.running_var
    }
}

impl Module for BatchNorm {
    fn own_state(&self) -> Vec<(&'static str, Role, &Tensor)> {
        vec![
            ("weight", Role::Parameter, &self.gamma),
            ("bias", Role::Parameter, &self.beta),
            ("running_mean", Role::Buffer, &self.running_mean),
            ("running_var", Role::Buffer, &self.running_var),
        ]
    }

    fn mode(&self) -> Option<&Mode> {
        Some(&self.mode)
    }
}

impl BatchNorm {
    fn forward_with(&self, x: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        let (batch_stats, momentum) = match (self.mode.is_training(), self.mode.frozen()) {
            (true, None) => (true, self.momentum),
            // Momentum 1 leaves the running statistics as they are.
            (true, Some(FrozenNorm::Batch)) => (true, 1.0),
            _ => (false, self.momentum),
        };
        let state = BatchNormState {
            running_mean: &self.running_mean,
            running_var: &self.running_var,
            momentum,
            eps: self.eps,
        };
        x.batch_norm_activated(&self.gamma, &self.beta, &state, batch_stats, act)
    }
}

impl Layer for BatchNorm {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        self.forward_with(x, None)
    }

    fn forward_activated(
        &self,
        x: &Tensor,
        act: Activation,
        _: &mut Ctx,
    ) -> Option<Result<Tensor>> {
        Some(self.forward_with(x, Some(act)))
    }
}
