//! Element-wise functions of one tensor: arithmetic with a scalar, neg/exp/log/sqrt/pow/abs,
//! clamp and the activations (relu, leaky_relu, tanh, sigmoid), plus the 0/1 masks their
//! backward rules use.

use super::binary::{binary, Binary};
use crate::cpu::{self, with_cpu, CpuStorage, Real};
use crate::device::{read, write, Kernel, KernelSource};
use crate::tensor::graph::GradFn;
use crate::tensor::Storage;
use crate::{Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Unary {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Relu,
    LeakyRelu(f64),
    Pow(f64),
    Clamp(f64, f64),
    AddScalar(f64),
    MulScalar(f64),
    // Masks (no gradient): what the backward rules of abs and clamp multiply by.
    Sign,
    InRange(f64, f64),
}

/// What a CPU kernel does with the op's function: collect it into a new vector, or apply it
/// in place. Generic, so that each op's loop is specialised (and vectorised where the
/// arithmetic allows).
trait Each<T: Real> {
    type Out;
    fn each(self, f: impl Fn(T) -> T + Sync) -> Self::Out;
}

struct Collect<'a, T>(&'a [T]);

impl<T: Real> Each<T> for Collect<'_, T> {
    type Out = Vec<T>;
    fn each(self, f: impl Fn(T) -> T + Sync) -> Vec<T> {
        cpu::map(self.0, f)
    }
}

struct InPlace<'a, T>(&'a mut [T]);

impl<T: Real> Each<T> for InPlace<'_, T> {
    type Out = ();
    fn each(self, f: impl Fn(T) -> T + Sync) {
        cpu::map_in_place(self.0, f)
    }
}

/// The CPU kernel: the op is matched once, outside the loop.
fn apply_with<T: Real, E: Each<T>>(op: Unary, run: E) -> E::Out {
    let c = T::from_f64;
    let pos = |x: T| x > T::ZERO;
    macro_rules! each {
        ($x:ident => $e:expr) => {
            run.each(|$x: T| $e)
        };
    }
    match op {
        Unary::Neg => each!(x => -x),
        Unary::Exp => each!(x => x.exp()),
        Unary::Log => each!(x => x.ln()),
        Unary::Sqrt => each!(x => x.sqrt()),
        Unary::Abs => each!(x => x.abs()),
        Unary::Tanh => each!(x => x.tanh()),
        // Two forms so that exp never overflows into inf/inf.
        Unary::Sigmoid => {
            each!(x => if pos(x) || x == T::ZERO { T::ONE / (T::ONE + (-x).exp()) } else { x.exp() / (T::ONE + x.exp()) })
        }
        Unary::Relu => each!(x => if pos(x) { x } else { T::ZERO }),
        Unary::LeakyRelu(a) => {
            let a = c(a);
            each!(x => if pos(x) { x } else { a * x })
        }
        Unary::Pow(1.0) => each!(x => x),
        Unary::Pow(2.0) => each!(x => x * x),
        Unary::Pow(-0.5) => each!(x => T::ONE / x.sqrt()),
        Unary::Pow(e) => {
            let e = c(e);
            each!(x => x.powf(e))
        }
        Unary::Clamp(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            each!(x => if x < lo { lo } else if x > hi { hi } else { x })
        }
        Unary::AddScalar(s) => {
            let s = c(s);
            each!(x => x + s)
        }
        Unary::MulScalar(s) => {
            let s = c(s);
            each!(x => x * s)
        }
        Unary::Sign => {
            each!(x => if pos(x) { T::ONE } else if x < T::ZERO { -T::ONE } else { T::ZERO })
        }
        Unary::InRange(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            each!(x => if x >= lo && x <= hi { T::ONE } else { T::ZERO })
        }
    }
}

crate::kernel_params! {
    struct UnaryParams { n: u32, a: f32, b: f32 }
}

