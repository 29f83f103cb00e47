//! Normalisations written as compositions of differentiable ops, so their backward passes go
//! through the batch statistics exactly and can be differentiated again: batch norm (Keras
//! conventions), ProGAN's pixel norm and minibatch standard deviation.

use crate::autograd::no_grad;
use crate::{Error, Result, Tensor};

/// Running statistics and how to update them (Keras `BatchNormalization`).
pub struct BatchNormState<'a> {
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    /// running = momentum * running + (1 - momentum) * batch statistic (Keras: 0.99, book: 0.8);
    /// 1 leaves them untouched (no kernels run).
    pub momentum: f32,
    pub eps: f32,
}

impl Tensor {
    /// Batch normalisation over (N, C) or (N, C, H, W) with per-channel `gamma` and `beta` of shape `[C]`.
    /// Training normalises with the batch mean and biased variance and updates the running
    /// statistics in place (the running variance takes the unbiased batch variance for 4-D
    /// input and the biased one for 2-D, as Keras does); inference uses the running statistics.
    pub fn batch_norm(
        &self,
        gamma: &Tensor,
        beta: &Tensor,
        state: &BatchNormState,
        training: bool,
    ) -> Result<Tensor> {
        let c = match self.shape() {
            [_, c] | [_, c, _, _] => *c,
            s => {
                return Err(Error::shape(
                    "batch_norm",
                    format!("needs (N, C) or (N, C, H, W), got {s:?}"),
                ))
            }
        };
        let param_shape = if self.rank() == 4 {
            vec![1, c, 1, 1]
        } else {
            vec![1, c]
        };
        for (name, t) in [
            ("gamma", gamma),
            ("beta", beta),
            ("running_mean", state.running_mean),
            ("running_var", state.running_var),
        ] {
            if t.shape() != [c] {
                return Err(Error::shape(
                    "batch_norm",
                    format!("{name} has shape {:?}, expected [{c}]", t.shape()),
                ));
            }
        }
        let axes: &[isize] = if self.rank() == 4 { &[0, 2, 3] } else { &[0] };
        let (mean, var) = if training {
            let mean = self.mean(axes, true)?;
            let centred = self.sub(&mean)?;
            let var = centred.square()?.mean(axes, true)?;
            let count = self.numel() / c;
            no_grad(|| -> Result<()> {
                let m = state.momentum;
                if m == 1.0 {
                    return Ok(());
                }
                let unbiased = if self.rank() == 4 && count > 1 {
                    count as f32 / (count - 1) as f32
                } else {
                    1.0
                };
                let batch_mean = mean.detach().reshape(&[c])?;
                let batch_var = var.detach().reshape(&[c])?.mul_scalar(unbiased)?;
                state.running_mean.assign(
                    &state
                        .running_mean
                        .mul_scalar(m)?
                        .add(&batch_mean.mul_scalar(1.0 - m)?)?,
                )?;
                state.running_var.assign(
                    &state
                        .running_var
                        .mul_scalar(m)?
                        .add(&batch_var.mul_scalar(1.0 - m)?)?,
                )
            })?;
            (mean, var)
        } else {
            (
                state.running_mean.reshape(&param_shape)?,
                state.running_var.reshape(&param_shape)?,
            )
        };
        let inv_std = var.add_scalar(state.eps)?.pow(-0.5)?;
        self.sub(&mean)?
            .mul(&inv_std.mul(&gamma.reshape(&param_shape)?)?)?
            .add(&beta.reshape(&param_shape)?)
    }

    /// ProGAN pixelwise feature normalisation: a / sqrt(mean over channels of a^2 + 1e-8).
    pub fn pixel_norm(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::shape(
                "pixel_norm",
                format!("needs (N, C, ...), got {:?}", self.shape()),
            ));
        }
        self.div(&self.square()?.mean(&[1], true)?.add_scalar(1e-8)?.sqrt()?)
    }

    /// ProGAN minibatch standard deviation: for groups of `group` samples (sample n is in
    /// group n % (N / group), as in the official code), the std over the group of every
    /// feature, averaged to one number per group and appended as one constant feature map.
    pub fn minibatch_stddev(&self, group: usize) -> Result<Tensor> {
        let &[n, c, h, w] = self.shape() else {
            return Err(Error::shape(
                "minibatch_stddev",
                format!("needs NCHW, got {:?}", self.shape()),
            ));
        };
        let g = group.min(n).max(1);
        if n % g != 0 {
            return Err(Error::shape(
                "minibatch_stddev",
                format!("batch {n} is not divisible by the group size {g}"),
            ));
        }
        let y = self.reshape(&[g, n / g, c, h, w])?;
        let centred = y.sub(&y.mean(&[0], true)?)?;
        let std = centred
            .square()?
            .mean(&[0], false)?
            .add_scalar(1e-8)?
            .sqrt()?; // [n/g, c, h, w]
        let per_group = std.mean(&[1, 2, 3], true)?; // [n/g, 1, 1, 1]
        let map = per_group
            .reshape(&[1, n / g, 1, 1, 1])?
            .expand(&[g, n / g, 1, h, w])?
            .reshape(&[n, 1, h, w])?;
        Tensor::concat(&[self, &map], 1)
    }
}
