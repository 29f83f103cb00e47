//! Layers that move or resample values without parameters: Reshape, Flatten, ZeroPad2d,
//! Upsample (nearest) and AvgPool2d, all on NCHW with the batch dim kept.

use super::{Ctx, Layer, Module};
use crate::{Error, Result, Tensor};

/// Keras `Reshape(shape)`: every sample to `shape` (the batch dim is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape(pub Vec<usize>);

impl Reshape {
    pub fn new(shape: &[usize]) -> Reshape {
        Reshape(shape.to_vec())
    }
}

impl Module for Reshape {}

impl Layer for Reshape {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        let Some(&batch) = x.shape().first() else {
            return Err(Error::shape("Reshape", "input has no batch dim"));
        };
        let mut shape = vec![batch];
        shape.extend(&self.0);
        x.reshape(&shape)
    }
}

/// Keras `Flatten`: [N, ...] -> [N, prod(...)].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl Module for Flatten {}

impl Layer for Flatten {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.flatten(1)
    }
}

/// Keras `ZeroPadding2D(((top, bottom), (left, right)))` on NCHW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroPad2d {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl ZeroPad2d {
    pub fn new(top: usize, bottom: usize, left: usize, right: usize) -> ZeroPad2d {
        ZeroPad2d {
            top,
            bottom,
            left,
            right,
        }
    }
}

impl Module for ZeroPad2d {}

impl Layer for ZeroPad2d {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::shape(
                "ZeroPad2d",
                format!("needs NCHW, got {:?}", x.shape()),
            ));
        }
        x.pad(&[
            (0, 0),
            (0, 0),
            (self.top, self.bottom),
            (self.left, self.right),
        ])
    }
}

/// Keras `UpSampling2D(factor)`: nearest-neighbour upsampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsample(pub usize);

impl Module for Upsample {}

impl Layer for Upsample {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.upsample_nearest2d(self.0)
    }
}

/// Average over non-overlapping k x k blocks (ProGAN's downsampling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d(pub usize);

impl Module for AvgPool2d {}

impl Layer for AvgPool2d {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.avg_pool2d(self.0)
    }
}