/// One kernel per op: `op(x)` is the WGSL expression in `x` and the scalars `p.a`, `p.b`.
macro_rules! unary_kernels {
    ($($id:ident = $name:literal: $expr:literal;)*) => {
        $(static $id: Kernel<UnaryParams> = Kernel::new(
            $name,
            &[read("x"), write("y")],
            &[
                concat!("fn op(x: f32) -> f32 {\n    return ", $expr, ";\n}\n"),
                super::activation::FUNCTIONS,
                include_str!("../../shaders/unary.wgsl"),
            ],
        );)*
        /// Every unary kernel (for the portability test).
        pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
            vec![$(&$id),*]
        }
    };
}

unary_kernels! {
    NEG = "neg": "-x";
    EXP = "exp": "exp(x)";
    LOG = "log": "log(x)";
    SQRT = "sqrt": "sqrt(x)";
    ABS = "abs": "abs(x)";
    // The activations: shaders/activation.wgsl, shared with the kernels that fold them.
    TANH = "tanh": "act_tanh(x)";
    SIGMOID = "sigmoid": "act_sigmoid(x)";
    RELU = "relu": "act_relu(x)";
    LEAKY_RELU = "leaky_relu": "act_leaky_relu(x, p.a)";
    POW = "pow": "pow_real(x, p.a)";
    CLAMP = "clamp": "min(max(x, p.a), p.b)";
    ADD_SCALAR = "add_scalar": "x + p.a";
    MUL_SCALAR = "mul_scalar": "x * p.a";
    SIGN = "sign": "sign(x)";
    IN_RANGE = "in_range": "select(0.0, 1.0, x >= p.a && x <= p.b)";
}

impl Unary {
    /// The op's kernel and its scalars a and b.
    fn kernel(self) -> (&'static Kernel<UnaryParams>, f64, f64) {
        match self {
            Unary::Neg => (&NEG, 0.0, 0.0),
            Unary::Exp => (&EXP, 0.0, 0.0),
            Unary::Log => (&LOG, 0.0, 0.0),
            Unary::Sqrt => (&SQRT, 0.0, 0.0),
            Unary::Abs => (&ABS, 0.0, 0.0),
            Unary::Tanh => (&TANH, 0.0, 0.0),
            Unary::Sigmoid => (&SIGMOID, 0.0, 0.0),
            Unary::Relu => (&RELU, 0.0, 0.0),
            Unary::LeakyRelu(a) => (&LEAKY_RELU, a, 0.0),
            Unary::Pow(e) => (&POW, e, 0.0),
            Unary::Clamp(lo, hi) => (&CLAMP, lo, hi),
            Unary::AddScalar(s) => (&ADD_SCALAR, s, 0.0),
            Unary::MulScalar(s) => (&MUL_SCALAR, s, 0.0),
            Unary::Sign => (&SIGN, 0.0, 0.0),
            Unary::InRange(lo, hi) => (&IN_RANGE, lo, hi),
        }
    }
}

/// `op` on every value of CPU storage (no graph).
fn apply<T: Real>(op: Unary, v: &[T]) -> Vec<T> {
    apply_with(op, Collect(v))
}

/// `op` applied to CPU values in place (an activation folded into the op before it).
pub(crate) fn apply_in_place(op: Unary, s: &CpuStorage) {
    match s {
        CpuStorage::F32(v) => apply_with(op, InPlace(&mut v.borrow_mut()[..])),
        CpuStorage::F64(v) => apply_with(op, InPlace(&mut v.borrow_mut()[..])),
    }
}

