//! Progressive GAN (Karras et al. 2018) for MNIST: both networks grow 4x4 -> 8x8 -> 16x16 ->
//! 32x32, each new resolution faded in and then stabilised; pixel norm, minibatch stddev,
//! equalised learning rate, WGAN-GP plus drift, Adam reset at each new resolution and an EMA
//! generator for samples. See `../shared/spec/models.md`, section 7.
//!
//! Every resolution block is built up front; the schedule (images shown so far) decides which
//! blocks run and how the newest one is blended in, so a checkpoint always has the same entries.

use super::saved::{self, checkpoint_methods};
use super::wasserstein::{critic_loss, gradient_penalty, interpolation_weights};
use super::Trainable;
use crate::autograd::no_grad;
use crate::nn::{
    Activation, AvgPool2d, Conv2d, Conv2dConfig, Ctx, Flatten, Layer, Linear, MinibatchStdDev,
    Module, PixelNorm, Reshape, Sequential, Upsample, WeightConfig, WeightInit,
};
use crate::optim::{Adam, Optimizer};
use crate::{Device, Error, Result, Rng, Tensor};
use std::path::Path;

/// The model kind in checkpoints.
pub const KIND: &str = "progan";
/// Resolutions in growing order; the last is the full size (MNIST padded to 32x32).
pub const RESOLUTIONS: [usize; 4] = [4, 8, 16, 32];
/// The full output size: 28x28 digits padded with the background to 32x32.
pub const FULL: usize = 32;
/// Phases: 4x4 stabilise, then fade + stabilise for each of 8, 16, 32.
pub const PHASES: u64 = 7;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProGanConfig {
    /// Images shown in each fade and each stabilise phase.
    pub phase_images: u64,
    /// Channels at every resolution (the paper's 512 -> scaled down for MNIST).
    pub width: usize,
    pub z_dim: usize,
    pub lr: f32,
    pub adam: Adam,
    /// Gradient-penalty weight (WGAN-GP's lambda).
    pub gp_lambda: f64,
    /// Weight of the drift term E[D(real)^2].
    pub drift: f64,
    /// Decay of the generator's exponential moving average.
    pub ema_decay: f32,
    /// EMA warm-up (StyleGAN2-ADA's ramp-up): the average's half-life is at most this share
    /// of the images shown so far, so a short run's average is not mostly initial weights;
    /// 0 keeps the decay fixed.
    pub ema_rampup: f64,
    /// Minibatch-stddev group size.
    pub mbstd_group: usize,
}

impl Default for ProGanConfig {
    /// 20k images per phase (a third of MNIST): 140k images, 4375 steps at batch 32;
    /// 64 channels; z of 100 (the zoo's convention); the paper's Adam(1e-3, 0, 0.99, 1e-8), lambda 10, drift 1e-3,
    /// EMA 0.999, group 4.
    fn default() -> Self {
        ProGanConfig {
            phase_images: 20_000,
            width: 64,
            z_dim: 100,
            lr: 1e-3,
            adam: Adam {
                beta1: 0.0,
                beta2: 0.99,
                eps: 1e-8,
            },
            gp_lambda: 10.0,
            drift: 1e-3,
            ema_decay: 0.999,
            ema_rampup: 0.05,
            mbstd_group: 4,
        }
    }
}

impl ProGanConfig {
    /// Images shown over the whole schedule (7 phases).
    pub fn total_images(&self) -> u64 {
        PHASES * self.phase_images
    }

    /// Training steps for the whole schedule at `batch` (rounded up).
    pub fn total_steps(&self, batch: usize) -> u64 {
        self.total_images().div_ceil(batch.max(1) as u64)
    }

    /// The largest width accepted from a flag or a checkpoint: the paper's networks top out at
    /// 512 channels, and 1024 already needs gigabytes per step at the 32x32 phase.
    pub const MAX_WIDTH: usize = 1024;

