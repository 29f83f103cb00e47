//! Stochastic gradient descent with momentum, as Keras computes it.

use super::{OptimParams, Scalars, UpdateRule, MAX_SLOTS};
use crate::device::Kernel;

/// Keras `SGD`: velocity = momentum velocity - lr g; p += velocity (plain descent at
/// momentum 0, Keras' default).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sgd {
    pub momentum: f32,
}

static KERNEL: Kernel<OptimParams> = super::kernel(
    "sgd",
    &[include_str!("../../shaders/sgd.wgsl"), super::MULTI],
);

impl UpdateRule for Sgd {
    const NAME: &'static str = "sgd";
    const SLOTS: &'static [&'static str] = &["velocity"];
    const KERNEL: &'static Kernel<OptimParams> = &KERNEL;

    /// [lr, momentum].
    fn scalars(&self, lr: f32, _t: u64) -> Scalars {
        [lr, self.momentum, 0.0, 0.0]
    }

    fn update(k: &Scalars, p: f32, g: f32, state: &mut [f32; MAX_SLOTS]) -> f32 {
        let (lr, momentum) = (k[0], k[1]);
        let velocity = momentum * state[0] - lr * g;
        state[0] = velocity;
        p + velocity
    }
}
