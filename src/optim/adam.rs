//! Adam as Keras implements it: eps added outside the bias correction.

use super::check_update;
use crate::device::Params;
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken (the bias correction's t).
    pub t: u64,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl Adam {
    /// Keras' defaults are beta2 0.999 and eps 1e-7.
    pub fn new(params: Vec<Tensor>, lr: f64, beta1: f64, beta2: f64, eps: f64) -> Result<Self> {
        let zeros = |p: &Tensor| Tensor::zeros(p.shape(), &p.device());
        Ok(Adam {
            lr,
            beta1,
            beta2,
            eps,
            t: 0,
            m: params.iter().map(zeros).collect::<Result<_>>()?,
            v: params.iter().map(zeros).collect::<Result<_>>()?,
            params,
        })
    }

    pub fn params(&self) -> &[Tensor] {
        &self.params
    }

    /// (name suffix, tensor) of the optimiser state, per parameter index: for checkpoints.
    pub fn state(&self) -> Vec<(usize, &'static str, &Tensor)> {
        (0..self.params.len())
            .flat_map(|i| [(i, "m", &self.m[i]), (i, "v", &self.v[i])])
            .collect()
    }

    /// One step with `grads[i]` for `params[i]` (`None`: that parameter got no gradient and
    /// stays, as do its moments).
    pub fn step(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        if grads.len() != self.params.len() {
            return Err(Error::Invalid(format!(
                "adam: {} gradients for {} parameters",
                grads.len(),
                self.params.len()
            )));
        }
        self.t += 1;
        let t = self.t as i32;
        let lr_t = self.lr * (1.0 - self.beta2.powi(t)).sqrt() / (1.0 - self.beta1.powi(t));
        let (b1, b2, eps) = (self.beta1 as f32, self.beta2 as f32, self.eps as f32);
        for (i, g) in grads.iter().enumerate() {
            let Some(g) = g else { continue };
            let (p, m, v) = (&self.params[i], &self.m[i], &self.v[i]);
            check_update(p, g, "adam")?;
            match (p.storage(), g.storage(), m.storage(), v.storage()) {
                (Storage::Cpu(ps), Storage::Cpu(gs), Storage::Cpu(ms), Storage::Cpu(vs)) => {
                    let g = gs.to_f32();
                    let (mut p, mut m, mut v) = (
                        ps.f32_mut().unwrap(),
                        ms.f32_mut().unwrap(),
                        vs.f32_mut().unwrap(),
                    );
                    let lr_t = lr_t as f32;
                    for j in 0..g.len() {
                        m[j] = b1 * m[j] + (1.0 - b1) * g[j];
                        v[j] = b2 * v[j] + (1.0 - b2) * g[j] * g[j];
                        p[j] -= lr_t * m[j] / (v[j].sqrt() + eps);
                    }
                }
                (Storage::Gpu(pb), Storage::Gpu(gb), Storage::Gpu(mb), Storage::Gpu(vb)) => {
                    let ctx = pb.context();
                    let pipeline = ctx.pipeline("adam", "main", || {
                        include_str!("../../shaders/adam.wgsl").to_string()
                    })?;
                    let n = p.numel();
                    let params = Params::new().u(n).f(lr_t as f32).f(b1).f(b2).f(eps);
                    ctx.launch(
                        &pipeline,
                        &params,
                        &[pb.raw(), gb.raw(), mb.raw(), vb.raw()],
                        ctx.grid(n)?,
                    )?;
                }
                _ => {
                    return Err(Error::Invalid(
                        "adam: parameter, gradient and state on different devices".into(),
                    ))
                }
            }
        }
        Ok(())
    }
}
