//! Small MLPs for the toy distributions of spec section 8 (`toy-bimodal`, `toy-ring`), so the
//! chapter's mode-collapse discussion can be measured with each training scheme: `gan`, `wgan`
//! and `wgan-gp` keep their losses and loops and swap in these networks.
//!
//! The data is not in [-1, 1] (the bimodal temperatures sit at 5 and 30 degrees), so G ends
//! in a fixed affine map onto the data's range and D starts with its inverse: the networks
//! work in unit scale whatever the distribution.

use super::book::{BookGan, Hyper, LoopStyle};
use super::net::Net;
use super::wgan::{gp_adam, Lipschitz, Wgan};
use super::Trainable;
use crate::data::ToySpec;
use crate::nn::{Activation, Ctx, Layer, Linear, Module, Sequential};
use crate::optim::{Adam, RmsProp};
use crate::{Device, Error, Result, Rng, Tensor};

pub const Z_DIM: usize = 8;
pub const HIDDEN: usize = 128;

/// x * scale + shift per feature: constants on the model's device (uploaded once), not
/// parameters.
struct Affine {
    scale: Tensor,
    shift: Tensor,
}

impl Affine {
    fn new(scale: Vec<f32>, shift: Vec<f32>, device: &Device) -> Result<Affine> {
        let dim = scale.len();
        Ok(Affine {
            scale: Tensor::from_vec(scale, &[1, dim], device)?,
            shift: Tensor::from_vec(shift, &[1, dim], device)?,
        })
    }
}

impl Module for Affine {}

impl Layer for Affine {
    fn forward(&self, x: &Tensor, _: &mut Ctx) -> Result<Tensor> {
        x.mul(&self.scale)?.add(&self.shift)
    }
}

/// Per feature, the centre of the modes' span and a half-width that reaches 3 std past the
/// outermost modes.
fn range(spec: &ToySpec) -> (Vec<f32>, Vec<f32>) {
    (0..spec.dim)
        .map(|d| {
            let (lo, hi) = spec.modes.iter().fold((f64::MAX, f64::MIN), |(lo, hi), m| {
                (
                    lo.min(m.centre[d] - 3.0 * m.std),
                    hi.max(m.centre[d] + 3.0 * m.std),
                )
            });
            (((lo + hi) / 2.0) as f32, ((hi - lo) / 2.0) as f32)
        })
        .unzip()
}

/// G: z (8) -> Dense 128 ReLU -> Dense 128 ReLU -> Dense dim, mapped onto the data's range.
pub fn generator(spec: &ToySpec, rng: &mut Rng, device: &Device) -> Result<Sequential> {
    let (centre, half) = range(spec);
    Ok(Sequential::new()
        .named("dense1", Linear::new(Z_DIM, HIDDEN, rng, device)?)
        .named("act1", Activation::Relu)
        .named("dense2", Linear::new(HIDDEN, HIDDEN, rng, device)?)
        .named("act2", Activation::Relu)
        .named("out", Linear::new(HIDDEN, spec.dim, rng, device)?)
        .named("to_data", Affine::new(half, centre, device)?))
}

/// D (or critic): the data's range mapped to unit scale -> Dense 128 LeakyReLU 0.2 -> Dense
/// 128 LeakyReLU -> Dense 1 (a logit for `gan`, a score for the critics).
pub fn discriminator(spec: &ToySpec, rng: &mut Rng, device: &Device) -> Result<Sequential> {
    let (centre, half) = range(spec);
    let scale = half.iter().map(|h| 1.0 / h).collect();
    let shift = centre.iter().zip(&half).map(|(c, h)| -c / h).collect();
    Ok(Sequential::new()
        .named("from_data", Affine::new(scale, shift, device)?)
        .named("dense1", Linear::new(spec.dim, HIDDEN, rng, device)?)
        .named("act1", Activation::LeakyRelu(0.2))
        .named("dense2", Linear::new(HIDDEN, HIDDEN, rng, device)?)
        .named("act2", Activation::LeakyRelu(0.2))
        .named("out", Linear::new(HIDDEN, 1, rng, device)?))
}

/// `model` (gan, wgan or wgan-gp) with the toy networks for `spec`, named `<model>-<data>`.
/// Each keeps its loss, loop (`style` for the GAN) and optimiser. WGAN keeps the spec's RMSprop 5e-5 (at 1e-3 each
/// update moves a weight a tenth of the clip range and the clipped critic degenerates); the
/// GAN and WGAN-GP use 1e-3 so that they settle within a few thousand steps.
pub fn build(
    model: &str,
    spec: &ToySpec,
    style: LoopStyle,
    rng: &mut Rng,
    device: &Device,
) -> Result<Box<dyn Trainable>> {
    let kind = format!("{model}-{}", spec.name);
    let g = Net::plain(generator(spec, rng, device)?);
    let d = Net::plain(discriminator(spec, rng, device)?);
    let seed = rng.next_u64();
    Ok(match model {
        "gan" => {
            let hyper = Hyper {
                lr: 1e-3,
                adam: Adam {
                    beta1: 0.5,
                    ..Adam::default()
                },
            };
            let mut gan = BookGan::new(&kind, g, d, Z_DIM, hyper, seed)?;
            gan.style = style;
            Box::new(gan)
        }
        "wgan" => Box::new(Wgan::new(
            &kind,
            g,
            d,
            Z_DIM,
            Lipschitz::Clip(0.01),
            (RmsProp::default(), 5e-5),
            seed,
        )?),
        "wgan-gp" => Box::new(Wgan::new(
            &kind,
            g,
            d,
            Z_DIM,
            Lipschitz::Penalty(10.0),
            (gp_adam(), 1e-3),
            seed,
        )?),
        other => {
            return Err(Error::Invalid(format!(
                "no toy version of \"{other}\" (toy data trains gan, wgan or wgan-gp)"
            )))
        }
    })
}