    /// Refuses sizes no run could hold (from a flag or a checkpoint's config), naming `from`.
    pub fn validate(&self, from: &str) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(format!("ProGAN {what} ({from})")));
        if !(1..=Self::MAX_WIDTH).contains(&self.width) {
            return bad(format!(
                "width {} must be 1 to {}",
                self.width,
                Self::MAX_WIDTH
            ));
        }
        if !(1..=4096).contains(&self.z_dim) {
            return bad(format!("z_dim {} must be 1 to 4096", self.z_dim));
        }
        if !(1..=1024).contains(&self.mbstd_group) {
            return bad(format!(
                "minibatch-stddev group {} must be 1 to 1024",
                self.mbstd_group
            ));
        }
        if !(1..=1_000_000_000_000).contains(&self.phase_images) {
            return bad(format!(
                "phase_images {} must be 1 to 10^12",
                self.phase_images
            ));
        }
        Ok(())
    }

    /// The config a checkpoint was trained with (its `config` metadata), so a resumed or
    /// sampled run rebuilds the same networks and schedule whatever the command line says.
    pub fn from_checkpoint(path: &Path) -> Result<Self> {
        let text = saved::config(path)?;
        let saved: SavedConfig = serde_json::from_str(&text).map_err(|e| {
            Error::Checkpoint(format!(
                "{}: ProGAN config unreadable ({e}): {}",
                path.display(),
                saved::quoted(&text)
            ))
        })?;
        let cfg = ProGanConfig {
            phase_images: saved.phase_images,
            width: saved.width,
            z_dim: saved.z_dim,
            lr: saved.adam.lr,
            adam: Adam {
                beta1: saved.adam.beta1,
                beta2: saved.adam.beta2,
                eps: saved.adam.eps,
            },
            gp_lambda: saved.gp_lambda,
            drift: saved.drift,
            ema_decay: saved.ema_decay,
            ema_rampup: saved.ema_rampup,
            mbstd_group: saved.mbstd_group,
        };
        cfg.validate(&format!("config of {}", path.display()))?;
        Ok(cfg)
    }

    fn json(&self) -> String {
        let a = self.adam;
        let saved = SavedConfig {
            model: KIND.into(),
            phase_images: self.phase_images,
            width: self.width,
            z_dim: self.z_dim,
            adam: SavedAdam {
                lr: self.lr,
                beta1: a.beta1,
                beta2: a.beta2,
                eps: a.eps,
            },
            gp_lambda: self.gp_lambda,
            drift: self.drift,
            ema_decay: self.ema_decay,
            ema_rampup: self.ema_rampup,
            mbstd_group: self.mbstd_group,
        };
        serde_json::to_string(&saved).expect("plain data")
    }
}

/// A checkpoint's `config` metadata, as it has always been laid out.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedConfig {
    model: String,
    phase_images: u64,
    width: usize,
    z_dim: usize,
    adam: SavedAdam,
    gp_lambda: f64,
    drift: f64,
    ema_decay: f32,
    ema_rampup: f64,
    mbstd_group: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedAdam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

/// Where the schedule stands after some number of images shown.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    /// 0: 4x4 stabilise; 1, 3, 5: fade in 8, 16, 32; 2, 4, 6: stabilise 8, 16, 32.
    pub index: u64,
    /// The output resolution (4, 8, 16 or 32).
    pub resolution: usize,
    /// Weight of the newest block: rises linearly 0 -> 1 over a fade phase, 1 otherwise.
    pub alpha: f32,
}

impl Phase {
    pub fn is_fade(&self) -> bool {
        self.index % 2 == 1
    }

    /// Index of the newest block (0 for 4x4 .. 3 for 32x32).
    pub fn level(&self) -> usize {
        self.index.div_ceil(2) as usize
    }
}

/// The schedule: the phase a step trains in when `images_shown` images have been shown
/// before it. Past the last phase it stays at 32x32, alpha 1.
pub fn schedule(images_shown: u64, phase_images: u64) -> Phase {
    let p = phase_images.max(1);
    let index = (images_shown / p).min(PHASES - 1);
    let level = index.div_ceil(2) as usize;
    let alpha = if index % 2 == 1 {
        ((images_shown - index * p) as f64 / p as f64) as f32
    } else {
        1.0
    };
    Phase {
        index,
        resolution: RESOLUTIONS[level],
        alpha,
    }
}

