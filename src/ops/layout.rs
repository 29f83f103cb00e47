//! Ops that move values without arithmetic: reshape, permute/transpose, expand, narrow
//! (slice), pad and concat. All but reshape are one strided-copy kernel.

use crate::cpu::{team, CpuStorage, Real};
use crate::device::{read, write, GpuBuffer, Kernel};
use crate::shape::{contiguous_strides, normalize_axis, numel, pad_to_max_rank};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

/// Copy `shape` elements from src (offset, strides) to dst (offset, strides).
struct CopySpec {
    shape: Vec<usize>,
    src_off: usize,
    src_st: Vec<usize>,
    dst_off: usize,
    dst_st: Vec<usize>,
}

crate::kernel_params! {
    /// A [`CopySpec`], rank padded to 6.
    pub(crate) struct CopyParams {
        n: u32,
        shape: [u32; 6],
        src_off: u32,
        src_st: [u32; 6],
        dst_off: u32,
        dst_st: [u32; 6],
    }
}

pub(crate) static COPY: Kernel<CopyParams> = Kernel::new(
    "copy",
    &[read("src"), write("dst")],
    &[include_str!("../../shaders/copy.wgsl")],
);

fn copy_cpu<T: Real>(src: &[T], dst: &mut [T], c: &CopySpec) {
    let n = numel(&c.shape);
    let rank = c.shape.len();
    let mut idx = vec![0usize; rank];
    let (mut s, mut t) = (c.src_off, c.dst_off);
    for _ in 0..n {
        dst[t] = src[s];
        for d in (0..rank).rev() {
            idx[d] += 1;
            s += c.src_st[d];
            t += c.dst_st[d];
            if idx[d] < c.shape[d] {
                break;
            }
            s -= c.src_st[d] * c.shape[d];
            t -= c.dst_st[d] * c.shape[d];
            idx[d] = 0;
        }
    }
}

/// An output being assembled from strided copies.
enum OutBuf {
    F32(Vec<f32>),
    F64(Vec<f64>),
    Gpu(GpuBuffer),
}

impl OutBuf {
    /// `n` elements on `like`'s device and dtype; zero-filled when `zero` (else every element
    /// must be written by the copies).
    fn new(like: &Tensor, n: usize, zero: bool) -> Result<OutBuf> {
        Ok(match like.storage() {
            Storage::Cpu(CpuStorage::F32(_)) => OutBuf::F32(team::zeroed(n)),
            Storage::Cpu(CpuStorage::F64(_)) => OutBuf::F64(team::zeroed(n)),
            Storage::Gpu(b) => {
                let out = b.context().alloc(n)?;
                if zero {
                    b.context().fill(&out, n, 0.0)?;
                }
                OutBuf::Gpu(out)
            }
        })
    }

    fn copy_from(&mut self, src: &Tensor, spec: &CopySpec) -> Result<()> {
        const OP: &str = "copy";
        match (self, src.storage()) {
            (OutBuf::F32(d), Storage::Cpu(CpuStorage::F32(s))) => copy_cpu(&s.borrow(), d, spec),
            (OutBuf::F64(d), Storage::Cpu(CpuStorage::F64(s))) => copy_cpu(&s.borrow(), d, spec),
            (OutBuf::Gpu(d), Storage::Gpu(s)) => {
                let n = numel(&spec.shape);
                let ctx = s.context();
                let params = CopyParams {
                    n: n as u32,
                    shape: pad_to_max_rank(OP, &spec.shape, 1)?,
                    src_off: spec.src_off as u32,
                    src_st: pad_to_max_rank(OP, &spec.src_st, 0)?,
                    dst_off: spec.dst_off as u32,
                    dst_st: pad_to_max_rank(OP, &spec.dst_st, 0)?,
                };
                ctx.dispatch(&COPY, &params, &[s, d], ctx.grid(n)?)?;
            }
            _ => {
                return Err(Error::Invalid(
                    "copy between different devices or dtypes; convert first".into(),
                ))
            }
        }
        Ok(())
    }

    fn finish(self) -> Storage {
        match self {
            OutBuf::F32(v) => Storage::Cpu(CpuStorage::from(v)),
            OutBuf::F64(v) => Storage::Cpu(CpuStorage::from(v)),
            OutBuf::Gpu(b) => Storage::Gpu(b),
        }
    }
}

