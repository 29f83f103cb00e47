//! The training step the book's vanilla GAN and DCGAN share, with the Keras semantics the
//! spec lists: fakes from `generator.predict` (G in inference mode), two separate D steps
//! (real, then fake), then one G step through the frozen D (D's batch norm in inference
//! mode, its dropout active, its weights untouched), Adam(2e-4, 0.5) on both.

use crate::autograd::{grad, no_grad};
use crate::checkpoint::{self, meta_value};
use crate::nn::{named_tensors, parameters, Ctx, Kind, Mode, Module, Sequential};
use crate::optim::Adam;
use crate::tensor::RngState;
use crate::train::{RunState, Trainable};
use crate::{Device, Error, Result, Rng, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Hyper {
    /// Adam(0.0002, 0.5) with Keras' defaults beta2 0.999 and eps 1e-7.
    pub fn book() -> Self {
        Hyper {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
}

pub struct BookGan {
    pub kind: &'static str,
    pub generator: Sequential,
    pub discriminator: Sequential,
    pub opt_g: Adam,
    pub opt_d: Adam,
    pub z_dim: usize,
    pub hyper: Hyper,
    device: Device,
}

/// 1.0 where the logit says "real" (> 0, i.e. sigmoid > 0.5) and the label agrees.
fn accuracy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    no_grad(|| logits.sign()?.relu()?.eq_mask(labels)?.mean_all())
}

impl BookGan {
    pub fn new(
        kind: &'static str,
        generator: Sequential,
        discriminator: Sequential,
        z_dim: usize,
        hyper: Hyper,
        device: &Device,
    ) -> Result<Self> {
        let adam = |m: &Sequential| {
            Adam::new(parameters(m), hyper.lr, hyper.beta1, hyper.beta2, hyper.eps)
        };
        Ok(BookGan {
            kind,
            opt_g: adam(&generator)?,
            opt_d: adam(&discriminator)?,
            generator,
            discriminator,
            z_dim,
            hyper,
            device: device.clone(),
        })
    }

    /// One `train_on_batch` of D: loss and accuracy on `x` against constant `label`.
    fn d_step(&mut self, x: &Tensor, label: &Tensor, ctx: &mut Ctx) -> Result<(Tensor, Tensor)> {
        let logits = self.discriminator.forward(x, ctx)?;
        let loss = logits.bce_with_logits(label)?;
        let grads = grad(
            std::slice::from_ref(&loss),
            None,
            self.opt_d.params(),
            false,
        )?;
        self.opt_d.step(&grads)?;
        Ok((loss.detach(), accuracy(&logits, label)?))
    }

    /// Every tensor a checkpoint holds, by name: both networks' parameters and buffers and
    /// both optimisers' moments.
    pub fn checkpoint_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (prefix, net, opt) in [
            ("generator", &self.generator, &self.opt_g),
            ("discriminator", &self.discriminator, &self.opt_d),
        ] {
            let named = named_tensors(net, prefix);
            let param_names: Vec<&String> = named
                .iter()
                .filter(|(_, _, k)| *k == Kind::Parameter)
                .map(|(n, _, _)| n)
                .collect();
            for (i, suffix, t) in opt.state() {
                out.push((format!("optim.{}.{suffix}", param_names[i]), t.clone()));
            }
            out.extend(named.iter().map(|(n, t, _)| (n.clone(), t.clone())));
        }
        out
    }

    fn config(&self) -> String {
        let h = self.hyper;
        format!(
            "{{\"model\":\"{}\",\"z_dim\":{},\"adam\":{{\"lr\":{},\"beta1\":{},\"beta2\":{},\"eps\":{}}}}}",
            self.kind, self.z_dim, h.lr, h.beta1, h.beta2, h.eps
        )
    }

    /// Loads only what sampling needs (weights and buffers, checking the model kind) from a
    /// training checkpoint.
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
        _labels: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<Tensor>> {
        let b = real.shape()[0];
        let z = Tensor::randn(&[b, self.z_dim], 0.0, 1.0, rng, &self.device)?;
        // One dropout seed per step; the context's counter makes every dropout call differ.
        let seed = rng.next_u64();
        let fake = no_grad(|| self.generator.forward(&z, &mut Ctx::new(Mode::Eval, seed)))?;
        let (ones, zeros) = (
            Tensor::ones(&[b, 1], &self.device)?,
            Tensor::zeros(&[b, 1], &self.device)?,
        );
        let mut d_ctx = Ctx::new(Mode::Train, seed);
        let (loss_real, acc_real) = self.d_step(real, &ones, &mut d_ctx)?;
        let (loss_fake, acc_fake) = self.d_step(&fake, &zeros, &mut d_ctx)?;

        // The combined model: G trains on the same noise, through D frozen.
        let mut g_ctx = Ctx::new(Mode::Train, seed);
        let images = self.generator.forward(&z, &mut g_ctx)?;
        d_ctx.mode = Mode::Frozen;
        let g_loss = self
            .discriminator
            .forward(&images, &mut d_ctx)?
            .bce_with_logits(&ones)?;
        let grads = grad(
            std::slice::from_ref(&g_loss),
            None,
            self.opt_g.params(),
            false,
        )?;
        self.opt_g.step(&grads)?;

        no_grad(|| {
            Ok(vec![
                loss_real.add(&loss_fake)?.mul_scalar(0.5)?,
                acc_real.add(&acc_fake)?.mul_scalar(0.5)?,
                g_loss.detach(),
            ])
        })
    }

    fn sample(&mut self, z: &Tensor, _labels: Option<&[usize]>) -> Result<Tensor> {
        no_grad(|| self.generator.forward(z, &mut Ctx::new(Mode::Eval, 0)))
    }

    fn z_dim(&self) -> usize {
        self.z_dim
    }

    fn device(&self) -> Device {
        self.device.clone()
    }

    fn save_checkpoint(&self, path: &Path, state: &RunState) -> Result<()> {
        let meta = BTreeMap::from([
            ("model".to_string(), self.kind.to_string()),
            ("config".to_string(), self.config()),
            ("step".to_string(), state.step.to_string()),
            ("rng".to_string(), state.rng.encode()),
            ("wall_s".to_string(), format!("{}", state.wall_s)),
            ("optim.generator.t".to_string(), self.opt_g.t.to_string()),
            (
                "optim.discriminator.t".to_string(),
                self.opt_d.t.to_string(),
            ),
        ]);
        checkpoint::save(path, &self.checkpoint_tensors(), &meta)
    }

    fn load_checkpoint(&mut self, path: &Path) -> Result<RunState> {
        // Check the kind before touching any tensor, for a clearer message than a name list.
        let meta = checkpoint::read_metadata(path)?;
        if meta.get("model").map(String::as_str) != Some(self.kind) {
            return Err(Error::Checkpoint {
                path: path.display().to_string(),
                detail: format!("holds a {:?} model, not {}", meta.get("model"), self.kind),
            });
        }
        let meta = checkpoint::load(path, &self.checkpoint_tensors())?;
        self.opt_g.t = meta_value(path, &meta, "optim.generator.t")?;
        self.opt_d.t = meta_value(path, &meta, "optim.discriminator.t")?;
        let rng: String = meta_value(path, &meta, "rng")?;
        Ok(RunState {
            step: meta_value(path, &meta, "step")?,
            rng: RngState::decode(&rng).ok_or_else(|| Error::Checkpoint {
                path: path.display().to_string(),
                detail: "malformed rng state".into(),
            })?,
            wall_s: meta_value(path, &meta, "wall_s")?,
        })
    }
}
