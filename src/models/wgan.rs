//! WGAN (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017): a critic with a linear
//! output trained n_critic times per generator step on E[D(fake)] - E[D(real)], kept
//! Lipschitz by weight clipping (WGAN) or by the gradient penalty (WGAN-GP).
//!
//! Each critic step takes its own real batch and fresh fakes from `generator.predict` (G in
//! inference mode, as the book's Keras code). WGAN updates the critic as the book does, on the
//! real batch and then on the fake one (two updates, each clipped); WGAN-GP makes one update
//! on the whole loss, penalty included (the paper's Algorithm 1). The generator step goes
//! through the frozen critic.

use super::dcgan::{discriminator_with, generator_with, Z_DIM};
use super::net::{predict, Net};
use super::saved::checkpoint_methods;
use super::wasserstein::{critic_loss, gradient_penalty, interpolation_weights};
use super::Trainable;
use crate::autograd::no_grad;
use crate::nn::{Ctx, FrozenNorm, Layer, Module};
use crate::optim::{Adam, Optimizer, RmsProp, UpdateRule};
use crate::{Device, Error, Result, Rng, Tensor};

/// How the critic is kept (approximately) 1-Lipschitz.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lipschitz {
    /// Every critic parameter clipped to [-c, c] after every critic update.
    Clip(f32),
    /// lambda * (||grad D(x_hat)|| - 1)^2 on random interpolates, added to the critic's loss.
    Penalty(f64),
}

pub struct Wgan<R: UpdateRule> {
    pub kind: String,
    pub generator: Net,
    pub critic: Net,
    pub opt_g: Optimizer<R>,
    pub opt_c: Optimizer<R>,
    pub z_dim: usize,
    pub n_critic: usize,
    pub lipschitz: Lipschitz,
    /// The dropout stream, checkpointed with the model.
    pub ctx: Ctx,
    /// How the frozen critic's batch norm normalises in the generator step: with the batch's
    /// statistics (Keras 2.3 on TF1, the default) or its running ones (TF2).
    pub frozen_norm: FrozenNorm,
    /// The optimiser's settings and learning rate, for the checkpoint's metadata.
    rule: String,
    lr: f32,
}

/// The spec's n_critic for both variants.
pub const N_CRITIC: usize = 5;

impl<R: UpdateRule + std::fmt::Debug + Copy> Wgan<R> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: &str,
        generator: Net,
        critic: Net,
        z_dim: usize,
        lipschitz: Lipschitz,
        (rule, lr): (R, f32),
        dropout_seed: u64,
    ) -> Result<Self> {
        let mut opt_c = Optimizer::new(rule, lr, critic.named_parameters(""))?;
        if let Lipschitz::Clip(c) = lipschitz {
            // Every critic parameter is updated at every critic step: clipping in the update's
            // pass bounds them all.
            opt_c.set_clip(Some(c))?;
        }
        Ok(Wgan {
            kind: kind.to_string(),
            opt_g: Optimizer::new(rule, lr, generator.named_parameters(""))?,
            opt_c,
            generator,
            critic,
            z_dim,
            n_critic: N_CRITIC,
            lipschitz,
            ctx: Ctx::new(dropout_seed),
            frozen_norm: FrozenNorm::Batch,
            rule: format!("{rule:?}"),
            lr,
        })
    }
}

impl<R: UpdateRule> Wgan<R> {
    /// One critic step on `real` and fresh fakes; returns (Wasserstein loss, penalty).
    fn critic_step(&mut self, real: &Tensor, rng: &mut Rng) -> Result<(Tensor, Option<Tensor>)> {
        let b = real.shape()[0];
        let z = Tensor::randn(&[b, self.z_dim], 0.0, 1.0, rng, &real.device())?;
        let fake = predict(&self.generator, &z, None, &mut self.ctx)?;
        match self.lipschitz {
            Lipschitz::Clip(_) => {
                // The book's two `train_on_batch` calls: real (y = -1), then fake (y = +1),
                // each its own update, each followed by the clip.
                let real_loss = self.clipped_update(real, -1.0)?;
                let fake_loss = self.clipped_update(&fake, 1.0)?;
                Ok((no_grad(|| real_loss.add(&fake_loss))?, None))
            }
            Lipschitz::Penalty(lambda) => {
                // One update on the whole loss (the paper's Algorithm 1): the penalty needs
                // reals and fakes together.
                self.opt_c.zero_grad();
                let real_scores = self.critic.forward(real, &mut self.ctx)?;
                let fake_scores = self.critic.forward(&fake, &mut self.ctx)?;
                let loss = critic_loss(&real_scores, &fake_scores)?;
                let eps = interpolation_weights(real, rng)?;
                let (critic, ctx) = (&self.critic, &mut self.ctx);
                let penalty =
                    gradient_penalty(&mut |x| critic.forward(x, ctx), real, &fake, &eps, lambda)?;
                loss.add(&penalty)?.backward()?;
                self.opt_c.step()?;
                Ok((loss.detach(), Some(penalty.detach())))
            }
        }
    }

    /// One critic update on the Wasserstein loss mean(y * D(x)) for a constant label y, then
    /// every critic parameter clipped to [-c, c] (in the optimiser's pass).
    fn clipped_update(&mut self, x: &Tensor, y: f64) -> Result<Tensor> {
        self.opt_c.zero_grad();
        let loss = self
            .critic
            .forward(x, &mut self.ctx)?
            .mean_all()?
            .mul_scalar(y)?;
        loss.backward()?;
        self.opt_c.step()?;
        Ok(loss.detach())
    }

