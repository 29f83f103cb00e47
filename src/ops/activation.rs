//! Activations folded into the kernel that produces their input: a GEMM's store (linear and
//! convolution layers with a bias) and batch norm's normalise pass. The fused node is
//! differentiated through its output: relu and leaky relu (slope >= 0) take their mask from
//! the output's sign, tanh and sigmoid their derivative from the output's value, so the
//! pre-activation is never stored.

use super::binary::{act_grad, binary, Binary};
use super::unary::{apply_in_place, unary, Unary};
use crate::cpu::{team, CpuStorage, Real};
use crate::tensor::graph::GradFn;
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

    /// The CPU form of a GEMM's fused store, in place on its fresh output `y` (samples of
    /// channels of `plane` values: NCHW for a convolution, `[m, n]` with `plane` 1 for a linear
    /// layer): `act(y + bias[channel])`.
    pub(crate) fn store_cpu(
        act: Option<Activation>,
        y: &CpuStorage,
        bias: Option<&[f64]>,
        plane: usize,
    ) {
        fn add<T: Real>(y: &mut [T], bias: &[f64], plane: usize) {
            let bias: Vec<T> = bias.iter().map(|&v| T::from_f64(v)).collect();
            let sample = bias.len() * plane;
            team::for_each_row(y, sample, team::rows_per_piece(sample), |_, s| {
                if plane == 1 {
                    s.iter_mut().zip(&bias).for_each(|(v, &b)| *v = *v + b);
                    return;
                }
                for (channel, &b) in s.chunks_mut(plane.max(1)).zip(&bias) {
                    channel.iter_mut().for_each(|v| *v = *v + b);
                }
            });
        }
        if let Some(bias) = bias {
            match y {
                CpuStorage::F32(v) => add(&mut v.borrow_mut(), bias, plane),
                CpuStorage::F64(v) => add(&mut v.borrow_mut(), bias, plane),
            }
        }
        Activation::apply_cpu(act, y);
    }

    /// The gradient through the activation of one CPU value, from the gradient `g` of its
    /// output `y` (what `grad` computes, with the same rules; the kernels that fold the
    /// backward use it).
    #[inline(always)]
    pub(crate) fn grad_of<T: Real>(act: Option<Activation>, g: T, y: T) -> T {
        match act {
            None => g,
            Some(Activation::Relu) => act_grad::relu(g, y),
            Some(Activation::LeakyRelu(a)) => act_grad::leaky_relu(T::from_f64(f64::from(a)), g, y),
            Some(Activation::Tanh) => act_grad::tanh(g, y),
            Some(Activation::Sigmoid) => act_grad::sigmoid(g, y),
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
