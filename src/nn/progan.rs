//! ProGAN's parameter-free layers. Its equalised learning rate is a weight option
//! (`WeightInit::Equalized`) of Linear and the convolutions.

use super::{Ctx, Layer, Module};
use crate::{Result, Tensor};

/// Pixelwise feature normalisation: a / sqrt(mean over channels of a^2 + 1e-8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PixelNorm;

impl Module for PixelNorm {}

impl Layer for PixelNorm {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.pixel_norm()
    }
}

/// Minibatch standard deviation over groups of `group` samples, appended as one feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinibatchStdDev {
    pub group: usize,
}

impl Default for MinibatchStdDev {
    /// The paper's group size, 4.
    fn default() -> Self {
        MinibatchStdDev { group: 4 }
    }
}

impl Module for MinibatchStdDev {}

impl Layer for MinibatchStdDev {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.minibatch_stddev(self.group)
    }
}
