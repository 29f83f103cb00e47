//! Activation layers.

use super::{Ctx, Layer, Module};
use crate::{Result, Tensor};

/// ReLU, LeakyReLU(alpha), Tanh or Sigmoid as a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Module for Activation {}

impl Layer for Activation {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(alpha) => x.leaky_relu(alpha),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
        }
    }
}
