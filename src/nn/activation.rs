//! Activation layers. An activation right after a layer that can fold it into its own kernel
//! (linear or convolution with a bias, batch norm) is fused by [`Sequential`](super::Sequential).

use super::{Ctx, Layer, Module};
use crate::{Result, Tensor};

/// ReLU, LeakyReLU(alpha), Tanh or Sigmoid as a layer.
pub use crate::ops::Activation;

impl Module for Activation {}

impl Layer for Activation {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        self.apply(x)
    }

    /// Every activation but a leaky relu with a negative slope (whose derivative the output
    /// does not tell).
    fn as_activation(&self) -> Option<Activation> {
        self.foldable().ok()
    }
}
