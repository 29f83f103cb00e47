//! The training step the book's vanilla GAN and DCGAN share, with the Keras semantics the
//! spec lists: fakes from `generator.predict` (G in inference mode), two separate D steps
//! (real, then fake), then one G step through the frozen D (D's batch norm in inference
//! mode, its dropout active, its weights untouched), Adam(2e-4, 0.5) on both.

use super::dcgan64;
use super::gan::MNIST;
use super::net::{predict, Net};
use super::saved::checkpoint_methods;
use super::Trainable;
use super::CLASSES;
use crate::autograd::no_grad;
use crate::nn::{Ctx, FrozenNorm, Module};
use crate::optim::{Adam, Optimizer};
use crate::{Device, Result, Rng, Tensor};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which framework's semantics the training step follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoopStyle {
    /// The book's Keras code as it ran when the book was written (Keras 2.3 on TF1), the
    /// default: fakes from G in inference mode, two D updates (real, fake), G step through D
    /// frozen, whose batch norm normalises with the batch statistics (leaving its running
    /// statistics alone).
    #[default]
    KerasTf1,
    /// The same code under TF2: as `KerasTf1`, but the frozen D's batch norm runs on its
    /// running statistics. The book's DCGAN is known to fail under it (GANs in Action issue
    /// #20, Keras-GAN issue #252: noise, D accuracy 1; here a 4,000-step run: IS 1.0).
    KerasTf2,
    /// The PyTorch DCGAN example: fakes from G in training mode, one D update on the summed
    /// real and fake gradients, G step through D in training mode (batch statistics) on the
    /// same fakes (G runs forward once; a conditional G draws again, for fresh labels).
    Torch,
}

#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub lr: f32,
    pub adam: Adam,
}

impl LoopStyle {
    /// The name `--loop` takes.
    pub fn name(self) -> &'static str {
        match self {
            LoopStyle::KerasTf1 => "keras-tf1",
            LoopStyle::KerasTf2 => "keras-tf2",
            LoopStyle::Torch => "torch",
        }
    }
}

impl Hyper {
    /// Adam(0.0002, 0.5) with Keras' defaults beta2 0.999 and eps 1e-7.
    pub fn book() -> Self {
        Hyper {
            lr: 2e-4,
            adam: Adam {
                beta1: 0.5,
                ..Adam::default()
            },
        }
    }
}

pub struct BookGan {
    pub kind: String,
    pub generator: Net,
    pub discriminator: Net,
    pub opt_g: Optimizer<Adam>,
    pub opt_d: Optimizer<Adam>,
    pub z_dim: usize,
    pub hyper: Hyper,
    /// The dropout stream (seed and calls so far), checkpointed with the model.
    pub ctx: Ctx,
    pub style: LoopStyle,
    /// What G draws, `[C, H, W]` (the book's 1x28x28 unless built for colour data).
    pub image: [usize; 3],
    /// The 64x64 DCGAN's shape and widths, for that model.
    pub arch: Option<dcgan64::Config>,
    /// The constant targets (ones, zeros) of the last batch size, kept across steps.
    targets: Option<(Tensor, Tensor)>,
}