    fn config(&self) -> String {
        format!(
            "{{\"model\":\"{}\",\"z_dim\":{},\"n_critic\":{},\"lipschitz\":\"{:?}\",\"optimiser\":\"{}\",\"lr\":{}}}",
            self.kind, self.z_dim, self.n_critic, self.lipschitz, self.rule, self.lr
        )
    }
}

impl<R: UpdateRule> Trainable for Wgan<R> {
    fn metric_names(&self) -> Vec<&'static str> {
        match self.lipschitz {
            Lipschitz::Clip(_) => vec!["critic_loss", "g_loss", "w_distance"],
            Lipschitz::Penalty(_) => vec!["critic_loss", "gp", "g_loss", "w_distance"],
        }
    }

    fn batches_per_step(&self) -> usize {
        self.n_critic
    }

    /// `real` holds n_critic batches, one per critic step.
    fn train_step(&mut self, real: &Tensor, _: &[usize], rng: &mut Rng) -> Result<Vec<Tensor>> {
        if self.n_critic == 0 || !real.shape()[0].is_multiple_of(self.n_critic) {
            return Err(Error::Invalid(format!(
                "{} real images do not split into n_critic = {} batches",
                real.shape()[0],
                self.n_critic
            )));
        }
        let b = real.shape()[0] / self.n_critic;
        let (mut losses, mut penalties) = (Vec::new(), Vec::new());
        for k in 0..self.n_critic {
            let (loss, penalty) = self.critic_step(&real.narrow(0, k * b, b)?, rng)?;
            losses.push(loss);
            penalties.extend(penalty);
        }

        // The generator step through the frozen critic: G maximises E[D(G(z))].
        let z = Tensor::randn(&[b, self.z_dim], 0.0, 1.0, rng, &real.device())?;
        self.opt_g.zero_grad();
        let g_loss = {
            let _frozen = self.critic.freeze_with(self.frozen_norm);
            let images = self.generator.forward(&z, &mut self.ctx)?;
            let loss = self
                .critic
                .forward(&images, &mut self.ctx)?
                .mean_all()?
                .neg()?;
            loss.backward()?;
            loss.detach()
        };
        self.opt_g.step()?;

        no_grad(|| {
            let w_loss = mean_of(&losses)?;
            // The critic's estimate of the Wasserstein distance: the curve to watch.
            let w_distance = w_loss.neg()?;
            Ok(if penalties.is_empty() {
                vec![w_loss, g_loss, w_distance]
            } else {
                let p = mean_of(&penalties)?;
                vec![w_loss.add(&p)?, p, g_loss, w_distance]
            })
        })
    }

    fn sample(&mut self, z: &Tensor, _labels: Option<&[usize]>) -> Result<Tensor> {
        predict(&self.generator, z, None, &mut self.ctx)
    }

    fn z_dim(&self) -> usize {
        self.z_dim
    }

    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        self.opt_g.set_lr(0, lr)?;
        self.opt_c.set_lr(0, lr)?;
        self.lr = lr;
        Ok(())
    }

    fn device(&self) -> Device {
        self.generator.device()
    }

    checkpoint_methods!(
        self,
        kind: &self.kind,
        config: self.config(),
        parts: [
            "generator" => generator,
            "critic" => critic,
            "optim.generator" => opt_g,
            "optim.critic" => opt_c,
            "dropout" => ctx,
        ]
    );
}

/// The mean of scalar (0-dim) tensors, on their device, without a read-back.
fn mean_of(scalars: &[Tensor]) -> Result<Tensor> {
    let flat = scalars
        .iter()
        .map(|t| t.reshape(&[1]))
        .collect::<Result<Vec<_>>>()?;
    Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)?.mean_all()
}

/// The book's WGAN: the DCGAN generator with k4 convs, the DCGAN discriminator with widths
/// 16/32/64/128 and a linear output as critic, clip 0.01, RMSprop(5e-5) for both.
pub fn build(rng: &mut Rng, device: &Device) -> Result<Wgan<RmsProp>> {
    let g = Net::plain(generator_with(4, 1, rng, device)?);
    let c = Net::plain(discriminator_with([16, 32, 64, 128], true, 1, rng, device)?);
    Wgan::new(
        "wgan",
        g,
        c,
        Z_DIM,
        Lipschitz::Clip(0.01),
        (RmsProp::default(), 5e-5),
        rng.next_u64(),
    )
}

/// WGAN-GP: the same networks without batch norm in the critic, penalty lambda 10,
/// Adam(1e-4, beta1 0, beta2 0.9).
pub fn build_gp(rng: &mut Rng, device: &Device) -> Result<Wgan<Adam>> {
    let g = Net::plain(generator_with(4, 1, rng, device)?);
    let c = Net::plain(discriminator_with(
        [16, 32, 64, 128],
        false,
        1,
        rng,
        device,
    )?);
    Wgan::new(
        "wgan-gp",
        g,
        c,
        Z_DIM,
        Lipschitz::Penalty(10.0),
        (gp_adam(), 1e-4),
        rng.next_u64(),
    )
}

/// WGAN-GP's Adam: beta1 0, beta2 0.9 (Keras' eps 1e-7).
pub fn gp_adam() -> Adam {
    Adam {
        beta1: 0.0,
        beta2: 0.9,
        ..Adam::default()
    }
}
