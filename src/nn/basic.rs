//! Layers without parameters: activations, dropout, reshaping, upsampling, zero padding.

use super::{Ctx, Kind, Mode, Module};
use crate::{Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    LeakyRelu(f32),
    Tanh,
    Sigmoid,
}

impl Module for Activation {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        match *self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(a) => x.leaky_relu(a),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
        }
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Tensor, Kind)) {}
}

/// Inverted dropout, active in `Train` and `Frozen` modes (Keras keeps dropout on in a
/// frozen model trained as part of a combined model).
pub struct Dropout(pub f32);

impl Module for Dropout {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let active = ctx.mode != Mode::Eval;
        let offset = if active { ctx.next_dropout_offset() } else { 0 };
        x.dropout(self.0, active, ctx.seed, offset)
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Tensor, Kind)) {}
}

/// Keeps the batch dim, merges the rest.
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.flatten(1)
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Tensor, Kind)) {}
}

/// Reshapes every sample to `shape` (batch dim kept).
pub struct Reshape(pub Vec<usize>);

impl Module for Reshape {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        let mut shape = vec![x.shape().first().copied().unwrap_or(1)];
        shape.extend(&self.0);
        x.reshape(&shape)
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Tensor, Kind)) {}
}

/// Nearest-neighbour upsampling by an integer factor (Keras `UpSampling2D`).
pub struct Upsample(pub usize);

impl Module for Upsample {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.upsample_nearest2d(self.0)
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Tensor, Kind)) {}
}

/// Zero padding of H and W: [top, bottom, left, right] (Keras `ZeroPadding2D`).
pub struct ZeroPad(pub [usize; 4]);

impl Module for ZeroPad {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        let [t, b, l, r] = self.0;
        x.pad(&[(0, 0), (0, 0), (t, b), (l, r)])
    }
    fn visit(&self, _: &str, _: &mut dyn FnMut(String, &Tensor, Kind)) {}
}
