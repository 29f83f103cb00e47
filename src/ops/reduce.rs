//! Reductions: sum, mean and max over axes or over everything, and `sum_to` (the adjoint of
//! broadcasting). The primitive reduces one axis of an (outer, r, inner) view.

use crate::cpu::{team, with_cpu, Real};
use crate::device::{read, write, Binding, Kernel, KernelSource};
use crate::shape::{normalize_axis, numel};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Reduce {
    Sum,
    Max,
}

crate::kernel_params! {
    struct ReduceParams { outer: u32, r: u32, inner: u32 }
}

/// Per reduction, its per-workgroup and per-thread kernels and the per-workgroup one with
/// subgroup operations; `combine(a, b)`, `init()` and the subgroup operation are the WGSL of
/// the reduction.
macro_rules! reduce_kernels {
    ($($id:ident = $name:literal: $combine:literal, $init:literal, $subgroup:literal;)*) => {
        $(static $id: [Kernel<ReduceParams>; 3] = {
            const FUNCTIONS: &str = concat!(
                "fn combine(a: f32, b: f32) -> f32 {\n    return ", $combine, ";\n}\n",
                "fn init() -> f32 {\n    return ", $init, ";\n}\n",
            );
            const ROW: &str = include_str!("../../shaders/reduce_row.wgsl");
            const SOURCE: &[&str] = &[FUNCTIONS, ROW, include_str!("../../shaders/reduce.wgsl")];
            const SUBGROUP: &[&str] = &[
                FUNCTIONS,
                concat!(
                    "fn subgroup_combine(v: f32) -> f32 {\n    return ", $subgroup, "(v);\n}\n"
                ),
                ROW,
                include_str!("../../shaders/reduce_subgroup.wgsl"),
            ];
            const BUFFERS: &[Binding] = &[read("x"), write("y")];
            [
                Kernel::new($name, BUFFERS, SOURCE).entry("per_workgroup"),
                Kernel::new($name, BUFFERS, SOURCE).entry("per_thread"),
                Kernel::new(concat!($name, "_sg"), BUFFERS, SUBGROUP)
                    .entry("per_workgroup")
                    .with_subgroups(),
            ]
        };)*
        /// Every reduction kernel (for the portability test).
        pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
            [$(&$id),*].into_iter().flatten().map(|k| k as &dyn KernelSource).collect()
        }
    };
}

reduce_kernels! {
    SUM = "sum": "a + b", "0.0", "subgroupAdd";
    // -inf, which WGSL has no literal for.
    MAX = "max": "max(a, b)", "bitcast<f32>(0xff800000u)", "subgroupMax";
}

impl Reduce {
    /// The per-workgroup, per-thread and per-workgroup-with-subgroups kernels.
    fn kernels(self) -> &'static [Kernel<ReduceParams>; 3] {
        match self {
            Reduce::Sum => &SUM,
            Reduce::Max => &MAX,
        }
    }
}

/// Outputs below which a row gets a whole workgroup (and rows above this length).
const FEW_OUTPUTS: usize = 2048;
const LONG_ROW: usize = 64;

/// CPU reduction, accumulating in f64 so it is an accurate reference for long rows.
fn reduce_cpu<T: Real>(x: &[T], outer: usize, r: usize, inner: usize, kind: Reduce) -> Vec<T> {
    let row = |o: usize, dst: &mut [T]| {
        let src = &x[o * r * inner..(o + 1) * r * inner];
        match kind {
            Reduce::Sum if inner == 1 => dst[0] = T::from_f64(src.iter().map(|v| v.to_f64()).sum()),
            Reduce::Sum => {
                let mut acc = vec![0f64; inner];
                for j in 0..r {
                    for (a, v) in acc.iter_mut().zip(&src[j * inner..(j + 1) * inner]) {
                        *a += v.to_f64();
                    }
                }
                dst.iter_mut()
                    .zip(acc)
                    .for_each(|(d, a)| *d = T::from_f64(a));
            }
            Reduce::Max => {
                dst.fill(T::neg_infinity());
                for j in 0..r {
                    for (d, &v) in dst.iter_mut().zip(&src[j * inner..(j + 1) * inner]) {
                        if v > *d || v.is_nan() {
                            *d = v;
                        }
                    }
                }
            }
        }
    };
    if inner == 0 {
        return Vec::new();
    }
    team::build_rows(outer * inner, inner, team::rows_per_piece(r * inner), row)
}

/// Reduces `axis` of `x`, keeping it as a size-1 dim.
fn reduce_axis(x: &Tensor, axis: usize, kind: Reduce) -> Result<Tensor> {
    let shape = x.shape();
    let (outer, r, inner) = (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    );
    if kind == Reduce::Max && r == 0 {
        return Err(Error::shape("max", "max over an empty axis"));
    }
    let mut out_shape = shape.to_vec();
    out_shape[axis] = 1;
    let storage = match x.storage() {
        Storage::Cpu(s) => Storage::Cpu(with_cpu!(s, v => reduce_cpu(v, outer, r, inner, kind))),
        Storage::Gpu(buf) => {
            let ctx = buf.context();
            let outputs = outer * inner;
            let [per_workgroup, per_thread, with_subgroups] = kind.kernels();
            let (kernel, grid) = if outputs <= FEW_OUTPUTS && r > LONG_ROW {
                let kernel = if ctx.subgroups_enabled() {
                    with_subgroups
                } else {
                    per_workgroup
                };
                (kernel, ctx.grid_for_groups(outputs)?)
            } else {
                (per_thread, ctx.grid(outputs)?)
            };
            let out = ctx.alloc(outputs)?;
            let params = ReduceParams {
                outer: outer as u32,
                r: r as u32,
                inner: inner as u32,
            };
            ctx.dispatch(kernel, &params, &[buf, &out], grid)?;
            Storage::Gpu(out)
        }
    };
    Ok(Tensor::from_op(storage, out_shape, &[x], ReduceGrad(kind)))
}

