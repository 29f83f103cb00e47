//! The vanilla GAN of the book: MLP generator and discriminator on flattened 28x28 images.

/// The book's images: one channel, 28x28.
pub const MNIST: [usize; 3] = [1, 28, 28];

use super::book::{BookGan, Hyper};
use super::net::Net;
use crate::nn::{Activation, BatchNorm, Flatten, Linear, Reshape, Sequential};
use crate::{Device, Result, Rng};

pub const Z_DIM: usize = 100;

/// G: Dense 256, LeakyReLU 0.2, BN(0.8); Dense 512, ...; Dense 1024, ...; Dense 784 tanh.
pub fn generator(rng: &mut Rng, device: &Device) -> Result<Sequential> {
    mlp_generator(
        &[(256, true), (512, true), (1024, true)],
        MNIST,
        rng,
        device,
    )
}

/// From z: per (width, batch norm) a Dense, LeakyReLU 0.2 and, where asked, BN(0.8); then
/// Dense to the image's values, tanh, reshaped to `image` (`[C, H, W]`; the book's 1x28x28).
pub fn mlp_generator(
    widths: &[(usize, bool)],
    image: [usize; 3],
    rng: &mut Rng,
    device: &Device,
) -> Result<Sequential> {
    let mut g = Sequential::new();
    let mut width = Z_DIM;
    for (i, &(w, bn)) in widths.iter().enumerate() {
        g = g
            .named(
                &format!("dense{}", i + 1),
                Linear::new(width, w, rng, device)?,
            )
            .named(&format!("act{}", i + 1), Activation::LeakyRelu(0.2));
        if bn {
            g = g.named(
                &format!("bn{}", i + 1),
                BatchNorm::new(w, device)?.momentum(0.8),
            );
        }
        width = w;
    }
    Ok(g.named(
        "out",
        Linear::new(width, image.iter().product(), rng, device)?,
    )
    .named("tanh", Activation::Tanh)
    .named("reshape", Reshape::new(&image)))
}

/// D: Flatten; Dense 512, LeakyReLU 0.2; Dense 256, LeakyReLU; Dense 1 (logit; the book's
/// sigmoid is folded into the loss, which is what Keras computes for a sigmoid output).
pub fn discriminator(rng: &mut Rng, device: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .named("flatten", Flatten)
        .named("dense1", Linear::new(784, 512, rng, device)?)
        .named("act1", Activation::LeakyRelu(0.2))
        .named("dense2", Linear::new(512, 256, rng, device)?)
        .named("act2", Activation::LeakyRelu(0.2))
        .named("out", Linear::new(256, 1, rng, device)?))
}

pub fn build(rng: &mut Rng, device: &Device) -> Result<BookGan> {
    let g = Net::plain(generator(rng, device)?);
    let d = Net::plain(discriminator(rng, device)?);
    BookGan::new("gan", g, d, Z_DIM, Hyper::book(), rng.next_u64())
}
