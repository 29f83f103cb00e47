//! Nearest upsampling by an integer factor, and its adjoint the block sum (so each is the
//! other's backward rule, to any order); average pooling is the block sum scaled.

use crate::cpu::{team, with_cpu, Real};
use crate::device::{read, write, Binding, Kernel};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

crate::kernel_params! {
    pub(crate) struct ResampleParams { planes: u32, h: u32, w: u32, f: u32 }
}

const BUFFERS: &[Binding] = &[read("x"), write("y")];
const SOURCE: &[&str] = &[include_str!("../../shaders/resample.wgsl")];

/// Upsampling, then its adjoint (block sum).
pub(crate) static RESAMPLE: [Kernel<ResampleParams>; 2] = [
    Kernel::new("upsample", BUFFERS, SOURCE).entry("upsample"),
    Kernel::new("block_sum", BUFFERS, SOURCE).entry("block_sum"),
];

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Up,
    BlockSum,
}

/// (planes, small h, small w) of an NCHW tensor for factor `f`, checking divisibility.
fn dims(x: &Tensor, f: usize, dir: Dir) -> Result<(usize, usize, usize)> {
    let &[n, c, h, w] = x.shape() else {
        return Err(Error::shape(
            "resample",
            format!("needs NCHW, got {:?}", x.shape()),
        ));
    };
    if f == 0 {
        return Err(Error::Invalid("resample factor must be positive".into()));
    }
    match dir {
        Dir::Up => Ok((n * c, h, w)),
        Dir::BlockSum if h % f == 0 && w % f == 0 => Ok((n * c, h / f, w / f)),
        Dir::BlockSum => Err(Error::shape(
            "pool",
            format!("{h}x{w} is not divisible by the pool size {f}"),
        )),
    }
}

/// Planes in parallel; each small row is widened once, then copied `f` times.
pub(crate) fn upsample_cpu<T: Real>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    f: usize,
) -> Vec<T> {
    let (bh, bw) = (h * f, w * f);
    let plane_len = (bh * bw).max(1);
    team::build_rows(
        planes * bh * bw,
        plane_len,
        team::rows_per_piece(plane_len),
        |p, out| {
            let plane = &x[p * h * w..][..h * w];
            for (i, rows) in out.chunks_mut(f * bw).enumerate() {
                let (first, rest) = rows.split_at_mut(bw);
                for (o, &v) in first.chunks_mut(f).zip(&plane[i * w..][..w]) {
                    o.fill(v);
                }
                for row in rest.chunks_mut(bw) {
                    row.copy_from_slice(first);
                }
            }
        },
    )
}

/// Planes in parallel; each output sums its block row by row, left to right.
pub(crate) fn block_sum_cpu<T: Real>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    f: usize,
) -> Vec<T> {
    let bw = w * f;
    let plane_len = (h * w).max(1);
    team::build_rows(
        planes * h * w,
        plane_len,
        team::rows_per_piece(plane_len * f * f),
        |p, out| {
            let plane = &x[p * h * f * bw..][..h * f * bw];
            for (orow, block) in out.chunks_mut(w.max(1)).zip(plane.chunks(f * bw)) {
                for row in block.chunks(bw) {
                    for (o, v) in orow.iter_mut().zip(row.chunks(f)) {
                        *o = v.iter().fold(*o, |acc, &v| acc + v);
                    }
                }
            }
        },
    )
}

fn resample(x: &Tensor, f: usize, dir: Dir) -> Result<Tensor> {
    let (planes, h, w) = dims(x, f, dir)?;
    let shape = match dir {
        Dir::Up => vec![x.shape()[0], x.shape()[1], h * f, w * f],
        Dir::BlockSum => vec![x.shape()[0], x.shape()[1], h, w],
    };
    let storage = match x.storage() {
        Storage::Cpu(s) => Storage::Cpu(with_cpu!(s, v => match dir {
            Dir::Up => upsample_cpu(v, planes, h, w, f),
            Dir::BlockSum => block_sum_cpu(v, planes, h, w, f),
        })),
        Storage::Gpu(buf) => {
            let ctx = buf.context();
            let n = shape.iter().product();
            let out = ctx.alloc(n)?;
            let params = ResampleParams {
                planes: planes as u32,
                h: h as u32,
                w: w as u32,
                f: f as u32,
            };
            let kernel = &RESAMPLE[usize::from(dir == Dir::BlockSum)];
            ctx.dispatch(kernel, &params, &[buf, &out], ctx.grid(n)?)?;
            Storage::Gpu(out)
        }
    };
    Ok(Tensor::from_op(
        storage,
        shape,
        &[x],
        ResampleGrad { f, dir },
    ))
}

struct ResampleGrad {
    f: usize,
    dir: Dir,
}

impl GradFn for ResampleGrad {
    fn name(&self) -> &'static str {
        match self.dir {
            Dir::Up => "upsample_nearest2d",
            Dir::BlockSum => "block_sum2d",
        }
    }
    fn backward(&self, _: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let other = match self.dir {
            Dir::Up => Dir::BlockSum,
            Dir::BlockSum => Dir::Up,
        };
        Ok(vec![Some(resample(g, self.f, other)?)])
    }
}

impl Tensor {
    /// Nearest-neighbour upsampling of NCHW by an integer factor (Keras `UpSampling2D`).
    pub fn upsample_nearest2d(&self, factor: usize) -> Result<Tensor> {
        resample(self, factor, Dir::Up)
    }

    /// Sum over non-overlapping `k` x `k` blocks of NCHW.
    pub fn sum_pool2d(&self, k: usize) -> Result<Tensor> {
        resample(self, k, Dir::BlockSum)
    }

    /// Average over non-overlapping `k` x `k` blocks of NCHW (ProGAN's downsampling).
    pub fn avg_pool2d(&self, k: usize) -> Result<Tensor> {
        self.sum_pool2d(k)?.mul_scalar(1.0 / (k * k) as f64)
    }
}
