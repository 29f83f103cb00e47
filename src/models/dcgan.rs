//! DCGAN as the book builds it (Radford et al. 2015 adapted to 28x28 MNIST).

use super::book::{BookGan, Hyper};
use crate::nn::{
    Activation, BatchNorm, Conv2d, Dropout, Flatten, Linear, Reshape, Sequential, Upsample, ZeroPad,
};
use crate::ops::Padding;
use crate::{Device, Result, Rng};

pub const Z_DIM: usize = 100;

/// G: Dense 128*7*7 ReLU, reshape 128x7x7; [UpSampling x2, Conv k3 same, BN(0.8), ReLU] with
/// 128 then 64 channels; Conv 1 k3 same, tanh -> 1x28x28.
pub fn generator(rng: &mut Rng, device: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .add("dense", Linear::new(Z_DIM, 128 * 7 * 7, rng, device)?)
        .add("relu0", Activation::Relu)
        .add("reshape", Reshape(vec![128, 7, 7]))
        .add("up1", Upsample(2))
        .add(
            "conv1",
            Conv2d::new(128, 128, 3, 1, Padding::Same, rng, device)?,
        )
        .add("bn1", BatchNorm::new(128, 0.8, 1e-3, device)?)
        .add("relu1", Activation::Relu)
        .add("up2", Upsample(2))
        .add(
            "conv2",
            Conv2d::new(128, 64, 3, 1, Padding::Same, rng, device)?,
        )
        .add("bn2", BatchNorm::new(64, 0.8, 1e-3, device)?)
        .add("relu2", Activation::Relu)
        .add(
            "conv3",
            Conv2d::new(64, 1, 3, 1, Padding::Same, rng, device)?,
        )
        .add("tanh", Activation::Tanh))
}

/// D: Conv 32 k3 s2, LeakyReLU 0.2, Dropout 0.25; Conv 64 k3 s2, ZeroPad bottom/right
/// (7 -> 8), BN(0.8), LeakyReLU, Dropout; Conv 128 k3 s2, BN, LeakyReLU, Dropout; Conv 256 k3
/// s1, BN, LeakyReLU, Dropout; Flatten; Dense 1 (logit: the sigmoid is folded into the loss).
pub fn discriminator(rng: &mut Rng, device: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .add(
            "conv1",
            Conv2d::new(1, 32, 3, 2, Padding::Same, rng, device)?,
        )
        .add("act1", Activation::LeakyRelu(0.2))
        .add("drop1", Dropout(0.25))
        .add(
            "conv2",
            Conv2d::new(32, 64, 3, 2, Padding::Same, rng, device)?,
        )
        .add("pad2", ZeroPad([0, 1, 0, 1]))
        .add("bn2", BatchNorm::new(64, 0.8, 1e-3, device)?)
        .add("act2", Activation::LeakyRelu(0.2))
        .add("drop2", Dropout(0.25))
        .add(
            "conv3",
            Conv2d::new(64, 128, 3, 2, Padding::Same, rng, device)?,
        )
        .add("bn3", BatchNorm::new(128, 0.8, 1e-3, device)?)
        .add("act3", Activation::LeakyRelu(0.2))
        .add("drop3", Dropout(0.25))
        .add(
            "conv4",
            Conv2d::new(128, 256, 3, 1, Padding::Same, rng, device)?,
        )
        .add("bn4", BatchNorm::new(256, 0.8, 1e-3, device)?)
        .add("act4", Activation::LeakyRelu(0.2))
        .add("drop4", Dropout(0.25))
        .add("flatten", Flatten)
        .add("out", Linear::new(256 * 4 * 4, 1, rng, device)?))
}

pub fn build(rng: &mut Rng, device: &Device) -> Result<BookGan> {
    let g = generator(rng, device)?;
    let d = discriminator(rng, device)?;
    BookGan::new("dcgan", g, d, Z_DIM, Hyper::book(), device)
}
