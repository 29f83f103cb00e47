//! Optimisers whose update runs where the parameters live: one fused kernel launch per
//! parameter tensor on the GPU (parameter and state updated in place in one pass), and the
//! same formula element by element on the CPU. Keras' update rules and defaults.
//!
//! An [`Optimizer`] holds parameter groups (each with its own learning rate), the per-parameter
//! state its [`UpdateRule`] needs (Adam's moments, RMSprop's mean square, SGD's velocity) and
//! the step counter.

mod adam;
mod clip;
mod rmsprop;
mod sgd;

pub use adam::Adam;
pub use clip::clip_;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::device::{Kernel, KernelSource};
use crate::tensor::Storage;
use crate::{DType, Error, Result, Tensor};
use rayon::prelude::*;
use std::rc::Rc;

/// An optimiser's update of one element, written twice: as a WGSL kernel and as the CPU
/// function with the identical arithmetic.
pub trait UpdateRule {
    /// Kernel (pipeline) name.
    const NAME: &'static str;
    /// The per-parameter state tensors, by name (saved in checkpoints as `<param>.<slot>`).
    const SLOTS: &'static [&'static str];
    /// The kernel: parameter (written), gradient (read), then one written buffer per slot;
    /// its params are the element count and `scalars`.
    const KERNEL: &'static Kernel<OptimParams>;

    /// The scalars of step `t` (counting from 1) at learning rate `lr`, as the kernel reads them.
    fn scalars(&self, lr: f32, t: u64) -> Vec<f32>;

    /// Updates one element given this step's `scalars`: returns the new parameter value and
    /// updates `state` (one value per slot) in place.
    fn update(scalars: &[f32], p: f32, g: f32, state: &mut [f32]) -> f32;
}

/// The most slots a rule may have (the CPU loop's scratch space).
const MAX_SLOTS: usize = 4;

crate::kernel_params! {
    /// Every update rule's params: the element count and up to four scalars (unused ones 0).
    pub struct OptimParams { n: u32, scalars: [f32; 4] }
}

/// Every optimiser kernel (for the portability test).
pub fn kernels() -> Vec<&'static dyn KernelSource> {
    vec![Adam::KERNEL, RmsProp::KERNEL, Sgd::KERNEL, &clip::CLIP]
}

struct Slot {
    name: String,
    param: Tensor,
    state: Vec<Tensor>,
}

struct Group {
    lr: f32,
    slots: Vec<Slot>,
}

/// Parameter groups updated by one rule. Parameters without a gradient at a step (frozen, or
/// unused by the loss) are left alone; the step counter advances regardless, as Keras'
/// `iterations` does.
pub struct Optimizer<R: UpdateRule> {
    rule: R,
    groups: Vec<Group>,
    steps: u64,
}

impl<R: UpdateRule> Optimizer<R> {
    /// One group of named parameters (e.g. `module.named_parameters("generator")`) at `lr`.
    pub fn new(rule: R, lr: f32, params: Vec<(String, Tensor)>) -> Result<Self> {
        let mut opt = Optimizer {
            rule,
            groups: Vec::new(),
            steps: 0,
        };
        opt.add_group(lr, params)?;
        Ok(opt)
    }

    /// Adds a parameter group with its own learning rate; returns its index.
    pub fn add_group(&mut self, lr: f32, params: Vec<(String, Tensor)>) -> Result<usize> {
        check_lr(lr)?;
        let mut slots = Vec::with_capacity(params.len());
        for (name, param) in params {
            if param.dtype() != DType::F32 || !param.is_leaf() {
                return Err(Error::Invalid(format!(
                    "optimiser: parameter {name} must be an f32 leaf tensor"
                )));
            }
            let taken = |other: &Slot| {
                other.name == name || Rc::ptr_eq(other.param.storage_rc(), param.storage_rc())
            };
            if self.slots().any(taken) || slots.iter().any(taken) {
                return Err(Error::Invalid(format!(
                    "optimiser: parameter {name} is already in this optimiser"
                )));
            }
            let state = R::SLOTS
                .iter()
                .map(|_| param.zeros_like())
                .collect::<Result<_>>()?;
            slots.push(Slot { name, param, state });
        }
        self.groups.push(Group { lr, slots });
        Ok(self.groups.len() - 1)
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.groups.iter().flat_map(|g| &g.slots)
    }

    pub fn rule(&self) -> &R {
        &self.rule
    }

    pub fn lr(&self, group: usize) -> Option<f32> {
        self.groups.get(group).map(|g| g.lr)
    }

    pub fn set_lr(&mut self, group: usize, lr: f32) -> Result<()> {
        check_lr(lr)?;
        let g = self
            .groups
            .get_mut(group)
            .ok_or_else(|| Error::Invalid(format!("optimiser has no parameter group {group}")))?;
        g.lr = lr;
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets the step counter (checkpoint restore).
    pub fn set_steps(&mut self, steps: u64) {
        self.steps = steps;
    }

    /// Every parameter handle, in group order.
    pub fn parameters(&self) -> Vec<Tensor> {
        self.slots().map(|s| s.param.clone()).collect()
    }

    /// The per-parameter state as `<param name>.<slot>` under `prefix`, for checkpoints.
    pub fn named_state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.slots()
            .flat_map(|s| {
                R::SLOTS.iter().zip(&s.state).map(move |(slot, t)| {
                    (
                        crate::nn::join(prefix, &format!("{}.{slot}", s.name)),
                        t.clone(),
                    )
                })
            })
            .collect()
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&self) {
        for s in self.slots() {
            s.param.zero_grad();
        }
    }

