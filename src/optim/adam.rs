//! Adam as Keras computes it (eps outside the bias correction).

use super::{OptimParams, Scalars, UpdateRule, MAX_SLOTS};
use crate::device::Kernel;

/// Keras `Adam`: m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2);
/// p -= lr_t m / (sqrt(v) + eps) with lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t).
/// Defaults are Keras': beta1 0.9, beta2 0.999, eps 1e-7.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

static KERNEL: Kernel<OptimParams> = super::kernel(
    "adam",
    &[include_str!("../../shaders/adam.wgsl"), super::MULTI],
);

impl UpdateRule for Adam {
    const NAME: &'static str = "adam";
    const SLOTS: &'static [&'static str] = &["m", "v"];
    const KERNEL: &'static Kernel<OptimParams> = &KERNEL;

    /// [lr_t, beta1, beta2, eps], the bias correction folded into lr_t (in f64, then rounded).
    fn scalars(&self, lr: f32, t: u64) -> Scalars {
        let t = t as f64;
        let correction =
            (1.0 - f64::from(self.beta2).powf(t)).sqrt() / (1.0 - f64::from(self.beta1).powf(t));
        [
            (f64::from(lr) * correction) as f32,
            self.beta1,
            self.beta2,
            self.eps,
        ]
    }

    fn update(k: &Scalars, p: f32, g: f32, state: &mut [f32; MAX_SLOTS]) -> f32 {
        let (lr_t, beta1, beta2, eps) = (k[0], k[1], k[2], k[3]);
        let m = state[0] + (g - state[0]) * (1.0 - beta1);
        let v = state[1] + (g * g - state[1]) * (1.0 - beta2);
        state[0] = m;
        state[1] = v;
        p - lr_t * m / (v.sqrt() + eps)
    }
}
