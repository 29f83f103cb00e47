//! GAN losses, each a mean over all elements, written in differentiable ops.

use crate::{Error, Result, Tensor};

/// Keras' clipping epsilon for losses on probabilities.
pub const KERAS_EPSILON: f32 = 1e-7;

fn same_shape(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            op,
            format!("prediction {:?} vs target {:?}", a.shape(), b.shape()),
        ));
    }
    Ok(())
}

impl Tensor {
    /// Binary cross-entropy on logits, stable for any magnitude:
    /// max(x, 0) - x * y + log(1 + exp(-|x|)).
    pub fn bce_with_logits(&self, target: &Tensor) -> Result<Tensor> {
        same_shape("bce_with_logits", self, target)?;
        let softplus_neg_abs = self.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
        self.relu()?
            .sub(&self.mul(target)?)?
            .add(&softplus_neg_abs)?
            .mean_all()
    }

    /// Binary cross-entropy on probabilities, as Keras computes it: p clipped to
    /// [eps, 1 - eps], then -(y log(p + eps) + (1 - y) log(1 - p + eps)). Finite however
    /// confident the prediction.
    pub fn bce(&self, target: &Tensor) -> Result<Tensor> {
        same_shape("bce", self, target)?;
        let eps = KERAS_EPSILON;
        let p = self.clamp(eps, 1.0 - eps)?;
        let pos = target.mul(&p.add_scalar(eps)?.log()?)?;
        let neg = target
            .rsub_scalar(1.0)?
            .mul(&p.rsub_scalar(1.0 + eps)?.log()?)?;
        pos.add(&neg)?.mean_all()?.neg()
    }

    /// Wasserstein loss mean(y_true * y_pred) (y = -1 real, +1 fake in the book's WGAN).
    pub fn wasserstein(&self, target: &Tensor) -> Result<Tensor> {
        same_shape("wasserstein", self, target)?;
        self.mul(target)?.mean_all()
    }

    /// Mean squared error.
    pub fn mse(&self, target: &Tensor) -> Result<Tensor> {
        same_shape("mse", self, target)?;
        self.sub(target)?.square()?.mean_all()
    }

    /// Share of predictions on the right side of `threshold` for 0/1 targets (no gradient).
    pub fn binary_accuracy(&self, target: &Tensor, threshold: f32) -> Result<f32> {
        same_shape("binary_accuracy", self, target)?;
        let (p, t) = (self.to_vec()?, target.to_vec()?);
        let hits = p
            .iter()
            .zip(&t)
            .filter(|(p, t)| (**p > threshold) == (**t > 0.5))
            .count();
        Ok(hits as f32 / p.len().max(1) as f32)
    }
}

impl Tensor {
    /// log softmax along `axis`, shifted by the (detached) maximum so exp never overflows.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        let shifted = self.sub(&self.max(axis, true)?.detach())?;
        shifted.sub(&shifted.exp()?.sum(&[axis], true)?.log()?)
    }

    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        self.log_softmax(axis)?.exp()
    }

    /// Mean cross-entropy of logits [batch, classes] against integer labels.
    pub fn cross_entropy(&self, labels: &[usize]) -> Result<Tensor> {
        let &[b, k] = self.shape() else {
            return Err(Error::shape(
                "cross_entropy",
                format!("logits must be [batch, classes], got {:?}", self.shape()),
            ));
        };
        if labels.len() != b || labels.iter().any(|&l| l >= k) {
            return Err(Error::shape(
                "cross_entropy",
                format!("{} labels in 0..{k} expected for {b} rows", b),
            ));
        }
        let mut onehot = vec![0.0; b * k];
        for (i, &l) in labels.iter().enumerate() {
            onehot[i * k + l] = 1.0;
        }
        let onehot = match self.dtype() {
            crate::DType::F64 => Tensor::from_vec_f64(
                onehot.iter().map(|&v: &f32| f64::from(v)).collect(),
                &[b, k],
            )?,
            crate::DType::F32 => Tensor::from_vec(onehot, &[b, k], &self.device())?,
        };
        self.log_softmax(1)?
            .mul(&onehot)?
            .sum(&[1], false)?
            .mean_all()?
            .neg()
    }
}
