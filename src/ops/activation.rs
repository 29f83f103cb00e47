//! Activations folded into the kernel that produces their input: a GEMM's store (linear and
//! convolution layers with a bias) and batch norm's normalise pass. The fused node is
//! differentiated through its output: relu and leaky relu (slope >= 0) take their mask from
//! the output's sign, tanh and sigmoid their derivative from the output's value, so the
//! pre-activation is never stored.

use super::binary::{binary, Binary};
use super::unary::{apply_in_place, unary, Unary};
use crate::autograd::GradFn;
use crate::cpu::{CpuStorage, Real};
use crate::{Error, Result, Tensor};

/// The activation functions (also the `nn::Activation` layer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

/// The WGSL activation functions every user of them includes.
pub(crate) const FUNCTIONS: &str = include_str!("../../shaders/activation.wgsl");
/// `activate(x)`, switching on the params' `act` and `act_alpha` (after [`FUNCTIONS`]).
pub(crate) const ACTIVATE: &str = include_str!("../../shaders/activate.wgsl");

impl Activation {
    fn unary(self) -> Unary {
        match self {
            Activation::Relu => Unary::Relu,
            Activation::LeakyRelu(a) => Unary::LeakyRelu(f64::from(a)),
            Activation::Tanh => Unary::Tanh,
            Activation::Sigmoid => Unary::Sigmoid,
        }
    }

    /// The params' (act, act_alpha) of a kernel that folds `act` (0 for none).
    pub(crate) fn code(act: Option<Activation>) -> (u32, f32) {
        match act {
            None => (0, 0.0),
            Some(Activation::Relu) => (1, 0.0),
            Some(Activation::LeakyRelu(a)) => (2, a),
            Some(Activation::Tanh) => (3, 0.0),
            Some(Activation::Sigmoid) => (4, 0.0),
        }
    }

    /// Whether the derivative can be read off the output (a leaky relu with a negative slope
    /// flips the sign, so its mask cannot).
    pub(crate) fn foldable(self) -> Result<Activation> {
        match self {
            Activation::LeakyRelu(a) if a < 0.0 || a.is_nan() => Err(Error::Invalid(format!(
                "a leaky relu folded into the layer before it needs a slope >= 0, got {a}"
            ))),
            act => Ok(act),
        }
    }

    /// The activation as its own op.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        unary(x, self.unary())
    }

    /// The activation of CPU values, in place, with the unary op's own kernel.
    pub(crate) fn apply_cpu(act: Option<Activation>, z: &CpuStorage) {
        if let Some(act) = act {
            apply_in_place(act.unary(), z);
        }
    }

    /// The gradient through the activation of one CPU value, from the gradient `g` of its
    /// output `y` (what `grad` computes; the kernels that fold the backward use it).
    #[inline(always)]
    pub(crate) fn grad_of<T: Real>(act: Option<Activation>, g: T, y: T) -> T {
        match act {
            None => g,
            Some(Activation::Relu) if y > T::ZERO => g,
            Some(Activation::Relu) => T::ZERO,
            Some(Activation::LeakyRelu(_)) if y > T::ZERO => g,
            Some(Activation::LeakyRelu(a)) => T::from_f64(f64::from(a)) * g,
            Some(Activation::Tanh) => g * (T::ONE - y * y),
            Some(Activation::Sigmoid) => g * y * (T::ONE - y),
        }
    }

    /// The gradient through the activation, from the gradient `g` of its output `y`.
    pub(crate) fn grad(self, g: &Tensor, y: &Tensor) -> Result<Tensor> {
        let op = match self {
            Activation::Relu => Binary::ReluGrad,
            Activation::LeakyRelu(a) => Binary::LeakyReluGrad(f64::from(a)),
            Activation::Tanh => Binary::TanhGrad,
            Activation::Sigmoid => Binary::SigmoidGrad,
        };
        binary(g, y, op)
    }
}

/// The backward of an op with an activation folded in: the gradient through the activation
/// (from the node's output), then the op's own rule, which must not read the output.
pub(crate) struct Activated<G> {
    pub op: G,
    pub act: Option<Activation>,
}

impl<G: GradFn> GradFn for Activated<G> {
    fn name(&self) -> &'static str {
        self.op.name()
    }

    fn backward(&self, inputs: &[Tensor], out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        match self.act {
            Some(act) => self.op.backward(inputs, out, &act.grad(g, out)?),
            None => self.op.backward(inputs, out, g),
        }
    }
}

impl Tensor {
    /// `act(self)`, or `self` for none: the unfused path of a layer that folds an activation.
    pub(crate) fn activated(self, act: Option<Activation>) -> Result<Tensor> {
        match act {
            Some(act) => act.apply(&self),
            None => Ok(self),
        }
    }
}