/// Applies `op` to every element, recording the graph edge.
pub(crate) fn unary(x: &Tensor, op: Unary) -> Result<Tensor> {
    let storage = match x.storage() {
        Storage::Cpu(s) => Storage::Cpu(with_cpu!(s, v => apply(op, v))),
        Storage::Gpu(buf) => {
            let ctx = buf.context();
            let (kernel, a, b) = op.kernel();
            let out = ctx.alloc(x.numel())?;
            let params = UnaryParams {
                n: x.numel() as u32,
                a: a as f32,
                b: b as f32,
            };
            ctx.dispatch(kernel, &params, &[buf, &out], ctx.grid(x.numel())?)?;
            Storage::Gpu(out)
        }
    };
    Ok(Tensor::from_op(
        storage,
        x.shape().to_vec(),
        &[x],
        UnaryGrad(op),
    ))
}

struct UnaryGrad(Unary);

impl GradFn for UnaryGrad {
    fn name(&self) -> &'static str {
        self.0.kernel().0.name
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let gx = match self.0 {
            Unary::Neg => g.neg()?,
            Unary::Exp => g.mul(out)?,
            Unary::Log => g.div(x)?,
            Unary::Sqrt => g.div(out)?.mul_scalar(0.5)?,
            Unary::Abs => g.mul(&unary(x, Unary::Sign)?)?,
            // The activations: one kernel each (binary.rs), differentiable again.
            Unary::Tanh => binary(g, out, Binary::TanhGrad)?,
            Unary::Sigmoid => binary(g, out, Binary::SigmoidGrad)?,
            Unary::Relu => binary(g, x, Binary::ReluGrad)?,
            Unary::LeakyRelu(a) => binary(g, x, Binary::LeakyReluGrad(a))?,
            Unary::Pow(2.0) => g.mul(x)?.mul_scalar(2.0)?,
            Unary::Pow(e) => g.mul(&x.pow(e - 1.0)?.mul_scalar(e)?)?,
            Unary::Clamp(lo, hi) => g.mul(&unary(x, Unary::InRange(lo, hi))?)?,
            Unary::AddScalar(_) => g.clone(),
            Unary::MulScalar(s) => g.mul_scalar(s)?,
            Unary::Sign | Unary::InRange(..) => return Ok(vec![None]),
        };
        Ok(vec![Some(gx)])
    }
}

impl Tensor {
    pub fn neg(&self) -> Result<Tensor> {
        unary(self, Unary::Neg)
    }
    pub fn exp(&self) -> Result<Tensor> {
        unary(self, Unary::Exp)
    }
    /// Natural logarithm.
    pub fn log(&self) -> Result<Tensor> {
        unary(self, Unary::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        unary(self, Unary::Sqrt)
    }
    pub fn abs(&self) -> Result<Tensor> {
        unary(self, Unary::Abs)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        unary(self, Unary::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        unary(self, Unary::Sigmoid)
    }
    pub fn relu(&self) -> Result<Tensor> {
        unary(self, Unary::Relu)
    }
    /// `x` for x > 0, `alpha * x` otherwise.
    pub fn leaky_relu(&self, alpha: impl Into<f64>) -> Result<Tensor> {
        unary(self, Unary::LeakyRelu(alpha.into()))
    }
    /// `x^e`; integer exponents accept negative bases.
    pub fn pow(&self, e: impl Into<f64>) -> Result<Tensor> {
        unary(self, Unary::Pow(e.into()))
    }
    pub fn square(&self) -> Result<Tensor> {
        unary(self, Unary::Pow(2.0))
    }
    pub fn clamp(&self, lo: impl Into<f64>, hi: impl Into<f64>) -> Result<Tensor> {
        unary(self, Unary::Clamp(lo.into(), hi.into()))
    }
    pub fn add_scalar(&self, s: impl Into<f64>) -> Result<Tensor> {
        unary(self, Unary::AddScalar(s.into()))
    }
    pub fn mul_scalar(&self, s: impl Into<f64>) -> Result<Tensor> {
        unary(self, Unary::MulScalar(s.into()))
    }
    /// -1, 0 or 1 per element (no gradient).
    pub fn sign(&self) -> Result<Tensor> {
        unary(self, Unary::Sign)
    }
}
