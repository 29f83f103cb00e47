//! Keras-compatible initialisers.

use crate::{Device, Result, Rng, Tensor};

/// Glorot (Xavier) uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), Keras' default
/// for Dense and Conv kernels.
pub fn glorot_uniform(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Tensor> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    Ok(Tensor::rand_uniform(shape, -limit, limit, rng, device)?.with_grad())
}

/// Uniform U(-a, a), Keras' default for Embedding (a = 0.05).
pub fn uniform(shape: &[usize], a: f64, rng: &mut Rng, device: &Device) -> Result<Tensor> {
    Ok(Tensor::rand_uniform(shape, -a, a, rng, device)?.with_grad())
}

/// A learnable tensor filled with `value` (zero biases, batch-norm gamma 1 / beta 0).
pub fn constant(shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
    Ok(Tensor::full(shape, value, device)?.with_grad())
}