struct ReduceGrad(Reduce);

impl GradFn for ReduceGrad {
    fn name(&self) -> &'static str {
        self.0.kernels()[0].name
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let gx = match self.0 {
            Reduce::Sum => g.expand(x.shape())?,
            Reduce::Max => {
                // Ties share the gradient equally (like torch.amax).
                let axis = (0..x.rank())
                    .find(|&d| out.shape()[d] != x.shape()[d])
                    .unwrap_or(0);
                let mask = x.eq_mask(&out.detach())?;
                let count = mask.reduce_keep(axis, Reduce::Sum)?;
                g.div(&count)?.expand(x.shape())?.mul(&mask)?
            }
        };
        Ok(vec![Some(gx)])
    }
}

impl Tensor {
    fn reduce_keep(&self, axis: usize, kind: Reduce) -> Result<Tensor> {
        reduce_axis(self, axis, kind)
    }

    /// Sum over `axes` (all axes when empty), keeping them as size-1 dims if `keepdim`.
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let mut axes: Vec<usize> = if axes.is_empty() {
            (0..self.rank()).collect()
        } else {
            axes.iter()
                .map(|&a| normalize_axis(a, self.rank()))
                .collect::<Result<_>>()?
        };
        axes.sort_unstable();
        axes.dedup();
        let kept_shape: Vec<usize> = (0..self.rank())
            .map(|d| {
                if axes.contains(&d) {
                    1
                } else {
                    self.shape()[d]
                }
            })
            .collect();
        // Merge runs of adjacent reduced axes into one dim, so each run is one kernel.
        let mut merged_shape = Vec::new();
        let mut merged_axes = Vec::new();
        for d in 0..self.rank() {
            let reduced = axes.contains(&d);
            if reduced && d > 0 && axes.contains(&(d - 1)) {
                *merged_shape.last_mut().unwrap() *= self.shape()[d];
            } else {
                if reduced {
                    merged_axes.push(merged_shape.len());
                }
                merged_shape.push(self.shape()[d]);
            }
        }
        let mut t = self.reshape(&merged_shape)?;
        for &axis in merged_axes.iter().rev() {
            t = reduce_axis(&t, axis, Reduce::Sum)?;
        }
        if keepdim {
            t.reshape(&kept_shape)
        } else {
            let dropped: Vec<usize> = (0..self.rank())
                .filter(|d| !axes.contains(d))
                .map(|d| self.shape()[d])
                .collect();
            t.reshape(&dropped)
        }
    }

    /// Sum of every element, as a 0-dim tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Mean over `axes` (all axes when empty).
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let summed = self.sum(axes, keepdim)?;
        let count = self.numel() / summed.numel().max(1);
        summed.mul_scalar(1.0 / count.max(1) as f64)
    }

    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Maximum along `axis`; the gradient goes to the maximal elements (shared on ties).
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let axis = normalize_axis(axis, self.rank())?;
        let t = reduce_axis(self, axis, Reduce::Max)?;
        if keepdim {
            Ok(t)
        } else {
            let mut shape = self.shape().to_vec();
            shape.remove(axis);
            t.reshape(&shape)
        }
    }

    /// Maximum of every element, as a 0-dim tensor.
    pub fn max_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])?.max(0, false)
    }

    /// Sums a broadcast result back to `shape` (which must broadcast to `self.shape()`).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let extra = self
            .rank()
            .checked_sub(shape.len())
            .ok_or_else(|| Error::shape("sum_to", format!("{:?} to {shape:?}", self.shape())))?;
        let mut axes = Vec::new();
        for d in 0..self.rank() {
            if d < extra || (shape[d - extra] == 1 && self.shape()[d] != 1) {
                axes.push(d as isize);
            } else if shape[d - extra] != self.shape()[d] {
                return Err(Error::shape(
                    "sum_to",
                    format!("{:?} does not broadcast to {:?}", shape, self.shape()),
                ));
            }
        }
        self.sum(&axes, true)?.reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::{reduce_cpu, Reduce, ReduceParams};
    use crate::device::{gpu_values, Device};
    use crate::Rng;

    /// The per-workgroup reductions with subgroups, forced onto their path for partial
    /// subgroups (which lavapipe's full subgroups never take), match the CPU: a sum and a max
    /// over rows of 1,000 (longer than a workgroup) for 3 x 2 outputs.
    #[test]
    fn partial_subgroup_path_matches_cpu() -> crate::Result<()> {
        let Some(ctx) = Device::test_gpu() else {
            return Ok(());
        };
        if !ctx.has_subgroups() {
            return Ok(());
        }
        let (outer, r, inner) = (3, 1000, 2);
        let x: Vec<f32> = Rng::seed(3)
            .normal_vec(outer * r * inner, 0.0, 1.0)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let xb = ctx.upload(&x)?;
        for kind in [Reduce::Sum, Reduce::Max] {
            let kernel = kind.kernels()[2].partial_subgroups_copy();
            let out = ctx.alloc(outer * inner)?;
            let params = ReduceParams {
                outer: outer as u32,
                r: r as u32,
                inner: inner as u32,
            };
            let grid = ctx.grid_for_groups(outer * inner)?;
            ctx.dispatch(kernel, &params, &[&xb, &out], grid)?;
            let got = gpu_values(out, outer * inner)?;
            let want = reduce_cpu(&x, outer, r, inner, kind);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-3 * (1.0 + w.abs()),
                    "{kind:?}: {g} vs {w}"
                );
            }
        }
        Ok(())
    }
}
