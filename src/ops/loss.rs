//! GAN losses, each a mean over all elements. Binary cross-entropy on logits, which every
//! book-model step runs three times, is one fused kernel each way; the others are written in
//! differentiable ops.

use crate::cpu::{with_cpu2, CpuStorage, Real};
use crate::device::{read, write, Kernel, KernelSource};
use crate::tensor::graph::{self, GradFn};
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

/// Keras' clipping epsilon for losses on probabilities (an f64, so the f64 path uses 1e-7
/// itself and not its f32 rounding).
pub const KERAS_EPSILON: f64 = 1e-7;

crate::kernel_params! {
    pub(crate) struct LossParams { n: u32 }
}

const BCE_COMMON: &str = include_str!("../../shaders/bce_logits.wgsl");
static BCE_FORWARD: Kernel<LossParams> = Kernel::new(
    "bce_logits",
    &[read("x"), read("y"), write("out"), write("acc")],
    &[
        BCE_COMMON,
        include_str!("../../shaders/bce_logits_forward.wgsl"),
    ],
)
.entry("forward");
static BCE_BACKWARD: Kernel<LossParams> = Kernel::new(
    "bce_logits_grad",
    &[read("x"), read("y"), read("g"), write("dx")],
    &[
        BCE_COMMON,
        include_str!("../../shaders/bce_logits_grad.wgsl"),
    ],
)
.entry("backward");

/// Every loss kernel (for the portability test).
pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
    vec![&BCE_FORWARD, &BCE_BACKWARD]
}

/// Stable in f64: max(x, 0) - x y + log(1 + exp(-|x|)), averaged; then the accuracy.
fn bce_logits_cpu<T: Real>(x: &[T], y: &[T]) -> Vec<T> {
    let (loss, hits) = x.iter().zip(y).fold((0.0, 0.0), |(loss, hits), (&x, &y)| {
        let (x, y) = (x.to_f64(), y.to_f64());
        let l = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
        (loss + l, hits + f64::from(u8::from(predicted(x) == y)))
    });
    let n = x.len() as f64;
    vec![T::from_f64(loss / n), T::from_f64(hits / n)]
}

