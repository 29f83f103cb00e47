//! DCGAN as the book builds it (Radford et al. 2015 adapted to 28x28 MNIST).

use super::book::{BookGan, Hyper};
use super::net::Net;
use crate::nn::{
    Activation, BatchNorm, Conv2d, Conv2dConfig, Dropout, Flatten, Linear, Reshape, Sequential,
    ZeroPad2d,
};
use crate::{Device, Result, Rng};

pub const Z_DIM: usize = 100;

/// G: Dense 128*7*7 ReLU, reshape 128x7x7; [UpSampling x2, Conv k3 same, BN(0.8), ReLU] with
/// 128 then 64 channels (each upsampling and conv one layer); Conv 1 k3 same, tanh ->
/// 1x28x28.
pub fn generator(rng: &mut Rng, device: &Device) -> Result<Sequential> {
    generator_with(3, 1, rng, device)
}

/// The DCGAN generator with `kernel` x `kernel` convolutions (the book's WGAN uses 4) drawing
/// `channels` x 28 x 28.
pub fn generator_with(
    kernel: usize,
    channels: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Sequential> {
    let same = Conv2dConfig::default().same();
    // Each UpSampling2D is folded into the convolution after it: one op, the same function,
    // which on the CPU never stores the upsampled image and does 2.25x fewer FLOPs (2.56x for
    // the WGAN's 4x4 kernels).
    let up_same = same.upsample(2);
    Ok(Sequential::new()
        .named("dense", Linear::new(Z_DIM, 128 * 7 * 7, rng, device)?)
        .named("relu0", Activation::Relu)
        .named("reshape", Reshape::new(&[128, 7, 7]))
        .named(
            "conv1",
            Conv2d::new(128, 128, kernel, up_same, rng, device)?,
        )
        .named("bn1", BatchNorm::new(128, device)?.momentum(0.8))
        .named("relu1", Activation::Relu)
        .named("conv2", Conv2d::new(128, 64, kernel, up_same, rng, device)?)
        .named("bn2", BatchNorm::new(64, device)?.momentum(0.8))
        .named("relu2", Activation::Relu)
        .named(
            "conv3",
            Conv2d::new(64, channels, kernel, same, rng, device)?,
        )
        .named("tanh", Activation::Tanh))
}

/// D: Conv 32 k3 s2, LeakyReLU 0.2, Dropout 0.25; Conv 64 k3 s2, ZeroPad bottom/right
/// (7 -> 8), BN(0.8), LeakyReLU, Dropout; Conv 128 k3 s2, BN, LeakyReLU, Dropout; Conv 256 k3
/// s1, BN, LeakyReLU, Dropout; Flatten; Dense 1 (logit: the sigmoid is folded into the loss).
pub fn discriminator(rng: &mut Rng, device: &Device) -> Result<Sequential> {
    discriminator_with([32, 64, 128, 256], true, 1, rng, device)
}

/// The DCGAN discriminator with the given conv widths, with or without its batch norms (the
/// WGAN critic keeps them, WGAN-GP's critic has none), on `channels` x 28 x 28; its output
/// is linear.
pub fn discriminator_with(
    widths: [usize; 4],
    batch_norm: bool,
    channels: usize,
    rng: &mut Rng,
    device: &Device,
) -> Result<Sequential> {
    let [w1, w2, w3, w4] = widths;
    let s2 = Conv2dConfig::default().same().stride(2);
    let s1 = Conv2dConfig::default().same();
    let mut d = Sequential::new()
        .named("conv1", Conv2d::new(channels, w1, 3, s2, rng, device)?)
        .named("act1", Activation::LeakyRelu(0.2))
        .named("drop1", Dropout::new(0.25)?);
    let blocks = [(2, w1, w2, s2), (3, w2, w3, s2), (4, w3, w4, s1)];
    for (i, cin, cout, cfg) in blocks {
        d = d.named(
            &format!("conv{i}"),
            Conv2d::new(cin, cout, 3, cfg, rng, device)?,
        );
        if i == 2 {
            d = d.named("pad2", ZeroPad2d::new(0, 1, 0, 1));
        }
        if batch_norm {
            d = d.named(
                &format!("bn{i}"),
                BatchNorm::new(cout, device)?.momentum(0.8),
            );
        }
        d = d
            .named(&format!("act{i}"), Activation::LeakyRelu(0.2))
            .named(&format!("drop{i}"), Dropout::new(0.25)?);
    }
    Ok(d.named("flatten", Flatten)
        .named("out", Linear::new(w4 * 4 * 4, 1, rng, device)?))
}

/// The book's DCGAN for 28x28 images of `channels` (1, or 3 for colour data).
pub fn build(channels: usize, rng: &mut Rng, device: &Device) -> Result<BookGan> {
    let g = Net::plain(generator_with(3, channels, rng, device)?);
    let d = Net::plain(discriminator_with(
        [32, 64, 128, 256],
        true,
        channels,
        rng,
        device,
    )?);
    let mut model = BookGan::new("dcgan", g, d, Z_DIM, Hyper::book(), rng.next_u64())?;
    model.image = [channels, 28, 28];
    Ok(model)
}
