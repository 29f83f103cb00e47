//! Element-wise arithmetic of two tensors with NumPy broadcasting, and the one-kernel backward
//! rules of the activations (the upstream gradient times the activation's derivative, from its
//! input or output).

use crate::cpu::{self, team, with_cpu2, Real};
use crate::device::{read, write, Binding, Kernel, KernelSource};
use crate::shape::{broadcast_shapes, broadcast_strides, numel, pad_to_max_rank};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    /// 1 where equal, else 0 (no gradient): the tie mask of max's backward rule.
    Eq,
    /// g where x > 0, else 0: relu's backward, (g, x).
    ReluGrad,
    /// g where x > 0, else alpha g: leaky relu's backward, (g, x).
    LeakyReluGrad(f64),
    /// g (1 - y^2): tanh's backward from its output, (g, y).
    TanhGrad,
    /// g y (1 - y): sigmoid's backward from its output, (g, y).
    SigmoidGrad,
}

/// The activations' backward rules on one value: the upstream gradient `g` times the
/// derivative, read off the activation's input or output `v` (relu and leaky relu with a
/// slope >= 0: either, they share a sign; tanh and sigmoid: the output). The CPU kernels of
/// the grad ops below, and of the kernels that fold an activation's backward into their own.
pub(crate) mod act_grad {
    use crate::cpu::Real;

    #[inline(always)]
    pub fn relu<T: Real>(g: T, v: T) -> T {
        if v > T::ZERO {
            g
        } else {
            T::ZERO
        }
    }

    #[inline(always)]
    pub fn leaky_relu<T: Real>(slope: T, g: T, v: T) -> T {
        if v > T::ZERO {
            g
        } else {
            slope * g
        }
    }

    #[inline(always)]
    pub fn tanh<T: Real>(g: T, y: T) -> T {
        g * (T::ONE - y * y)
    }

    #[inline(always)]
    pub fn sigmoid<T: Real>(g: T, y: T) -> T {
        g * y * (T::ONE - y)
    }
}

/// Runs `$body` with `$f` bound to the op's scalar function, matched once outside the loops.
macro_rules! with_op {
    ($op:expr, $t:ty, $f:ident => $body:expr) => {
        match $op {
            Binary::Add => {
                let $f = |x: $t, y: $t| x + y;
                $body
            }
            Binary::Sub => {
                let $f = |x: $t, y: $t| x - y;
                $body
            }
            Binary::Mul => {
                let $f = |x: $t, y: $t| x * y;
                $body
            }
            Binary::Div => {
                let $f = |x: $t, y: $t| x / y;
                $body
            }
            Binary::Eq => {
                let $f = |x: $t, y: $t| if x == y { <$t>::ONE } else { <$t>::ZERO };
                $body
            }
            Binary::ReluGrad => {
                let $f = |g: $t, x: $t| act_grad::relu(g, x);
                $body
            }
            Binary::LeakyReluGrad(a) => {
                let a = <$t>::from_f64(a);
                let $f = move |g: $t, x: $t| act_grad::leaky_relu(a, g, x);
                $body
            }
            Binary::TanhGrad => {
                let $f = |g: $t, y: $t| act_grad::tanh(g, y);
                $body
            }
            Binary::SigmoidGrad => {
                let $f = |g: $t, y: $t| act_grad::sigmoid(g, y);
                $body
            }
        }
    };
}

crate::kernel_params! {
    /// `same` reads only n; `broadcast` walks the output's shape with each operand's strides
    /// (0 along stretched dims), coalesced as on the CPU and left-padded to rank 6; only the
    /// last `rank` dims are walked. `a` is the op's scalar (leaky relu's slope).
    struct BinaryParams {
        n: u32,
        a: f32,
        rank: u32,
        shape: [u32; 6],
        sa: [u32; 6],
        sb: [u32; 6],
    }
}

const BUFFERS: &[Binding] = &[read("a"), read("b"), write("z")];

/// Per op, its same-shape and broadcasting kernels; `op(x, y)` is the WGSL expression.
macro_rules! binary_kernels {
    ($($id:ident = $name:literal: $expr:literal;)*) => {
        $(static $id: [Kernel<BinaryParams>; 2] = {
            const SOURCE: &[&str] = &[
                concat!("fn op(x: f32, y: f32) -> f32 {\n    return ", $expr, ";\n}\n"),
                include_str!("../../shaders/binary.wgsl"),
            ];
            [
                Kernel::new($name, BUFFERS, SOURCE).entry("same"),
                Kernel::new($name, BUFFERS, SOURCE).entry("broadcast"),
            ]
        };)*
        /// Every binary kernel (for the portability test).
        pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
            [$(&$id),*].into_iter().flatten().map(|k| k as &dyn KernelSource).collect()
        }
    };
}

