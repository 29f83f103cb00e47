//! What WGAN, WGAN-GP and ProGAN share: the critic's loss and Gulrajani et al.'s gradient
//! penalty, differentiated with respect to the critic's parameters by double backward.

use crate::autograd::{grad, no_grad};
use crate::{DType, Error, Result, Rng, Tensor};

/// Interpolation weights eps ~ U(0, 1), one per sample, shaped to broadcast over `real`
/// ([b, 1, 1, 1] for images), in `real`'s dtype and on its device.
pub fn interpolation_weights(real: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let mut shape = vec![1; real.rank()];
    shape[0] = real.shape()[0];
    match real.dtype() {
        DType::F64 => Tensor::rand_uniform_f64(&shape, 0.0, 1.0, rng),
        _ => Tensor::rand_uniform(&shape, 0.0, 1.0, rng, &real.device()),
    }
}

/// lambda * mean_i (||grad_x critic(x_hat_i)||_2 - 1)^2 at x_hat = eps * real + (1 - eps) *
/// fake. The input gradient is taken with `create_graph`, so the result differentiates
/// into the critic's parameters (the penalty's whole point); real and fake are constants.
pub fn gradient_penalty(
    critic: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    real: &Tensor,
    fake: &Tensor,
    eps: &Tensor,
    lambda: f64,
) -> Result<Tensor> {
    let x_hat = no_grad(|| fake.add(&real.sub(fake)?.mul(eps)?))?.with_grad();
    let scores = critic(&x_hat)?;
    let g = grad(
        &[scores.sum_all()?],
        None,
        std::slice::from_ref(&x_hat),
        true,
    )?
    .pop()
    .flatten()
    .ok_or_else(|| Error::Autograd("the critic's output does not depend on its input".into()))?;
    // The tiny offset keeps sqrt's derivative finite where a gradient vanishes exactly.
    let norm = g
        .flatten(1)?
        .square()?
        .sum(&[1], false)?
        .add_scalar(1e-12)?
        .sqrt()?;
    norm.add_scalar(-1.0)?
        .square()?
        .mean_all()?
        .mul_scalar(lambda)
}

/// The critic's Wasserstein loss E[D(fake)] - E[D(real)] (the book's mean(y_true * y_pred) with
/// y = -1 for real and +1 for fake, summed over both batches): minimising it maximises the
/// estimate E[D(real)] - E[D(fake)] of the Wasserstein distance.
pub fn critic_loss(real_scores: &Tensor, fake_scores: &Tensor) -> Result<Tensor> {
    fake_scores.mean_all()?.sub(&real_scores.mean_all()?)
}
