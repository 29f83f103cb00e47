//! 2-D convolution and transposed convolution layers (NCHW, PyTorch weight layouts).

use super::init::{weight_layer, Fans, WeightConfig, WeightInit, Weights};
use super::{Activation, Ctx, Layer};
use crate::ops::Padding;
use crate::{Device, Error, Result, Rng, Tensor};

/// Stride, padding and weights of a `Conv2d`. Default: stride 1, `Valid` padding, Keras
/// initialisation (as `Conv2D` defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dConfig {
    pub stride: usize,
    pub padding: Padding,
    pub weights: WeightConfig,
    /// The input is nearest-upsampled this many times first (Keras' `UpSampling2D` before
    /// the `Conv2D`), in the same op; 1: not upsampled.
    pub upsample: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig {
            stride: 1,
            padding: Padding::Valid,
            weights: WeightConfig::default(),
            upsample: 1,
        }
    }
}

impl Conv2dConfig {
    /// Upsample the input by `factor` (nearest) before convolving it, stride 1: one op that
    /// never stores the upsampled image (see [`Tensor::upsample_conv2d`]).
    pub fn upsample(mut self, factor: usize) -> Self {
        self.upsample = factor;
        self
    }

    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    /// Keras `padding="same"` (the odd pixel at the bottom/right).
    pub fn same(mut self) -> Self {
        self.padding = Padding::Same;
        self
    }

    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    pub fn init(mut self, init: WeightInit) -> Self {
        self.weights.init = init;
        self
    }

    pub fn bias(mut self, on: bool) -> Self {
        self.weights.bias = on;
        self
    }
}

/// Keras `Conv2D`: weight `[cout, cin, k, k]`, bias `[cout]`.
pub struct Conv2d {
    w: Weights,
    cfg: Conv2dConfig,
}

impl Conv2d {
    /// `act(conv(x))`, upsampling first where the config says so.
    fn apply(&self, x: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        let (w, bias, cfg) = (self.w.effective()?, self.w.bias.as_ref(), &self.cfg);
        if cfg.upsample == 1 {
            x.conv2d_activated(&w, bias, cfg.stride, cfg.padding, act)
        } else {
            // `new` refused any stride but 1 with upsampling.
            x.upsample_conv2d(cfg.upsample, &w, bias, cfg.padding, act)
        }
    }

    pub fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        cfg: Conv2dConfig,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Conv2d> {
        if cfg.upsample == 0 || (cfg.upsample > 1 && cfg.stride != 1) {
            return Err(Error::Invalid(format!(
                "Conv2d: upsampling by {} takes a positive factor and stride 1 (stride {})",
                cfg.upsample, cfg.stride
            )));
        }
        let fans = Fans {
            fan_in: cin * kernel * kernel,
            fan_out: cout * kernel * kernel,
        };
        let shape = [cout, cin, kernel, kernel];
        Ok(Conv2d {
            w: Weights::new(&shape, fans, cout, cfg.weights, rng, device)?,
            cfg,
        })
    }
}

impl Layer for Conv2d {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        self.apply(x, None)
    }

    fn forward_activated(
        &self,
        x: &Tensor,
        act: Activation,
        _: &mut Ctx,
    ) -> Option<Result<Tensor>> {
        Some(self.apply(x, Some(act)))
    }
}

/// Stride, padding (PyTorch's: output = (in - 1) * stride - 2 * padding + k + output_padding)
/// and weights of a `ConvTranspose2d`. Default: stride 1, no padding, Keras initialisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTranspose2dConfig {
    pub stride: usize,
    pub padding: usize,
    pub output_padding: usize,
    pub weights: WeightConfig,
}

impl Default for ConvTranspose2dConfig {
    fn default() -> Self {
        ConvTranspose2dConfig {
            stride: 1,
            padding: 0,
            output_padding: 0,
            weights: WeightConfig::default(),
        }
    }
}

impl ConvTranspose2dConfig {
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }

    pub fn padding(mut self, padding: usize, output_padding: usize) -> Self {
        self.padding = padding;
        self.output_padding = output_padding;
        self
    }

    pub fn init(mut self, init: WeightInit) -> Self {
        self.weights.init = init;
        self
    }

    pub fn bias(mut self, on: bool) -> Self {
        self.weights.bias = on;
        self
    }
}

/// Transposed convolution: weight `[cin, cout, k, k]` (PyTorch's layout), bias `[cout]`.
pub struct ConvTranspose2d {
    w: Weights,
    cfg: ConvTranspose2dConfig,
}

impl ConvTranspose2d {
    pub fn new(
        cin: usize,
        cout: usize,
        kernel: usize,
        cfg: ConvTranspose2dConfig,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<ConvTranspose2d> {
        // The input-side count, as the official ProGAN code takes it for its fused
        // upscale-conv; glorot's sum of fans is the same either way round.
        let fans = Fans {
            fan_in: cin * kernel * kernel,
            fan_out: cout * kernel * kernel,
        };
        let shape = [cin, cout, kernel, kernel];
        Ok(ConvTranspose2d {
            w: Weights::new(&shape, fans, cout, cfg.weights, rng, device)?,
            cfg,
        })
    }
}

impl Layer for ConvTranspose2d {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.conv_transpose2d(
            &self.w.effective()?,
            self.w.bias.as_ref(),
            self.cfg.stride,
            self.cfg.padding,
            self.cfg.output_padding,
        )
    }
}

weight_layer!(Conv2d, ConvTranspose2d);
