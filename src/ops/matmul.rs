//! Batched matrix product with optionally transposed operands and broadcast batch dims.

use super::activation::{Activated, Activation};
use super::gemm::{gemm_kernels, launch_gemm, GemmKernels, GemmParams};
use crate::cpu::gemm::{Gemm, MatRef};
use crate::cpu::{team, with_cpu2, Real};
use crate::shape::{broadcast_shapes, numel};
use crate::tensor::graph::{no_grad, GradFn};
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

crate::kernel_params! {
    /// Row, column and batch strides of A and B (any transpose is a choice of strides); the
    /// split-K slice and count; the activation folded into the bias variant's store.
    pub(crate) struct MatmulParams {
        m: u32, n: u32, k: u32,
        a_rs: u32, a_cs: u32, a_bs: u32,
        b_rs: u32, b_cs: u32, b_bs: u32,
        k_split: u32, splits: u32, products: u32,
        act: u32, act_alpha: f32,
    }
}

impl GemmParams for MatmulParams {
    fn set_split(&mut self, k_split: u32, splits: u32, products: u32) {
        (self.k_split, self.splits, self.products) = (k_split, splits, products);
    }
}

pub(crate) static MATMUL: GemmKernels<MatmulParams> = gemm_kernels!(
    "matmul",
    [include_str!("../../shaders/gemm_matmul.wgsl")],
    with col_bias
)
.reading_gradients();

/// Where each batch's matrix starts and how elements are laid out, for one operand.
#[derive(Clone, Copy)]
struct Operand {
    rs: usize,
    cs: usize,
    bs: usize,
}