/// A new tensor of `shape` holding `src` read through `src_st` from `src_off`.
fn gather(src: &Tensor, shape: &[usize], src_off: usize, src_st: Vec<usize>) -> Result<Storage> {
    let mut out = OutBuf::new(src, numel(shape), false)?;
    out.copy_from(
        src,
        &CopySpec {
            shape: shape.to_vec(),
            src_off,
            src_st,
            dst_off: 0,
            dst_st: contiguous_strides(shape),
        },
    )?;
    Ok(out.finish())
}

// ---- reshape ---------------------------------------------------------------------------------

struct ReshapeGrad;

impl GradFn for ReshapeGrad {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.reshape(inputs[0].shape())?)])
    }
}

// ---- permute ---------------------------------------------------------------------------------

struct PermuteGrad(Vec<usize>);

impl GradFn for PermuteGrad {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut inverse = vec![0; self.0.len()];
        for (i, &d) in self.0.iter().enumerate() {
            inverse[d] = i;
        }
        Ok(vec![Some(g.permute(&inverse)?)])
    }
}

// ---- expand ----------------------------------------------------------------------------------

struct ExpandGrad;

impl GradFn for ExpandGrad {
    fn name(&self) -> &'static str {
        "expand"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.sum_to(inputs[0].shape())?)])
    }
}

// ---- narrow / pad ----------------------------------------------------------------------------

struct NarrowGrad {
    axis: usize,
    start: usize,
}

impl GradFn for NarrowGrad {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let dim = inputs[0].shape()[self.axis];
        let len = out.shape()[self.axis];
        let mut pads = vec![(0, 0); g.rank()];
        pads[self.axis] = (self.start, dim - self.start - len);
        Ok(vec![Some(g.pad(&pads)?)])
    }
}

struct PadGrad(Vec<(usize, usize)>);

impl GradFn for PadGrad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut gx = g.clone();
        for (axis, &(before, _)) in self.0.iter().enumerate() {
            if gx.shape()[axis] != inputs[0].shape()[axis] {
                gx = gx.narrow(axis as isize, before, inputs[0].shape()[axis])?;
            }
        }
        Ok(vec![Some(gx)])
    }
}

// ---- concat ----------------------------------------------------------------------------------

struct ConcatGrad(usize);

impl GradFn for ConcatGrad {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut start = 0;
        inputs
            .iter()
            .map(|t| {
                let len = t.shape()[self.0];
                let part = g.narrow(self.0 as isize, start, len)?;
                start += len;
                Ok(Some(part))
            })
            .collect()
    }
}