binary_kernels! {
    ADD = "add": "x + y";
    SUB = "sub": "x - y";
    MUL = "mul": "x * y";
    DIV = "div": "x / y";
    EQ = "eq": "select(0.0, 1.0, x == y)";
    RELU_GRAD = "relu_grad": "select(0.0, x, y > 0.0)";
    LEAKY_RELU_GRAD = "leaky_relu_grad": "select(p.a * x, x, y > 0.0)";
    TANH_GRAD = "tanh_grad": "x * (1.0 - y * y)";
    SIGMOID_GRAD = "sigmoid_grad": "x * y * (1.0 - y)";
}

impl Binary {
    /// The op's kernels: same-shape, then broadcasting.
    fn kernels(self) -> &'static [Kernel<BinaryParams>; 2] {
        match self {
            Binary::Add => &ADD,
            Binary::Sub => &SUB,
            Binary::Mul => &MUL,
            Binary::Div => &DIV,
            Binary::Eq => &EQ,
            Binary::ReluGrad => &RELU_GRAD,
            Binary::LeakyReluGrad(_) => &LEAKY_RELU_GRAD,
            Binary::TanhGrad => &TANH_GRAD,
            Binary::SigmoidGrad => &SIGMOID_GRAD,
        }
    }

    fn scalar(self) -> f32 {
        match self {
            Binary::LeakyReluGrad(a) => a as f32,
            _ => 0.0,
        }
    }

    fn name(self) -> &'static str {
        self.kernels()[0].name
    }
}

/// Merges neighbouring dims that every operand walks contiguously (e.g. H and W of a
/// per-channel bias add), so the inner loop below runs as long as possible.
fn coalesce(shape: &[usize], sa: &[usize], sb: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut shape_c, mut sa_c, mut sb_c): (Vec<usize>, Vec<usize>, Vec<usize>) =
        (vec![], vec![], vec![]);
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        if let (Some(&la), Some(&lb)) = (sa_c.last(), sb_c.last()) {
            if la == sa[d] * shape[d] && lb == sb[d] * shape[d] {
                let last = shape_c.len() - 1;
                shape_c[last] *= shape[d];
                sa_c[last] = sa[d];
                sb_c[last] = sb[d];
                continue;
            }
        }
        shape_c.push(shape[d]);
        sa_c.push(sa[d]);
        sb_c.push(sb[d]);
    }
    if shape_c.is_empty() {
        return (vec![1], vec![0], vec![0]);
    }
    (shape_c, sa_c, sb_c)
}