/// What a book model's checkpoint says it is (`config` in its metadata).
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedConfig {
    pub model: String,
    pub z_dim: usize,
    #[serde(rename = "loop")]
    pub style: String,
    pub adam: SavedAdam,
    /// Absent from checkpoints of MNIST-only versions: 1x28x28.
    #[serde(default = "mnist_shape")]
    pub image: [usize; 3],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcgan64: Option<dcgan64::Config>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedAdam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

fn mnist_shape() -> [usize; 3] {
    MNIST
}

impl SavedConfig {
    /// The config of the checkpoint at `path`.
    pub fn read(path: &Path) -> Result<SavedConfig> {
        let text = super::saved::config(path)?;
        serde_json::from_str(&text).map_err(|e| {
            crate::Error::Checkpoint(format!(
                "{}: model config {} unreadable: {e}",
                path.display(),
                super::saved::quoted(&text)
            ))
        })
    }
}

impl BookGan {
    pub fn new(
        kind: &str,
        generator: Net,
        discriminator: Net,
        z_dim: usize,
        hyper: Hyper,
        dropout_seed: u64,
    ) -> Result<Self> {
        Ok(BookGan {
            kind: kind.to_string(),
            opt_g: Optimizer::new(hyper.adam, hyper.lr, generator.named_parameters(""))?,
            opt_d: Optimizer::new(hyper.adam, hyper.lr, discriminator.named_parameters(""))?,
            generator,
            discriminator,
            z_dim,
            hyper,
            ctx: Ctx::new(dropout_seed),
            style: LoopStyle::default(),
            image: MNIST,
            arch: None,
            targets: None,
        })
    }

    /// D's loss and accuracy on `x` (with its class labels, for a conditional D) against
    /// constant `label`, gradients accumulated into D.
    fn d_backward(
        &mut self,
        x: &Tensor,
        classes: Option<&[usize]>,
        label: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let logits = self
            .discriminator
            .forward_labeled(x, classes, &mut self.ctx)?;
        let (loss, accuracy) = logits.bce_with_logits_accuracy(label)?;
        loss.backward()?;
        Ok((loss.detach(), accuracy))
    }

    /// The targets "real" (ones) and "fake" (zeros) for a batch of `b`, made once per size.
    fn targets(&mut self, b: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        match &self.targets {
            Some((ones, zeros)) if ones.shape()[0] == b => Ok((ones.clone(), zeros.clone())),
            _ => {
                let made = (
                    Tensor::ones(&[b, 1], device)?,
                    Tensor::zeros(&[b, 1], device)?,
                );
                self.targets = Some(made.clone());
                Ok(made)
            }
        }
    }

    /// One `train_on_batch` of D (Keras): its own gradient, its own update.
    fn d_step(
        &mut self,
        x: &Tensor,
        classes: Option<&[usize]>,
        label: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        self.opt_d.zero_grad();
        let out = self.d_backward(x, classes, label)?;
        self.opt_d.step()?;
        Ok(out)
    }

    fn config(&self) -> String {
        let (h, a) = (self.hyper, self.hyper.adam);
        let saved = SavedConfig {
            model: self.kind.clone(),
            z_dim: self.z_dim,
            style: format!("{:?}", self.style),
            adam: SavedAdam {
                lr: h.lr,
                beta1: a.beta1,
                beta2: a.beta2,
                eps: a.eps,
            },
            image: self.image,
            dcgan64: self.arch,
        };
        serde_json::to_string(&saved).expect("a config is plain data")
    }

    /// Restores a checkpoint written by `save_checkpoint` (weights, buffers, optimiser and
    /// dropout state), checking the model kind first.
    pub fn load_weights(&mut self, path: &Path) -> Result<()> {
        self.load_checkpoint(path).map(|_| ())
    }
}

impl Trainable for BookGan {
    fn metric_names(&self) -> Vec<&'static str> {
        vec!["d_loss", "d_acc", "g_loss"]
    }

    fn train_step(
        &mut self,
        real: &Tensor,
        labels: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<Tensor>> {
        let b = real.shape()[0];
        let device = real.device();
        let z = Tensor::randn(&[b, self.z_dim], 0.0, 1.0, rng, &device)?;
        // A conditional model: D sees reals and fakes with the reals' labels; the G step then
        // draws fresh random labels (the book's cgan).
        let conditional = self.is_conditional();
        let classes = conditional.then_some(labels);
        let fresh: Option<Vec<usize>> =
            conditional.then(|| (0..b).map(|_| rng.below(CLASSES)).collect());
        let (ones, zeros) = self.targets(b, &device)?;
        // The Torch loop's fakes keep their graph for the G step (unless it draws fresh
        // labels), as the example's `fake` does: G runs forward once per step.
        let mut kept = None;
        let ((loss_real, acc_real), (loss_fake, acc_fake)) = match self.style {
            LoopStyle::KerasTf1 | LoopStyle::KerasTf2 => {
                let fake = self.sample(&z, classes)?;
                (
                    self.d_step(real, classes, &ones)?,
                    self.d_step(&fake, classes, &zeros)?,
                )
            }
            LoopStyle::Torch => {
                let fake = if conditional {
                    no_grad(|| self.generator.forward_labeled(&z, classes, &mut self.ctx))?
                } else {
                    let fake = self.generator.forward_labeled(&z, None, &mut self.ctx)?;
                    kept = Some(fake.clone());
                    fake.detach()
                };
                self.opt_d.zero_grad();
                let both = (
                    self.d_backward(real, classes, &ones)?,
                    self.d_backward(&fake, classes, &zeros)?,
                );
                self.opt_d.step()?;
                both
            }
        };

        // The combined model: G trains on the same noise through D, which Keras freezes (until
        // after backward); PyTorch leaves D in training mode and simply does not step it.
        self.opt_g.zero_grad();
        let g_loss = {
            let _frozen = match self.style {
                LoopStyle::KerasTf1 => Some(self.discriminator.freeze_with(FrozenNorm::Batch)),
                LoopStyle::KerasTf2 => Some(self.discriminator.freeze()),
                LoopStyle::Torch => None,
            };
            let fresh = fresh.as_deref();
            let images = match kept {
                Some(fake) => fake,
                None => self.generator.forward_labeled(&z, fresh, &mut self.ctx)?,
            };
            let loss = self
                .discriminator
                .forward_labeled(&images, fresh, &mut self.ctx)?
                .bce_with_logits(&ones)?;
            loss.backward()?;
            loss
        };
        self.opt_g.step()?;

        no_grad(|| {
            Ok(vec![
                loss_real.add(&loss_fake)?.mul_scalar(0.5)?,
                acc_real.add(&acc_fake)?.mul_scalar(0.5)?,
                g_loss.detach(),
            ])
        })
    }

    /// `generator.predict`: inference mode, no graph.
    fn sample(&mut self, z: &Tensor, labels: Option<&[usize]>) -> Result<Tensor> {
        predict(&self.generator, z, labels, &mut self.ctx)
    }

    fn is_conditional(&self) -> bool {
        self.generator.is_conditional()
    }

    fn set_learning_rate(&mut self, lr: f32) -> Result<()> {
        self.opt_g.set_lr(0, lr)?;
        self.opt_d.set_lr(0, lr)?;
        self.hyper.lr = lr;
        Ok(())
    }

    fn z_dim(&self) -> usize {
        self.z_dim
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
            "discriminator" => discriminator,
            "optim.generator" => opt_g,
            "optim.discriminator" => opt_d,
            "dropout" => ctx,
        ]
    );
}
