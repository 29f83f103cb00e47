//! 2-D convolution layer (NCHW, weights [out, in, k, k]).

use super::{init, join, Ctx, Kind, Module};
use crate::ops::Padding;
use crate::{Device, Result, Rng, Tensor};

pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: usize,
    pub padding: Padding,
}

impl Conv2d {
    /// Glorot-uniform kernel (fans include the kernel area, as in Keras), zero bias.
    pub fn new(
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        padding: Padding,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Self> {
        Ok(Conv2d {
            weight: init::glorot_uniform(
                &[cout, cin, k, k],
                cin * k * k,
                cout * k * k,
                rng,
                device,
            )?,
            bias: init::constant(&[cout], 0.0, device)?,
            stride,
            padding,
        })
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.conv2d(&self.weight, Some(&self.bias), self.stride, self.padding)
    }

    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Kind)) {
        f(join(prefix, "weight"), &self.weight, Kind::Parameter);
        f(join(prefix, "bias"), &self.bias, Kind::Parameter);
    }
}