impl Tensor {
    /// Same values, new shape (no copy: tensors are contiguous). One dim may be `usize::MAX`
    /// to be inferred.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let mut shape = shape.to_vec();
        if let Some(pos) = shape.iter().position(|&d| d == usize::MAX) {
            let known: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
            if known == 0 || !self.numel().is_multiple_of(known) {
                return Err(Error::shape(
                    "reshape",
                    format!(
                        "cannot infer a dim reshaping {:?} to {shape:?}",
                        self.shape()
                    ),
                ));
            }
            shape[pos] = self.numel() / known;
        }
        if numel(&shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!(
                    "{:?} has {} elements, {shape:?} needs {}",
                    self.shape(),
                    self.numel(),
                    numel(&shape)
                ),
            ));
        }
        Ok(Tensor::from_op_shared(
            self.storage_rc().clone(),
            shape,
            &[self],
            ReshapeGrad,
        ))
    }

    /// Keeps dims before `start`, merges the rest into one (Keras `Flatten` with start 1).
    pub fn flatten(&self, start: usize) -> Result<Tensor> {
        let start = start.min(self.rank());
        let mut shape = self.shape()[..start].to_vec();
        shape.push(self.shape()[start..].iter().product());
        self.reshape(&shape)
    }

    /// Reorders dims: output dim i is input dim `dims[i]`.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if dims.len() != rank
            || dims
                .iter()
                .any(|&d| d >= rank || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::shape(
                "permute",
                format!("{dims:?} is not a permutation of {rank} dims"),
            ));
        }
        let in_st = contiguous_strides(self.shape());
        let shape: Vec<usize> = dims.iter().map(|&d| self.shape()[d]).collect();
        let src_st: Vec<usize> = dims.iter().map(|&d| in_st[d]).collect();
        let storage = gather(self, &shape, 0, src_st)?;
        Ok(Tensor::from_op(
            storage,
            shape,
            &[self],
            PermuteGrad(dims.to_vec()),
        ))
    }

    /// Swaps two dims.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (
            normalize_axis(a, self.rank())?,
            normalize_axis(b, self.rank())?,
        );
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// Broadcasts to `shape` (NumPy rules), materialised.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        let target = crate::shape::broadcast_shapes("expand", self.shape(), shape)?;
        if target != shape {
            return Err(Error::shape(
                "expand",
                format!("cannot expand {:?} to {shape:?}", self.shape()),
            ));
        }
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let src_st = crate::shape::broadcast_strides(self.shape(), shape);
        let storage = gather(self, shape, 0, src_st)?;
        Ok(Tensor::from_op(
            storage,
            shape.to_vec(),
            &[self],
            ExpandGrad,
        ))
    }

    /// Elements `start..start + len` along `axis`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let axis = normalize_axis(axis, self.rank())?;
        if start + len > self.shape()[axis] {
            return Err(Error::shape(
                "narrow",
                format!(
                    "{start}..{} exceeds dim {axis} of {:?}",
                    start + len,
                    self.shape()
                ),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        let st = contiguous_strides(self.shape());
        let storage = gather(self, &shape, start * st[axis], st)?;
        Ok(Tensor::from_op(
            storage,
            shape,
            &[self],
            NarrowGrad { axis, start },
        ))
    }

    /// Zero padding with (before, after) amounts per dim, e.g. Keras `ZeroPadding2D((0,1),(0,1))`
    /// is `pad(&[(0,0), (0,0), (0,1), (0,1)])` on NCHW.
    pub fn pad(&self, pads: &[(usize, usize)]) -> Result<Tensor> {
        if pads.len() != self.rank() {
            return Err(Error::shape(
                "pad",
                format!(
                    "{} (before, after) pairs for a rank-{} tensor",
                    pads.len(),
                    self.rank()
                ),
            ));
        }
        let shape: Vec<usize> = self
            .shape()
            .iter()
            .zip(pads)
            .map(|(d, (b, a))| d + b + a)
            .collect();
        let dst_st = contiguous_strides(&shape);
        let dst_off = pads.iter().zip(&dst_st).map(|((b, _), s)| b * s).sum();
        let mut out = OutBuf::new(self, numel(&shape), true)?;
        out.copy_from(
            self,
            &CopySpec {
                shape: self.shape().to_vec(),
                src_off: 0,
                src_st: contiguous_strides(self.shape()),
                dst_off,
                dst_st,
            },
        )?;
        Ok(Tensor::from_op(
            out.finish(),
            shape,
            &[self],
            PadGrad(pads.to_vec()),
        ))
    }

    /// Joins tensors along `axis`; all other dims must agree.
    pub fn concat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::Invalid("concat of zero tensors".into()))?;
        let axis = normalize_axis(axis, first.rank())?;
        let mut shape = first.shape().to_vec();
        shape[axis] = 0;
        for t in tensors {
            first.same_device(t, "concat")?;
            let ok = t.rank() == first.rank()
                && (0..t.rank()).all(|d| d == axis || t.shape()[d] == first.shape()[d]);
            if !ok {
                return Err(Error::shape(
                    "concat",
                    format!(
                        "{:?} does not match {:?} outside axis {axis}",
                        t.shape(),
                        first.shape()
                    ),
                ));
            }
            shape[axis] += t.shape()[axis];
        }
        let dst_st = contiguous_strides(&shape);
        let mut out = OutBuf::new(first, numel(&shape), false)?;
        let mut start = 0;
        for t in tensors {
            out.copy_from(
                t,
                &CopySpec {
                    shape: t.shape().to_vec(),
                    src_off: 0,
                    src_st: contiguous_strides(t.shape()),
                    dst_off: start * dst_st[axis],
                    dst_st: dst_st.clone(),
                },
            )?;
            start += t.shape()[axis];
        }
        Ok(Tensor::from_op(
            out.finish(),
            shape,
            tensors,
            ConcatGrad(axis),
        ))
    }
}