/// The EMA decay after a step of `batch` images with `images_shown` images shown before it:
/// `cfg.ema_decay`, lowered while training is young so that the average's half-life
/// (ln 2 / -ln decay steps) spans at most `ema_rampup` of the images shown so far.
pub fn ema_decay(cfg: &ProGanConfig, batch: usize, images_shown: u64) -> f64 {
    let cap = f64::from(cfg.ema_decay);
    if cfg.ema_rampup <= 0.0 {
        return cap;
    }
    let half_life_images = cfg.ema_rampup * (images_shown + batch as u64) as f64;
    cap.min(0.5f64.powf(batch as f64 / half_life_images.max(1e-9)))
}

/// (1 - alpha) * old + alpha * new.
fn lerp(old: &Tensor, new: &Tensor, alpha: f32) -> Result<Tensor> {
    old.mul_scalar(1.0 - f64::from(alpha))?
        .add(&new.mul_scalar(f64::from(alpha))?)
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    gain: f32,
    rng: &mut Rng,
    dev: &Device,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig::default().init(WeightInit::Equalized { gain });
    let cfg = if k == 1 || k == 3 { cfg.same() } else { cfg };
    Conv2d::new(cin, cout, k, cfg, rng, dev)
}

const LRELU: Activation = Activation::LeakyRelu(0.2);
const SQRT2: f32 = std::f32::consts::SQRT_2;

/// The generator: `block0` from z to 4x4 features, `block1..3` each doubling the resolution,
/// and one toRGB 1x1 conv per resolution.
pub struct Generator {
    pub blocks: Vec<Sequential>,
    pub to_rgb: Vec<Conv2d>,
}

impl Generator {
    pub fn new(cfg: &ProGanConfig, rng: &mut Rng, dev: &Device) -> Result<Generator> {
        let c = cfg.width;
        let dense = Linear::with_config(
            cfg.z_dim,
            c * 16,
            WeightConfig::default().init(WeightInit::Equalized { gain: SQRT2 / 4.0 }),
            rng,
            dev,
        )?;
        let mut blocks = vec![Sequential::new()
            .named("dense", dense)
            .named("reshape", Reshape::new(&[c, 4, 4]))
            .named("act0", LRELU)
            .named("norm0", PixelNorm)
            .named("conv", conv(c, c, 3, SQRT2, rng, dev)?)
            .named("act1", LRELU)
            .named("norm1", PixelNorm)];
        for _ in 1..RESOLUTIONS.len() {
            blocks.push(
                Sequential::new()
                    .named("up", Upsample(2))
                    .named("conv0", conv(c, c, 3, SQRT2, rng, dev)?)
                    .named("act0", LRELU)
                    .named("norm0", PixelNorm)
                    .named("conv1", conv(c, c, 3, SQRT2, rng, dev)?)
                    .named("act1", LRELU)
                    .named("norm1", PixelNorm),
            );
        }
        let to_rgb = (0..RESOLUTIONS.len())
            .map(|_| conv(c, 1, 1, 1.0, rng, dev))
            .collect::<Result<_>>()?;
        Ok(Generator { blocks, to_rgb })
    }

    /// Images at `phase`'s resolution for noise `z` [b, z_dim]: during a fade the newest
    /// block's output blended with the upsampled output of the previous resolution.
    pub fn forward(&self, z: &Tensor, phase: &Phase) -> Result<Tensor> {
        let ctx = &mut Ctx::new(0);
        let level = phase.level();
        let mut h = self.blocks[0].forward(&z.pixel_norm()?, ctx)?;
        for block in &self.blocks[1..level.max(1)] {
            h = block.forward(&h, ctx)?;
        }
        if level == 0 {
            return self.to_rgb[0].forward(&h, ctx);
        }
        let new = self.to_rgb[level].forward(&self.blocks[level].forward(&h, ctx)?, ctx)?;
        if phase.alpha >= 1.0 {
            return Ok(new);
        }
        let old = self.to_rgb[level - 1]
            .forward(&h, ctx)?
            .upsample_nearest2d(2)?;
        lerp(&old, &new, phase.alpha)
    }
}