/// Broadcast element-wise op: rows of the last (coalesced) dim with fixed strides, rows
/// split across threads for large outputs.
fn broadcast_cpu<T: Real>(
    f: impl Fn(T, T) -> T + Sync,
    a: &[T],
    b: &[T],
    shape: &[usize],
    sa: &[usize],
    sb: &[usize],
) -> Vec<T> {
    let (shape, sa, sb) = coalesce(shape, sa, sb);
    let rank = shape.len();
    let inner = shape[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let row = |r: usize, dst: &mut [T]| {
        // Offsets of this row from its index in the outer dims.
        let (mut rem, mut oa, mut ob) = (r, 0, 0);
        for d in (0..rank - 1).rev() {
            let c = rem % shape[d];
            rem /= shape[d];
            oa += c * sa[d];
            ob += c * sb[d];
        }
        for (j, o) in dst.iter_mut().enumerate() {
            *o = f(a[oa + j * ia], b[ob + j * ib]);
        }
    };
    team::build_rows(numel(&shape), inner, team::rows_per_piece(inner), row)
}

fn binary_cpu<T: Real>(
    op: Binary,
    x: &[T],
    y: &[T],
    same: bool,
    shape: &[usize],
    sa: &[usize],
    sb: &[usize],
) -> Vec<T> {
    with_op!(op, T, f => if same { cpu::zip_map(x, y, f) } else { broadcast_cpu(f, x, y, shape, sa, sb) })
}

pub(crate) fn binary(a: &Tensor, b: &Tensor, op: Binary) -> Result<Tensor> {
    let name = op.name();
    a.same_device(b, name)?;
    let shape = broadcast_shapes(name, a.shape(), b.shape())?;
    let same = a.shape() == b.shape();
    let (sa, sb) = (
        broadcast_strides(a.shape(), &shape),
        broadcast_strides(b.shape(), &shape),
    );
    let storage = match (a.storage(), b.storage()) {
        (Storage::Cpu(x), Storage::Cpu(y)) => Storage::Cpu(with_cpu2!(name, x, y, x, y => {
            binary_cpu(op, x, y, same, &shape, &sa, &sb)
        })?),
        (Storage::Gpu(x), Storage::Gpu(y)) => {
            let ctx = x.context();
            let n = numel(&shape);
            let out = ctx.alloc(n)?;
            // Dims every operand walks contiguously are merged: fewer div/mod per element.
            let (cs, ca, cb) = coalesce(&shape, &sa, &sb);
            let params = BinaryParams {
                n: n as u32,
                a: op.scalar(),
                rank: cs.len() as u32,
                shape: pad_to_max_rank(name, &cs, 1)?,
                sa: pad_to_max_rank(name, &ca, 0)?,
                sb: pad_to_max_rank(name, &cb, 0)?,
            };
            let kernel = &op.kernels()[usize::from(!same)];
            ctx.dispatch(kernel, &params, &[x, y, &out], ctx.grid(n)?)?;
            Storage::Gpu(out)
        }
        _ => unreachable!("same_device checked"),
    };
    Ok(Tensor::from_op(storage, shape, &[a, b], BinaryGrad(op)))
}

struct BinaryGrad(Binary);

impl GradFn for BinaryGrad {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (&inputs[0], &inputs[1]);
        // Only the inputs that need a gradient get one computed (a constant target, a
        // frozen weight). The activation backward rules are linear in g, so their own
        // backward in g is themselves; in x (relu, leaky relu) it is 0 almost everywhere.
        let ga = || -> Result<Tensor> {
            match self.0 {
                Binary::Add | Binary::Sub => g.sum_to(a.shape()),
                Binary::Mul => g.mul(b)?.sum_to(a.shape()),
                Binary::Div => g.div(b)?.sum_to(a.shape()),
                Binary::ReluGrad
                | Binary::LeakyReluGrad(_)
                | Binary::TanhGrad
                | Binary::SigmoidGrad => binary(g, b, self.0)?.sum_to(a.shape()),
                Binary::Eq => unreachable!("no gradient"),
            }
        };
        let gb = || -> Result<Option<Tensor>> {
            let gb = match self.0 {
                Binary::Add => g.sum_to(b.shape())?,
                Binary::Sub => g.sum_to(b.shape())?.neg()?,
                Binary::Mul => g.mul(a)?.sum_to(b.shape())?,
                // d(a/b)/db = -a/b^2 = -out/b.
                Binary::Div => g.mul(out)?.div(b)?.neg()?.sum_to(b.shape())?,
                // d/dy of g (1 - y^2) is -2 g y; of g y (1 - y) it is g (1 - 2y).
                Binary::TanhGrad => g.mul(a)?.mul(b)?.mul_scalar(-2.0)?.sum_to(b.shape())?,
                Binary::SigmoidGrad => g
                    .mul(a)?
                    .mul(&b.mul_scalar(-2.0)?.add_scalar(1.0)?)?
                    .sum_to(b.shape())?,
                Binary::ReluGrad | Binary::LeakyReluGrad(_) | Binary::Eq => return Ok(None),
            };
            Ok(Some(gb))
        };
        if self.0 == Binary::Eq {
            return Ok(vec![None, None]);
        }
        Ok(vec![
            a.requires_grad().then(ga).transpose()?,
            if b.requires_grad() { gb()? } else { None },
        ])
    }
}

impl Tensor {
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        binary(self, other, Binary::Add)
    }
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        binary(self, other, Binary::Sub)
    }
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        binary(self, other, Binary::Mul)
    }
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        binary(self, other, Binary::Div)
    }
    /// 1.0 where the elements are equal, 0.0 elsewhere (no gradient).
    pub fn eq_mask(&self, other: &Tensor) -> Result<Tensor> {
        binary(self, other, Binary::Eq)
    }
    /// `s - self`.
    pub fn rsub_scalar(&self, s: impl Into<f64>) -> Result<Tensor> {
        self.neg()?.add_scalar(s)
    }
}
