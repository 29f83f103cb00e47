//! The conditional GAN as the book builds it (Mirza & Osindero 2014): the label's embedding
//! multiplies z in G and the flattened image in D; losses, optimiser and loop as the vanilla
//! GAN, with D trained on (real, its label) and (fake, the label it was made for).

use super::book::{BookGan, Hyper};
use super::gan::{mlp_generator, Z_DIM};
use super::net::Net;
use super::CLASSES;
use crate::nn::{Activation, Dropout, Embedding, Linear, Sequential};
use crate::{Device, Result, Rng};

/// G: z * Embedding(10, 100)(label); Dense 256, LeakyReLU 0.2, BN(0.8); Dense 512, LeakyReLU;
/// Dense 1024, LeakyReLU, BN(0.8); Dense 784 tanh; reshape 1x28x28 (the spec's layer list,
/// which has no batch norm after the 512 layer). Colour images (`image` 3x28x28) take 3 x 784
/// outputs.
pub fn generator(image: [usize; 3], rng: &mut Rng, device: &Device) -> Result<Net> {
    let body = mlp_generator(
        &[(256, true), (512, false), (1024, true)],
        image,
        rng,
        device,
    )?;
    Ok(Net::conditional(
        body,
        Embedding::new(CLASSES, Z_DIM, rng, device)?,
    ))
}

/// D: flat image * Embedding(10, 784)(label); Dense 512, LeakyReLU 0.2; Dense 512, LeakyReLU,
/// Dropout 0.4; Dense 512, LeakyReLU, Dropout 0.4; Dense 1 (logit: the sigmoid is folded into
/// the loss). Colour images embed and read 3 x 784 values.
pub fn discriminator(image: [usize; 3], rng: &mut Rng, device: &Device) -> Result<Net> {
    let values: usize = image.iter().product();
    let mut d = Sequential::new();
    for i in 1..=3 {
        let inputs = if i == 1 { values } else { 512 };
        d = d
            .named(&format!("dense{i}"), Linear::new(inputs, 512, rng, device)?)
            .named(&format!("act{i}"), Activation::LeakyRelu(0.2));
        if i > 1 {
            d = d.named(&format!("drop{i}"), Dropout::new(0.4)?);
        }
    }
    let d = d.named("out", Linear::new(512, 1, rng, device)?);
    Ok(Net::conditional(
        d,
        Embedding::new(CLASSES, values, rng, device)?,
    ))
}

pub fn build(image: [usize; 3], rng: &mut Rng, device: &Device) -> Result<BookGan> {
    let g = generator(image, rng, device)?;
    let d = discriminator(image, rng, device)?;
    let mut model = BookGan::new("cgan", g, d, Z_DIM, Hyper::book(), rng.next_u64())?;
    model.image = image;
    Ok(model)
}