/// `items` named `<name>0`, `<name>1`, ...
fn numbered<'a, M: Module>(
    name: &'a str,
    items: &'a [M],
) -> impl Iterator<Item = (String, &'a dyn Module)> + 'a {
    items
        .iter()
        .enumerate()
        .map(move |(i, m)| (format!("{name}{i}"), m as &dyn Module))
}

impl Module for Generator {
    fn children(&self) -> Vec<(String, &dyn Module)> {
        numbered("block", &self.blocks)
            .chain(numbered("to_rgb", &self.to_rgb))
            .collect()
    }
}

/// The critic: one fromRGB 1x1 conv (+ LeakyReLU) per resolution, `block1..3` each halving
/// the resolution, and `block0` (minibatch stddev, conv3x3, conv4x4 valid, dense 1) at 4x4.
pub struct Discriminator {
    pub blocks: Vec<Sequential>,
    pub from_rgb: Vec<Sequential>,
}

impl Discriminator {
    pub fn new(cfg: &ProGanConfig, rng: &mut Rng, dev: &Device) -> Result<Discriminator> {
        let c = cfg.width;
        let out = Linear::with_config(
            c,
            1,
            WeightConfig::default().init(WeightInit::Equalized { gain: 1.0 }),
            rng,
            dev,
        )?;
        let mut blocks = vec![Sequential::new()
            .named(
                "mbstd",
                MinibatchStdDev {
                    group: cfg.mbstd_group,
                },
            )
            .named("conv0", conv(c + 1, c, 3, SQRT2, rng, dev)?)
            .named("act0", LRELU)
            .named("conv1", conv(c, c, 4, SQRT2, rng, dev)?)
            .named("act1", LRELU)
            .named("flatten", Flatten)
            .named("dense", out)];
        for _ in 1..RESOLUTIONS.len() {
            blocks.push(
                Sequential::new()
                    .named("conv0", conv(c, c, 3, SQRT2, rng, dev)?)
                    .named("act0", LRELU)
                    .named("conv1", conv(c, c, 3, SQRT2, rng, dev)?)
                    .named("act1", LRELU)
                    .named("down", AvgPool2d(2)),
            );
        }
        let from_rgb = (0..RESOLUTIONS.len())
            .map(|_| {
                Ok(Sequential::new()
                    .named("conv", conv(1, c, 1, SQRT2, rng, dev)?)
                    .named("act", LRELU))
            })
            .collect::<Result<_>>()?;
        Ok(Discriminator { blocks, from_rgb })
    }

    /// Scores [b, 1] for images at `phase`'s resolution: during a fade the newest block's
    /// features blended with fromRGB of the 2x average-pooled input.
    pub fn forward(&self, x: &Tensor, phase: &Phase) -> Result<Tensor> {
        let ctx = &mut Ctx::new(0);
        let level = phase.level();
        if x.rank() != 4 || x.shape()[2] != phase.resolution || x.shape()[3] != phase.resolution {
            return Err(Error::shape(
                "progan discriminator",
                format!(
                    "needs [b, 1, {r}, {r}] at this phase, got {:?}",
                    x.shape(),
                    r = phase.resolution
                ),
            ));
        }
        let mut h = self.from_rgb[level].forward(x, ctx)?;
        if level > 0 {
            h = self.blocks[level].forward(&h, ctx)?;
            if phase.alpha < 1.0 {
                let old = self.from_rgb[level - 1].forward(&x.avg_pool2d(2)?, ctx)?;
                h = lerp(&old, &h, phase.alpha)?;
            }
            for block in self.blocks[1..level].iter().rev() {
                h = block.forward(&h, ctx)?;
            }
        }
        self.blocks[0].forward(&h, ctx)
    }
}

impl Module for Discriminator {
    fn children(&self) -> Vec<(String, &dyn Module)> {
        numbered("block", &self.blocks)
            .chain(numbered("from_rgb", &self.from_rgb))
            .collect()
    }
}

/// Real MNIST batches [b, 1, 28, 28] in [-1, 1] as D sees them at `phase`: padded to 32x32
/// with the background -1, average-pooled to the phase's resolution, and during a fade
/// cross-faded with their 2x-downsampled-then-upsampled version by alpha.
pub fn prepare_reals(real: &Tensor, phase: &Phase) -> Result<Tensor> {
    let &[_, _, h, w] = real.shape() else {
        return Err(Error::shape(
            "progan reals",
            format!("needs [b, 1, h, w], got {:?}", real.shape()),
        ));
    };
    if h > FULL || w > FULL {
        return Err(Error::shape(
            "progan reals",
            format!("images larger than {FULL}x{FULL}: {:?}", real.shape()),
        ));
    }
    let (top, left) = ((FULL - h) / 2, (FULL - w) / 2);
    let x = real
        .add_scalar(1.0)?
        .pad(&[
            (0, 0),
            (0, 0),
            (top, FULL - h - top),
            (left, FULL - w - left),
        ])?
        .add_scalar(-1.0)?;
    let x = match FULL / phase.resolution {
        1 => x,
        k => x.avg_pool2d(k)?,
    };
    if phase.alpha >= 1.0 || phase.level() == 0 {
        return Ok(x);
    }
    let low = x.avg_pool2d(2)?.upsample_nearest2d(2)?;
    lerp(&low, &x, phase.alpha)
}

pub struct ProGan {
    pub cfg: ProGanConfig,
    pub generator: Generator,
    pub discriminator: Discriminator,
    /// The exponential moving average of G's weights; `sample` draws from it.
    pub generator_ema: Generator,
    pub opt_g: Optimizer<Adam>,
    pub opt_d: Optimizer<Adam>,
    images_shown: u64,
    /// The resolution the optimisers' state belongs to (their state is reset when it changes).
    optim_resolution: u64,
}

/// Builds G, D and the EMA copy of G (all resolutions) and both optimisers.
pub fn build(cfg: &ProGanConfig, rng: &mut Rng, device: &Device) -> Result<ProGan> {
    if cfg.width == 0 || cfg.z_dim == 0 || cfg.phase_images == 0 {
        return Err(Error::Invalid(
            "progan: width, z_dim and phase_images must be positive".into(),
        ));
    }
    let generator = Generator::new(cfg, rng, device)?;
    let discriminator = Discriminator::new(cfg, rng, device)?;
    let generator_ema = Generator::new(cfg, rng, device)?;
    for (e, p) in generator_ema
        .parameters()
        .iter()
        .zip(generator.parameters())
    {
        e.assign(&p)?;
    }
    Ok(ProGan {
        opt_g: Optimizer::new(cfg.adam, cfg.lr, generator.named_parameters(""))?,
        opt_d: Optimizer::new(cfg.adam, cfg.lr, discriminator.named_parameters(""))?,
        cfg: *cfg,
        generator,
        discriminator,
        generator_ema,
        images_shown: 0,
        optim_resolution: RESOLUTIONS[0] as u64,
    })
}

impl ProGan {
    /// Where the schedule stands: the phase the next step trains in.
    pub fn phase(&self) -> Phase {
        schedule(self.images_shown, self.cfg.phase_images)
    }

    pub fn resolution(&self) -> usize {
        self.phase().resolution
    }

    pub fn alpha(&self) -> f32 {
        self.phase().alpha
    }

    pub fn images_shown(&self) -> u64 {
        self.images_shown
    }

    /// Generator output at the current phase's own resolution (no upscaling), without a graph;
    /// from the EMA generator when `ema`.
    pub fn generate(&self, z: &Tensor, ema: bool) -> Result<Tensor> {
        let g = if ema {
            &self.generator_ema
        } else {
            &self.generator
        };
        no_grad(|| g.forward(z, &self.phase()))
    }

    /// ema = decay * ema + (1 - decay) * g, in place, after a step of `batch` images.
    fn update_ema(&self, batch: usize) -> Result<()> {
        let d = ema_decay(&self.cfg, batch, self.images_shown);
        no_grad(|| {
            for (e, p) in self
                .generator_ema
                .parameters()
                .iter()
                .zip(self.generator.parameters())
            {
                e.assign(&e.mul_scalar(d)?.add(&p.mul_scalar(1.0 - d)?)?)?;
            }
            Ok(())
        })
    }
}

impl Trainable for ProGan {
    fn metric_names(&self) -> Vec<&'static str> {
        vec![
            "critic_loss",
            "gp",
            "g_loss",
            "w_distance",
            "resolution",
            "alpha",
        ]
    }

    fn train_step(
        &mut self,
        real: &Tensor,
        _labels: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<Tensor>> {
        let phase = self.phase();
        let b = real.shape().first().copied().unwrap_or(0);
        let group = self.cfg.mbstd_group.min(b).max(1);
        if b == 0 || !b.is_multiple_of(group) {
            return Err(Error::Invalid(format!(
                "progan: a batch of {b} does not split into minibatch-stddev groups of {group}; use a multiple of {}",
                self.cfg.mbstd_group
            )));
        }
        let device = real.device();
        if phase.resolution as u64 != self.optim_resolution {
            // A new resolution was added: fresh Adam moments and bias correction for both.
            self.opt_g.reset_state()?;
            self.opt_d.reset_state()?;
            self.optim_resolution = phase.resolution as u64;
        }
        let real = no_grad(|| prepare_reals(real, &phase))?;

        // Critic step: WGAN loss + gradient penalty + drift.
        let z = Tensor::randn(&[b, self.cfg.z_dim], 0.0, 1.0, rng, &device)?;
        let fake = no_grad(|| self.generator.forward(&z, &phase))?;
        let eps = interpolation_weights(&real, rng)?;
        self.opt_d.zero_grad();
        let d = &self.discriminator;
        let real_scores = d.forward(&real, &phase)?;
        let fake_scores = d.forward(&fake, &phase)?;
        let wgan = critic_loss(&real_scores, &fake_scores)?;
        let gp = gradient_penalty(
            &mut |x| d.forward(x, &phase),
            &real,
            &fake,
            &eps,
            self.cfg.gp_lambda,
        )?;
        let drift = real_scores
            .square()?
            .mean_all()?
            .mul_scalar(self.cfg.drift)?;
        let loss = wgan.add(&gp)?.add(&drift)?;
        loss.backward()?;
        self.opt_d.step()?;

        // Generator step through the frozen critic, on fresh noise.
        let z = Tensor::randn(&[b, self.cfg.z_dim], 0.0, 1.0, rng, &device)?;
        self.opt_g.zero_grad();
        let g_loss = {
            let _frozen = self.discriminator.freeze();
            let images = self.generator.forward(&z, &phase)?;
            let loss = self
                .discriminator
                .forward(&images, &phase)?
                .mean_all()?
                .mul_scalar(-1.0)?;
            loss.backward()?;
            loss
        };
        self.opt_g.step()?;
        self.update_ema(b)?;
        self.images_shown += b as u64;

        no_grad(|| {
            Ok(vec![
                loss.detach(),
                gp.detach(),
                g_loss.detach(),
                wgan.detach().mul_scalar(-1.0)?,
                Tensor::scalar(phase.resolution as f32, &device)?,
                Tensor::scalar(phase.alpha, &device)?,
            ])
        })
    }

    /// The EMA generator in the current phase's configuration, upscaled (nearest) to 32x32.
    fn sample(&mut self, z: &Tensor, _labels: Option<&[usize]>) -> Result<Tensor> {
        let images = self.generate(z, true)?;
        match FULL / self.resolution() {
            1 => Ok(images),
            k => no_grad(|| images.upsample_nearest2d(k)),
        }
    }

    fn z_dim(&self) -> usize {
        self.cfg.z_dim
    }

    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        self.opt_g.set_lr(0, lr)?;
        self.opt_d.set_lr(0, lr)?;
        self.cfg.lr = lr;
        Ok(())
    }

    fn device(&self) -> Device {
        self.generator.device()
    }

    checkpoint_methods!(
        self,
        kind: KIND,
        config: self.cfg.json(),
        parts: [
            "generator" => generator,
            "discriminator" => discriminator,
            "generator_ema" => generator_ema,
            "optim.generator" => opt_g,
            "optim.discriminator" => opt_d,
            "progan.images_shown" => images_shown,
            "progan.optim_resolution" => optim_resolution,
        ]
    );
}