    /// Zeroes the state and the step counter (ProGAN resets Adam when it grows a resolution).
    pub fn reset_state(&mut self) -> Result<()> {
        for s in self.slots() {
            for t in &s.state {
                t.assign(&t.zeros_like()?)?;
            }
        }
        self.steps = 0;
        Ok(())
    }

    /// Applies one update to every parameter that has a gradient.
    pub fn step(&mut self) -> Result<()> {
        let t = self.steps + 1;
        for group in &self.groups {
            let scalars = self.rule.scalars(group.lr, t);
            for slot in &group.slots {
                if let Some(g) = slot.param.grad() {
                    update::<R>(&scalars, slot, &g)?;
                }
            }
        }
        self.steps = t;
        Ok(())
    }
}

/// A learning rate the optimisers accept: finite and >= 0 (0 freezes).
pub fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr >= 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "learning rate {lr} must be finite and >= 0"
        )))
    }
}

/// The CPU update: one parallel pass over chunks of the parameter, its gradient and its state.
fn update_cpu<R: UpdateRule>(scalars: &[f32], p: &mut [f32], g: &[f32], state: &mut [&mut [f32]]) {
    const CHUNK: usize = 1 << 14;
    let run = |p: &mut [f32], g: &[f32], state: &mut [&mut [f32]]| {
        let mut scratch = [0f32; MAX_SLOTS];
        let scratch = &mut scratch[..state.len()];
        for i in 0..p.len() {
            for (v, s) in scratch.iter_mut().zip(state.iter()) {
                *v = s[i];
            }
            p[i] = R::update(scalars, p[i], g[i], scratch);
            for (v, s) in scratch.iter().zip(state.iter_mut()) {
                s[i] = *v;
            }
        }
    };
    if p.len() <= CHUNK {
        return run(p, g, state);
    }
    // Split every slice at the same chunk boundaries, then update the chunks in parallel.
    let mut chunks = Vec::with_capacity(p.len().div_ceil(CHUNK));
    let (mut p, mut g) = (p, g);
    let mut state: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
    while !p.is_empty() {
        let at = CHUNK.min(p.len());
        let (ph, pt) = p.split_at_mut(at);
        let (gh, gt) = g.split_at(at);
        let mut heads = Vec::with_capacity(state.len());
        let mut tails = Vec::with_capacity(state.len());
        for s in state {
            let (h, t) = s.split_at_mut(at);
            heads.push(h);
            tails.push(t);
        }
        chunks.push((ph, gh, heads));
        (p, g, state) = (pt, gt, tails);
    }
    chunks
        .into_par_iter()
        .for_each(|(p, g, mut state)| run(p, g, &mut state));
}

/// One parameter's update, in place, on its device.
fn update<R: UpdateRule>(scalars: &[f32], slot: &Slot, g: &Tensor) -> Result<()> {
    const { assert!(R::SLOTS.len() <= MAX_SLOTS) };
    let p = &slot.param;
    p.same_device(g, R::NAME)?;
    if g.shape() != p.shape() || g.dtype() != DType::F32 {
        return Err(Error::shape(
            "optimiser",
            format!(
                "gradient of {} is {:?} {:?}, parameter is {:?}",
                slot.name,
                g.dtype(),
                g.shape(),
                p.shape()
            ),
        ));
    }
    // The parameter is written while the gradient is read: they must be different buffers.
    if Rc::ptr_eq(p.storage_rc(), g.storage_rc()) {
        return Err(Error::Invalid(format!(
            "optimiser: the gradient of {} shares the parameter's storage",
            slot.name
        )));
    }
    match (p.storage(), g.storage()) {
        (Storage::Cpu(ps), Storage::Cpu(gs)) => {
            let dtype_err = || Error::DType {
                op: "optimiser",
                dtype: DType::F64,
                hint: "optimisers update f32 parameters",
            };
            let mut p = ps.f32_mut().ok_or_else(dtype_err)?;
            let g = gs.f32().ok_or_else(dtype_err)?;
            let mut state = Vec::with_capacity(slot.state.len());
            for s in &slot.state {
                match s.storage() {
                    Storage::Cpu(c) => state.push(c.f32_mut().ok_or_else(dtype_err)?),
                    Storage::Gpu(_) => unreachable!("state lives beside its parameter"),
                }
            }
            let mut state: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
            update_cpu::<R>(scalars, &mut p, &g, &mut state);
        }
        (Storage::Gpu(pb), Storage::Gpu(gb)) => {
            let ctx = pb.context();
            let mut params = OptimParams {
                n: p.numel() as u32,
                ..Default::default()
            };
            params.scalars[..scalars.len()].copy_from_slice(scalars);
            let mut buffers = vec![pb, gb];
            for s in &slot.state {
                match s.storage() {
                    Storage::Gpu(b) => buffers.push(b),
                    Storage::Cpu(_) => unreachable!("state lives beside its parameter"),
                }
            }
            ctx.dispatch(R::KERNEL, &params, &buffers, ctx.grid(p.numel())?)?;
        }
        _ => unreachable!("same_device checked"),
    }
    Ok(())
}
