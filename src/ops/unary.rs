//! Element-wise functions of one tensor: arithmetic with a scalar, neg/exp/log/sqrt/pow/abs,
//! clamp and the activations (relu, leaky_relu, tanh, sigmoid), plus the 0/1 masks their
//! backward rules use.

use crate::autograd::GradFn;
use crate::cpu::{self, with_cpu, Real};
use crate::device::Params;
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
    // Masks (no gradient): what the backward rules of relu, leaky_relu, abs and clamp multiply by.
    Sign,
    Step,
    LeakySlope(f64),
    InRange(f64, f64),
}

/// The CPU kernel: the op is matched once, outside the loop, so each arm's loop is
/// specialised (and vectorised where the arithmetic allows).
fn apply<T: Real>(op: Unary, v: &[T]) -> Vec<T> {
    let c = T::from_f64;
    let pos = |x: T| x > T::ZERO;
    macro_rules! each {
        ($x:ident => $e:expr) => {
            cpu::map(v, |$x: T| $e)
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
        Unary::Step => each!(x => if pos(x) { T::ONE } else { T::ZERO }),
        Unary::LeakySlope(a) => {
            let a = c(a);
            each!(x => if pos(x) { T::ONE } else { a })
        }
        Unary::InRange(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            each!(x => if x >= lo && x <= hi { T::ONE } else { T::ZERO })
        }
    }
}

impl Unary {
    /// (kernel name, WGSL expression in `x`, `p.a`, `p.b`, scalars a and b).
    fn wgsl(self) -> (&'static str, &'static str, f64, f64) {
        match self {
            Unary::Neg => ("neg", "-x", 0.0, 0.0),
            Unary::Exp => ("exp", "exp(x)", 0.0, 0.0),
            Unary::Log => ("log", "log(x)", 0.0, 0.0),
            Unary::Sqrt => ("sqrt", "sqrt(x)", 0.0, 0.0),
            Unary::Abs => ("abs", "abs(x)", 0.0, 0.0),
            // tanh(15) is 1 in f32; clamping keeps exp-based implementations away from inf/inf.
            Unary::Tanh => ("tanh", "tanh(clamp(x, -15.0, 15.0))", 0.0, 0.0),
            Unary::Sigmoid => (
                "sigmoid",
                "select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)",
                0.0,
                0.0,
            ),
            Unary::Relu => ("relu", "select(0.0, x, x > 0.0)", 0.0, 0.0),
            Unary::LeakyRelu(a) => ("leaky_relu", "select(p.a * x, x, x > 0.0)", a, 0.0),
            Unary::Pow(e) => ("pow", "pow_real(x, p.a)", e, 0.0),
            Unary::Clamp(lo, hi) => ("clamp", "min(max(x, p.a), p.b)", lo, hi),
            Unary::AddScalar(s) => ("add_scalar", "x + p.a", s, 0.0),
            Unary::MulScalar(s) => ("mul_scalar", "x * p.a", s, 0.0),
            Unary::Sign => ("sign", "sign(x)", 0.0, 0.0),
            Unary::Step => ("step", "select(0.0, 1.0, x > 0.0)", 0.0, 0.0),
            Unary::LeakySlope(a) => ("leaky_slope", "select(p.a, 1.0, x > 0.0)", a, 0.0),
            Unary::InRange(lo, hi) => {
                ("in_range", "select(0.0, 1.0, x >= p.a && x <= p.b)", lo, hi)
            }
        }
    }
}

/// Applies `op` to every element, recording the graph edge.
pub(crate) fn unary(x: &Tensor, op: Unary) -> Result<Tensor> {
    let storage = match x.storage() {
        Storage::Cpu(s) => Storage::Cpu(with_cpu!(s, v => apply(op, v))),
        Storage::Gpu(buf) => {
            let ctx = buf.context();
            let (name, expr, a, b) = op.wgsl();
            let pipeline = ctx.pipeline(&format!("unary_{name}"), "main", || {
                include_str!("../../shaders/unary.wgsl").replace("OP_EXPR", expr)
            })?;
            let out = ctx.alloc(x.numel())?;
            let params = Params::new().u(x.numel()).f(a as f32).f(b as f32);
            ctx.launch(
                &pipeline,
                &params,
                &[buf.raw(), out.raw()],
                ctx.grid(x.numel())?,
            )?;
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
        self.0.wgsl().0
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = &inputs[0];
        let gx = match self.0 {
            Unary::Neg => g.neg()?,
            Unary::Exp => g.mul(out)?,
            Unary::Log => g.div(x)?,
            Unary::Sqrt => g.div(out)?.mul_scalar(0.5)?,
            Unary::Abs => g.mul(&unary(x, Unary::Sign)?)?,
            Unary::Tanh => g.sub(&g.mul(&out.mul(out)?)?)?,
            Unary::Sigmoid => g.mul(&out.sub(&out.mul(out)?)?)?,
            Unary::Relu => g.mul(&unary(x, Unary::Step)?)?,
            Unary::LeakyRelu(a) => g.mul(&unary(x, Unary::LeakySlope(a))?)?,
            Unary::Pow(2.0) => g.mul(x)?.mul_scalar(2.0)?,
            Unary::Pow(e) => g.mul(&x.pow(e - 1.0)?.mul_scalar(e)?)?,
            Unary::Clamp(lo, hi) => g.mul(&unary(x, Unary::InRange(lo, hi))?)?,
            Unary::AddScalar(_) => g.clone(),
            Unary::MulScalar(s) => g.mul_scalar(s)?,
            Unary::Sign | Unary::Step | Unary::LeakySlope(_) | Unary::InRange(..) => {
                return Ok(vec![None])
            }
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
