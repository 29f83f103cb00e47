//! Dropout as a layer: the mask comes from the forward context's stream.

use super::{Ctx, Layer, Mode, Module};
use crate::{Error, Result, Tensor};

/// Keras `Dropout(rate)`: inverted dropout in training mode, the identity in inference.
/// Freezing does not turn it off (as in Keras, where `trainable` does not touch dropout).
pub struct Dropout {
    rate: f32,
    mode: Mode,
}

impl Dropout {
    pub fn new(rate: f32) -> Result<Dropout> {
        if !(0.0..1.0).contains(&rate) {
            return Err(Error::Invalid(format!(
                "dropout rate {rate} must be in [0, 1)"
            )));
        }
        Ok(Dropout {
            rate,
            mode: Mode::default(),
        })
    }
}

impl Module for Dropout {
    fn mode(&self) -> Option<&Mode> {
        Some(&self.mode)
    }
}

impl Layer for Dropout {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if !self.mode.is_training() || self.rate == 0.0 {
            return Ok(x.clone());
        }
        let (seed, offset) = ctx.next_dropout_key();
        x.dropout(self.rate, true, seed, offset)
    }
}