/// The class a logit predicts, as Keras' `binary_accuracy` rounds sigmoid(x) at 0.5.
fn predicted(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// g (sigmoid(x) - y) / n, with the sigmoid in the form that never overflows.
fn bce_logits_grad_cpu<T: Real>(x: &[T], y: &[T], g: f64) -> Vec<T> {
    let n = x.len() as f64;
    x.iter()
        .zip(y)
        .map(|(&x, &y)| {
            let x = x.to_f64();
            let e = (-x.abs()).exp();
            let sigmoid = if x >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            T::from_f64(g * (sigmoid - y.to_f64()) / n)
        })
        .collect()
}

struct BceLogitsGrad;

impl GradFn for BceLogitsGrad {
    fn name(&self) -> &'static str {
        "bce_with_logits"
    }

    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, y) = (&inputs[0], &inputs[1]);
        let n = x.numel() as f64;
        // Differentiable form where the gradient is differentiated again, or the target needs
        // one: d/dx = g (sigmoid(x) - y) / n, d/dy = -g x / n.
        if graph::is_grad_enabled() || y.requires_grad() {
            let gx = || x.sigmoid()?.sub(y)?.mul(g)?.mul_scalar(1.0 / n);
            let gy = || x.mul(g)?.mul_scalar(-1.0 / n);
            return Ok(vec![
                x.requires_grad().then(gx).transpose()?,
                y.requires_grad().then(gy).transpose()?,
            ]);
        }
        let storage = match (x.storage(), y.storage(), g.storage()) {
            (Storage::Cpu(xs), Storage::Cpu(ys), Storage::Cpu(_)) => {
                let gv = g.to_vec_f64()?[0];
                Storage::Cpu(with_cpu2!("bce_with_logits", xs, ys, x, y => {
                    bce_logits_grad_cpu(x, y, gv)
                })?)
            }
            (Storage::Gpu(xb), Storage::Gpu(yb), Storage::Gpu(gb)) => {
                let ctx = xb.context();
                let dx = ctx.alloc(x.numel())?;
                let params = LossParams {
                    n: x.numel() as u32,
                };
                ctx.dispatch(
                    &BCE_BACKWARD,
                    &params,
                    &[xb, yb, gb, &dx],
                    ctx.grid(x.numel())?,
                )?;
                Storage::Gpu(dx)
            }
            _ => unreachable!("same device"),
        };
        Ok(vec![
            Some(Tensor::from_storage(
                std::rc::Rc::new(storage),
                x.shape().to_vec(),
            )),
            None,
        ])
    }
}

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
    /// Binary cross-entropy on logits, averaged, stable for any magnitude:
    /// max(x, 0) - x * y + log(1 + exp(-|x|)). Its gradient is exactly (sigmoid(x) - y) / n,
    /// at x = 0 too. One kernel each way on the GPU.
    pub fn bce_with_logits(&self, target: &Tensor) -> Result<Tensor> {
        Ok(self.bce_with_logits_accuracy(target)?.0)
    }

    /// [`bce_with_logits`](Self::bce_with_logits) and, from the same kernel, Keras'
    /// `binary_accuracy` of the logits (no gradient): the share of elements whose predicted
    /// class (1 where x > 0, i.e. sigmoid(x) > 0.5, else 0) equals the target.
    pub fn bce_with_logits_accuracy(&self, target: &Tensor) -> Result<(Tensor, Tensor)> {
        same_shape("bce_with_logits", self, target)?;
        self.same_device(target, "bce_with_logits")?;
        if self.numel() == 0 {
            return Err(Error::shape("bce_with_logits", "no elements to average"));
        }
        let (loss, acc) = match (self.storage(), target.storage()) {
            (Storage::Cpu(xs), Storage::Cpu(ys)) => {
                let both = with_cpu2!("bce_with_logits", xs, ys, x, y => bce_logits_cpu(x, y))?;
                let (loss, acc) = match &both {
                    CpuStorage::F32(v) => {
                        let v = v.borrow();
                        (CpuStorage::from(vec![v[0]]), CpuStorage::from(vec![v[1]]))
                    }
                    CpuStorage::F64(v) => {
                        let v = v.borrow();
                        (CpuStorage::from(vec![v[0]]), CpuStorage::from(vec![v[1]]))
                    }
                };
                (Storage::Cpu(loss), Storage::Cpu(acc))
            }
            (Storage::Gpu(xb), Storage::Gpu(yb)) => {
                let ctx = xb.context();
                let (loss, acc) = (ctx.alloc(1)?, ctx.alloc(1)?);
                let params = LossParams {
                    n: self.numel() as u32,
                };
                ctx.dispatch(&BCE_FORWARD, &params, &[xb, yb, &loss, &acc], [1, 1, 1])?;
                (Storage::Gpu(loss), Storage::Gpu(acc))
            }
            _ => unreachable!("same_device checked"),
        };
        let acc = Tensor::from_storage(std::rc::Rc::new(acc), Vec::new());
        let loss = Tensor::from_op(loss, Vec::new(), &[self, target], BceLogitsGrad);
        Ok((loss, acc))
    }

    /// Binary cross-entropy on probabilities, as Keras computes it: p clipped to
    /// [eps, 1 - eps], then -(y log(p + eps) + (1 - y) log((1 - p) + eps)), in that order
    /// (1 + eps rounds to 1 in f32, so (1 + eps) - p would be ~0.5% off at p = 1 - eps).
    /// Finite however confident the prediction.
    pub fn bce(&self, target: &Tensor) -> Result<Tensor> {
        same_shape("bce", self, target)?;
        let eps = KERAS_EPSILON;
        let p = self.clamp(eps, 1.0 - eps)?;
        let pos = target.mul(&p.add_scalar(eps)?.log()?)?;
        let neg = target
            .rsub_scalar(1.0)?
            .mul(&p.rsub_scalar(1.0)?.add_scalar(eps)?.log()?)?;
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
                format!(
                    "{b} labels, each 0-{}, expected for {b} rows",
                    k.saturating_sub(1)
                ),
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
