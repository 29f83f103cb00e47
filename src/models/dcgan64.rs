//! The DCGAN of Radford et al. (2015) as the PyTorch example builds it, for 64x64 images (or
//! 32x32, one block fewer), RGB or grey.
//!
//! G: ConvTranspose z -> 8·ngf x 4x4, then stride-2 ConvTranspose blocks halving the channels
//! (4·ngf, 2·ngf, ngf) and doubling the side, each with BatchNorm and ReLU; a last stride-2
//! ConvTranspose to C channels and tanh. D mirrors it: stride-2 4x4 convolutions from C to
//! ndf, 2·ndf, 4·ndf, 8·ndf with LeakyReLU 0.2 (BatchNorm from the second), and a 4x4
//! convolution to one logit (the example's sigmoid is folded into the loss). No biases;
//! weights N(0, 0.02), BatchNorm gamma N(1, 0.02); Adam 2e-4, betas (0.5, 0.999), eps 1e-8;
//! the PyTorch training loop.

use serde::{Deserialize, Serialize};

use super::book::{BookGan, Hyper, LoopStyle};
use super::net::Net;
use crate::nn::{
    Activation, BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Flatten,
    Reshape, Sequential, WeightInit,
};
use crate::ops::Padding;
use crate::optim::Adam;
use crate::{Device, Error, Result, Rng};

pub const KIND: &str = "dcgan64";
pub const Z_DIM: usize = 100;
/// The initialisers' standard deviation.
const STD: f32 = 0.02;

/// What the networks are built for: the image side (32 or 64), channels (1 or 3) and the
/// base widths of G and D (the PyTorch example's `--ngf`, `--ndf`, both 64 by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub size: usize,
    pub channels: usize,
    pub ngf: usize,
    pub ndf: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            size: 64,
            channels: 3,
            ngf: 64,
            ndf: 64,
        }
    }
}

impl Config {
    /// The config for items of `shape` (`[C, H, W]`) with base widths `ngf`, `ndf`.
    pub fn for_items(shape: &[usize], ngf: usize, ndf: usize) -> Result<Config> {
        let cfg = match *shape {
            [channels, h, w] if h == w => Config {
                size: h,
                channels,
                ngf,
                ndf,
            },
            _ => {
                return Err(Error::Invalid(format!(
                    "{KIND} draws square images; the data's items are {shape:?}"
                )))
            }
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        if !matches!(self.size, 32 | 64) || !matches!(self.channels, 1 | 3) {
            return Err(Error::Invalid(format!(
                "{KIND} is built for 64x64 or 32x32 images with 1 or 3 channels, not {}x{}x{} \
                 (a folder takes --image-size 64 or 32, --channels 3 or 1)",
                self.channels, self.size, self.size
            )));
        }
        if !(1..=1024).contains(&self.ngf) || !(1..=1024).contains(&self.ndf) {
            return Err(Error::Invalid(format!(
                "--ngf {} / --ndf {}: widths must be 1 to 1024",
                self.ngf, self.ndf
            )));
        }
        Ok(())
    }

    /// Width multipliers from the 4x4 end: 8, 4, 2, 1 at 64x64; 4, 2, 1 at 32x32.
    fn multipliers(&self) -> Vec<usize> {
        let blocks = self.size.trailing_zeros() as usize - 2;
        (0..blocks).rev().map(|i| 1 << i).collect()
    }
}

fn init() -> WeightInit {
    WeightInit::Normal { std: STD }
}

fn norm(channels: usize, rng: &mut Rng, device: &Device) -> Result<BatchNorm> {
    BatchNorm::new(channels, device)?
        .torch()
        .gamma_normal(STD, rng)
}

/// G: z (as `[N, 100]`) to `[N, C, size, size]` in [-1, 1].
pub fn generator(cfg: &Config, rng: &mut Rng, device: &Device) -> Result<Sequential> {
    let widths: Vec<usize> = cfg.multipliers().iter().map(|m| m * cfg.ngf).collect();
    let first = ConvTranspose2dConfig::default().init(init()).bias(false);
    let up = first.stride(2).padding(1, 0);
    let mut g = Sequential::new()
        .named("reshape", Reshape::new(&[Z_DIM, 1, 1]))
        .named(
            "convt1",
            ConvTranspose2d::new(Z_DIM, widths[0], 4, first, rng, device)?,
        );
    for (i, pair) in widths.windows(2).enumerate() {
        let n = i + 1;
        g = g
            .named(&format!("bn{n}"), norm(pair[0], rng, device)?)
            .named(&format!("relu{n}"), Activation::Relu)
            .named(
                &format!("convt{}", n + 1),
                ConvTranspose2d::new(pair[0], pair[1], 4, up, rng, device)?,
            );
    }
    let last = widths.len();
    Ok(g.named(&format!("bn{last}"), norm(cfg.ngf, rng, device)?)
        .named(&format!("relu{last}"), Activation::Relu)
        .named(
            &format!("convt{}", last + 1),
            ConvTranspose2d::new(cfg.ngf, cfg.channels, 4, up, rng, device)?,
        )
        .named("tanh", Activation::Tanh))
}

/// D: `[N, C, size, size]` to one logit per image, `[N, 1]`.
pub fn discriminator(cfg: &Config, rng: &mut Rng, device: &Device) -> Result<Sequential> {
    let widths: Vec<usize> = cfg
        .multipliers()
        .iter()
        .rev()
        .map(|m| m * cfg.ndf)
        .collect();
    let down = Conv2dConfig::default()
        .init(init())
        .bias(false)
        .stride(2)
        .padding(Padding::Explicit {
            top: 1,
            bottom: 1,
            left: 1,
            right: 1,
        });
    let mut d = Sequential::new()
        .named(
            "conv1",
            Conv2d::new(cfg.channels, widths[0], 4, down, rng, device)?,
        )
        .named("act1", Activation::LeakyRelu(0.2));
    for (i, pair) in widths.windows(2).enumerate() {
        let n = i + 2;
        d = d
            .named(
                &format!("conv{n}"),
                Conv2d::new(pair[0], pair[1], 4, down, rng, device)?,
            )
            .named(&format!("bn{n}"), norm(pair[1], rng, device)?)
            .named(&format!("act{n}"), Activation::LeakyRelu(0.2));
    }
    let out = Conv2dConfig::default().init(init()).bias(false);
    let last = widths[widths.len() - 1];
    Ok(d.named(
        &format!("conv{}", widths.len() + 1),
        Conv2d::new(last, 1, 4, out, rng, device)?,
    )
    .named("flatten", Flatten))
}

/// Adam(2e-4, 0.5) with PyTorch's defaults beta2 0.999 and eps 1e-8.
pub fn hyper() -> Hyper {
    Hyper {
        lr: 2e-4,
        adam: Adam {
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        },
    }
}

pub fn build(cfg: &Config, rng: &mut Rng, device: &Device) -> Result<BookGan> {
    cfg.validate()?;
    let g = Net::plain(generator(cfg, rng, device)?);
    let d = Net::plain(discriminator(cfg, rng, device)?);
    let mut model = BookGan::new(KIND, g, d, Z_DIM, hyper(), rng.next_u64())?;
    model.style = LoopStyle::Torch;
    model.image = [cfg.channels, cfg.size, cfg.size];
    model.arch = Some(*cfg);
    Ok(model)
}
