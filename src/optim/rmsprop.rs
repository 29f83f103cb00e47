//! RMSprop as Keras computes it without momentum (eps outside the square root).

use super::{OptimParams, Scalars, UpdateRule, MAX_SLOTS};
use crate::device::Kernel;

/// Keras `RMSprop`: v = rho v + (1 - rho) g^2; p -= lr g / (sqrt(v) + eps).
/// Defaults are Keras': rho 0.9, eps 1e-7.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsProp {
    pub rho: f32,
    pub eps: f32,
}

impl Default for RmsProp {
    fn default() -> Self {
        RmsProp {
            rho: 0.9,
            eps: 1e-7,
        }
    }
}

static KERNEL: Kernel<OptimParams> = super::kernel(
    "rmsprop",
    &[include_str!("../../shaders/rmsprop.wgsl"), super::MULTI],
);

impl UpdateRule for RmsProp {
    const NAME: &'static str = "rmsprop";
    const SLOTS: &'static [&'static str] = &["v"];
    const KERNEL: &'static Kernel<OptimParams> = &KERNEL;

    /// [lr, rho, eps].
    fn scalars(&self, lr: f32, _t: u64) -> Scalars {
        [lr, self.rho, self.eps, 0.0]
    }

    fn update(k: &Scalars, p: f32, g: f32, state: &mut [f32; MAX_SLOTS]) -> f32 {
        let (lr, rho, eps) = (k[0], k[1], k[2]);
        let v = rho * state[0] + (1.0 - rho) * (g * g);
        state[0] = v;
        p - lr * g / (v.sqrt() + eps)
    }
}