impl Operand {
    /// Batch `z` of `data` as this operand reads it.
    fn view<'a, T>(&self, data: &'a [T], z: usize) -> MatRef<'a, T> {
        MatRef::new(&data[z * self.bs..], self.rs, self.cs)
    }

    /// A contiguous (rows x cols) matrix per batch, read transposed if `t`; `bs` 0 when shared.
    fn new(rows: usize, cols: usize, t: bool, shared: bool) -> Self {
        let (rs, cs) = if t { (1, cols) } else { (cols, 1) };
        Operand {
            rs,
            cs,
            bs: if shared { 0 } else { rows * cols },
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn matmul_cpu<T: Real>(
    a: &[T],
    b: &[T],
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    oa: Operand,
    ob: Operand,
) -> Vec<T> {
    let mut c = team::zeroed(batch * m * n);
    for (z, cz) in c.chunks_mut((m * n).max(1)).enumerate().take(batch) {
        let p = Gemm::new((m, n, k), oa.view(a, z), ob.view(b, z));
        T::gemm(p, cz);
    }
    c
}

/// `op(a) @ op(b)` where op transposes the last two dims when asked. Batch dims broadcast.
pub fn matmul_t(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    a.same_device(b, "matmul")?;
    if a.rank() < 2 || b.rank() < 2 {
        return Err(Error::shape(
            "matmul",
            format!(
                "operands need at least 2 dims, got {:?} and {:?}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let (ra, rb) = (a.rank(), b.rank());
    let (a_rows, a_cols) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (b_rows, b_cols) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    let (m, k) = if ta {
        (a_cols, a_rows)
    } else {
        (a_rows, a_cols)
    };
    let (k2, n) = if tb {
        (b_cols, b_rows)
    } else {
        (b_rows, b_cols)
    };
    if k != k2 {
        return Err(Error::shape(
            "matmul",
            format!(
                "inner dims differ: {:?}{} @ {:?}{}",
                a.shape(),
                if ta { "^T" } else { "" },
                b.shape(),
                if tb { "^T" } else { "" }
            ),
        ));
    }
    let batch_shape = broadcast_shapes("matmul", &a.shape()[..ra - 2], &b.shape()[..rb - 2])?;
    let batch = numel(&batch_shape);
    // An operand whose batch dims are all 1 is shared by every batch; one that broadcasts
    // partially is materialised first.
    let prepare = |t: &Tensor, r: usize| -> Result<(Tensor, bool)> {
        let own = numel(&t.shape()[..r - 2]);
        if own == 1 {
            Ok((t.clone(), true))
        } else if t.shape()[..r - 2] == batch_shape[..] {
            Ok((t.clone(), false))
        } else {
            let mut full = batch_shape.clone();
            full.extend_from_slice(&t.shape()[r - 2..]);
            Ok((t.expand(&full)?, false))
        }
    };
    let (ae, a_shared) = prepare(a, ra)?;
    let (be, b_shared) = prepare(b, rb)?;
    let oa = Operand::new(a_rows, a_cols, ta, a_shared);
    let ob = Operand::new(b_rows, b_cols, tb, b_shared);

    let mut out_shape = batch_shape.clone();
    out_shape.extend([m, n]);
    let storage = match (ae.storage(), be.storage()) {
        (Storage::Cpu(x), Storage::Cpu(y)) => Storage::Cpu(with_cpu2!("matmul", x, y, x, y => {
            matmul_cpu(x, y, batch, m, n, k, oa, ob)
        })?),
        (Storage::Gpu(x), Storage::Gpu(y)) => {
            let ctx = x.context();
            let out = ctx.alloc(batch * m * n)?;
            let u = |v: usize| v as u32;
            let params = MatmulParams {
                m: u(m),
                n: u(n),
                k: u(k),
                a_rs: u(oa.rs),
                a_cs: u(oa.cs),
                a_bs: u(oa.bs),
                b_rs: u(ob.rs),
                b_cs: u(ob.cs),
                b_bs: u(ob.bs),
                ..Default::default()
            };
            // k = 0 needs no special case: the accumulators start at zero.
            launch_gemm(ctx, &MATMUL, &params, (m, n, k), batch, [x, y, &out], None)?;
            Storage::Gpu(out)
        }
        _ => unreachable!("same_device checked"),
    };
    Ok(Tensor::from_op(
        storage,
        out_shape,
        &[a, b],
        MatmulGrad { ta, tb },
    ))
}

struct MatmulGrad {
    ta: bool,
    tb: bool,
}

impl GradFn for MatmulGrad {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        // With A' = op(A), B' = op(B): dA' = g B'^T and dB' = A'^T g, transposed back where
        // op transposed, written so no transpose is ever materialised. Only the inputs that
        // need a gradient get one (G's noise, a frozen D's weights do not).
        let ga = || -> Result<Tensor> {
            match (self.ta, self.tb) {
                (false, false) => matmul_t(g, b, false, true),
                (false, true) => matmul_t(g, b, false, false),
                (true, false) => matmul_t(b, g, false, true),
                (true, true) => matmul_t(b, g, true, true),
            }?
            .sum_to(a.shape())
        };
        let gb = || -> Result<Tensor> {
            match (self.ta, self.tb) {
                (false, false) => matmul_t(a, g, true, false),
                (false, true) => matmul_t(g, a, true, false),
                (true, false) => matmul_t(a, g, false, false),
                (true, true) => matmul_t(g, a, true, true),
            }?
            .sum_to(b.shape())
        };
        Ok(vec![
            a.requires_grad().then(ga).transpose()?,
            b.requires_grad().then(gb).transpose()?,
        ])
    }
}

/// (m, n, k) of a fused linear layer's x `[m, k]`, w `[n, k]` and bias `[n]`.
fn linear_dims(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<(usize, usize, usize)> {
    match (x.shape(), w.shape(), b.shape()) {
        (&[m, k], &[n, k2], &[nb]) if k == k2 && nb == n => Ok((m, n, k)),
        _ => Err(Error::shape(
            "linear",
            format!(
                "x {:?}, w {:?}, bias {:?}: expected [m, in], [out, in], [out]",
                x.shape(),
                w.shape(),
                b.shape()
            ),
        )),
    }
}

/// A linear layer's y = x w^T + b with the bias added in the GEMM's store (2-D x on the GPU);
/// it does not read the output (an activation folded in wraps it in `Activated`).
struct LinearGrad;

impl GradFn for LinearGrad {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn backward(&self, inputs: &[Tensor], _: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, w, b) = (&inputs[0], &inputs[1], &inputs[2]);
        Ok(vec![
            x.requires_grad()
                .then(|| matmul_t(g, w, false, false))
                .transpose()?,
            w.requires_grad()
                .then(|| matmul_t(g, x, true, false))
                .transpose()?,
            b.requires_grad().then(|| g.sum(&[0], false)).transpose()?,
        ])
    }
}

/// The CPU form of the fused linear layer (as the GPU's, one node): the product, then the
/// bias and the activation in place, instead of three ops each writing a new tensor.
fn linear_cpu(x: &Tensor, w: &Tensor, b: &Tensor, act: Option<Activation>) -> Result<Tensor> {
    let (m, n, _) = linear_dims(x, w, b)?;
    let z = no_grad(|| matmul_t(x, w, false, true))?;
    let Storage::Cpu(zs) = z.storage() else {
        unreachable!("a product of CPU tensors")
    };
    Activation::store_cpu(act, zs, Some(&b.to_vec_f64()?), 1);
    Ok(Tensor::from_op_shared(
        z.storage_rc().clone(),
        vec![m, n],
        &[x, w, b],
        Activated {
            op: LinearGrad,
            act,
        },
    ))
}

impl Tensor {
    /// x w^T + b for x `[.., in]`, w `[out, in]` and b `[out]`: a linear layer. For a 2-D x on the
    /// GPU one kernel, the bias added in the GEMM's store.
    pub fn linear(&self, w: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        self.linear_activated(w, bias, None)
    }

    /// `act(x w^T + b)`: with a bias and a 2-D x, one node (on the GPU one kernel, bias and
    /// activation in the GEMM's store; on the CPU the product, then both in place).
    pub fn linear_activated(
        &self,
        w: &Tensor,
        bias: Option<&Tensor>,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        let act = act.map(Activation::foldable).transpose()?;
        if let (Storage::Cpu(_), Storage::Cpu(_), Some(b)) = (self.storage(), w.storage(), bias) {
            if self.rank() == 2 && w.rank() == 2 && matches!(b.storage(), Storage::Cpu(_)) {
                return linear_cpu(self, w, b, act);
            }
        }
        let fused = match (self.storage(), w.storage(), bias.map(Tensor::storage)) {
            (Storage::Gpu(x), Storage::Gpu(wb), Some(Storage::Gpu(bb)))
                if self.rank() == 2 && w.rank() == 2 =>
            {
                Some((x, wb, bb))
            }
            _ => None,
        };
        let (Some((xb, wb, bb)), Some(b)) = (fused, bias) else {
            let y = matmul_t(self, w, false, true)?;
            let y = match bias {
                Some(b) => y.add(b)?,
                None => y,
            };
            return y.activated(act);
        };
        let (m, n, k) = linear_dims(self, w, b)?;
        let ctx = xb.context();
        let out = ctx.alloc(m * n)?;
        let (act_code, act_alpha) = Activation::code(act);
        // x row-major [m, k]; w^T read through w's strides.
        let params = MatmulParams {
            m: m as u32,
            n: n as u32,
            k: k as u32,
            a_rs: k as u32,
            a_cs: 1,
            b_rs: 1,
            b_cs: k as u32,
            act: act_code,
            act_alpha,
            ..Default::default()
        };
        launch_gemm(
            ctx,
            &MATMUL,
            &params,
            (m, n, k),
            1,
            [xb, wb, &out],
            Some(bb),
        )?;
        Ok(Tensor::from_op(
            Storage::Gpu(out),
            vec![m, n],
            &[self, w, b],
            Activated {
                op: LinearGrad,
                act,
            },
        ))
    }

    /// Matrix product over the last two dims, batch dims broadcast.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        matmul_t(self, other, false, false)
    }
}
