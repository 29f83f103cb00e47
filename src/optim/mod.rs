//! Multi-tensor optimisers: one step updates every parameter of the optimiser in as few kernel
//! launches as the binding limit allows ([`PAIRS`] parameters per launch on the GPU, one
//! parallel pass on the CPU), with the state of all parameters in one flat buffer. Keras'
//! update rules and defaults; WGAN's weight clipping is folded into the same pass.
//!
//! An [`Optimizer`] holds parameter groups (each with its own learning rate), the state its
//! [`UpdateRule`] needs (Adam's moments, RMSprop's mean square, SGD's velocity), the step
//! counter and the optional clip bound.

mod adam;
mod rmsprop;
mod sgd;

pub use adam::Adam;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use crate::device::{read, write, Binding, GpuBuffer, Kernel, KernelSource};
use crate::tensor::Storage;
use crate::{DType, Device, Error, Result, Tensor};
use std::rc::Rc;

/// An optimiser's update of one element, written twice: as a WGSL function and as the CPU
/// function with the identical arithmetic.
pub trait UpdateRule {
    /// Kernel (pipeline) name.
    const NAME: &'static str;
    /// The per-parameter state, by name (saved in checkpoints as `<param>.<slot>`).
    const SLOTS: &'static [&'static str];
    /// The multi-tensor kernel: `kernel` over the rule's WGSL `update` function.
    const KERNEL: &'static Kernel<OptimParams>;

    /// The scalars of step `t` (counting from 1) at learning rate `lr`, as the kernel reads them
    /// (unused ones 0).
    fn scalars(&self, lr: f32, t: u64) -> Scalars;

    /// Updates one element given this step's `scalars`: returns the new parameter value and
    /// updates `state` (one value per slot; [`MAX_SLOTS`] of them, the rule's first) in place.
    fn update(scalars: &Scalars, p: f32, g: f32, state: &mut [f32; MAX_SLOTS]) -> f32;
}

/// The most slots a rule may have (the CPU loop's scratch space).
pub const MAX_SLOTS: usize = 4;

/// A rule's scalars for one step, as the kernel's params hold them.
pub type Scalars = [f32; 4];

/// Parameters one GPU launch updates: the state buffer and three (parameter, gradient) pairs
/// fill the 8 storage bindings every adapter offers, params arena included.
pub const PAIRS: usize = 3;

crate::kernel_params! {
    /// A multi-tensor launch: pair k covers threads `ends[k-1]..ends[k]` and keeps its state at
    /// `offs[k]` (slot s at `offs[k] + s * stride`); `clipped` != 0 clamps results to
    /// `[-clip, clip]`; up to four rule scalars (unused ones 0).
    pub struct OptimParams {
        ends: [u32; 3],
        offs: [u32; 3],
        stride: u32,
        clipped: u32,
        clip: f32,
        scalars: Scalars,
    }
}

const BUFFERS: &[Binding] = &[
    write("state"),
    write("w0"),
    read("g0"),
    write("w1"),
    read("g1"),
    write("w2"),
    read("g2"),
];

/// A rule's multi-tensor kernel: its WGSL `fn update(w: f32, g: f32, s: u32) -> f32` (which
/// reads and writes `state[s + slot * p.stride]`) under the shared launch body.
pub(crate) const fn kernel(
    name: &'static str,
    update: &'static [&'static str],
) -> Kernel<OptimParams> {
    Kernel::new(name, BUFFERS, update)
}

/// The launch body every rule shares (appended after the rule's `update`).
pub(crate) const MULTI: &str = include_str!("../../shaders/optim_multi.wgsl");

/// Every optimiser kernel (for the portability test).
pub fn kernels() -> Vec<&'static dyn KernelSource> {
    vec![Adam::KERNEL, RmsProp::KERNEL, Sgd::KERNEL]
}

struct Slot {
    name: String,
    param: Tensor,
    /// Where this parameter's state starts in each flat state tensor.
    offset: usize,
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
    /// The state of every parameter, [slots, values]: each slot's row holds all parameters'
    /// values back to back (one buffer to bind).
    state: Option<Tensor>,
    clip: Option<f32>,
    steps: u64,
}

impl<R: UpdateRule> Optimizer<R> {
    /// One group of named parameters (e.g. `module.named_parameters("generator")`) at `lr`.
    pub fn new(rule: R, lr: f32, params: Vec<(String, Tensor)>) -> Result<Self> {
        let mut opt = Optimizer {
            rule,
            groups: Vec::new(),
            state: None,
            clip: None,
            steps: 0,
        };
        opt.add_group(lr, params)?;
        Ok(opt)
    }

    /// Adds a parameter group with its own learning rate; returns its index.
    pub fn add_group(&mut self, lr: f32, params: Vec<(String, Tensor)>) -> Result<usize> {
        check_lr(lr)?;
        let device = match (params.first(), self.slots().next()) {
            (_, Some(s)) => s.param.device(),
            (Some((_, p)), None) => p.device(),
            (None, None) => Device::Cpu,
        };
        let mut total = self.state_len();
        let mut slots = Vec::with_capacity(params.len());
        for (name, param) in params {
            if param.dtype() != DType::F32 || !param.is_leaf() {
                return Err(Error::Invalid(format!(
                    "optimiser: parameter {name} must be an f32 leaf tensor"
                )));
            }
            if !param.device().same(&device) {
                return Err(Error::DeviceMismatch {
                    op: "optimiser",
                    a: format!("{:?}", param.device()),
                    b: format!("{device:?}"),
                });
            }
            let taken = |other: &Slot| {
                other.name == name || Rc::ptr_eq(other.param.storage_rc(), param.storage_rc())
            };
            if self.slots().any(taken) || slots.iter().any(taken) {
                return Err(Error::Invalid(format!(
                    "optimiser: parameter {name} is already in this optimiser"
                )));
            }
            slots.push(Slot {
                name,
                offset: total,
                param,
            });
            total = slots.last().map_or(total, |s| s.offset + s.param.numel());
        }
        // Offsets and slot strides are u32 in the kernel.
        if total.saturating_mul(R::SLOTS.len()) > u32::MAX as usize {
            return Err(Error::Invalid(format!(
                "optimiser: {total} parameter values exceed the {} the kernel can address",
                u32::MAX as usize / R::SLOTS.len().max(1)
            )));
        }
        let grown = total - self.state_len();
        if grown > 0 {
            let zeros = Tensor::zeros(&[R::SLOTS.len(), grown], &device)?;
            self.state = Some(match self.state.take() {
                Some(old) => Tensor::concat(&[&old, &zeros], 1)?,
                None => zeros,
            });
        }
        self.groups.push(Group { lr, slots });
        Ok(self.groups.len() - 1)
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.groups.iter().flat_map(|g| &g.slots)
    }

    /// Values per state slot: every parameter's size, summed.
    fn state_len(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.shape()[1])
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

    /// Clamps every parameter the optimiser updates to [-c, c] right after its update, in the
    /// same pass (WGAN's weight clipping); `None` turns it off.
    pub fn set_clip(&mut self, clip: Option<f32>) -> Result<()> {
        if let Some(c) = clip {
            if !(c.is_finite() && c >= 0.0) {
                return Err(Error::Invalid(format!(
                    "clip bound {c} must be finite and >= 0"
                )));
            }
        }
        self.clip = clip;
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

    /// A copy of the per-parameter state as `<param name>.<slot>` under `prefix` (CPU tensors
    /// shaped like their parameters), for checkpoints and inspection.
    pub fn named_state(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let flat = match &self.state {
            Some(t) => t.to_vec()?,
            None => Vec::new(),
        };
        let mut out = Vec::new();
        for (name, _, offset, shape) in self.state_locations(prefix) {
            let values = flat[offset..offset + crate::shape::numel(&shape)].to_vec();
            out.push((name, Tensor::from_vec(values, &shape, &Device::Cpu)?));
        }
        Ok(out)
    }

    /// Where each `<param name>.<slot>` of [`named_state`](Self::named_state) lives: the state
    /// tensor, the flat offset in it and the parameter's shape (checkpoint restore).
    pub fn state_locations(&self, prefix: &str) -> Vec<(String, Tensor, usize, Vec<usize>)> {
        let (Some(state), stride) = (&self.state, self.state_len()) else {
            return Vec::new();
        };
        self.slots()
            .flat_map(|s| {
                R::SLOTS.iter().enumerate().map(move |(k, slot)| {
                    (
                        crate::nn::join(prefix, &format!("{}.{slot}", s.name)),
                        state.clone(),
                        k * stride + s.offset,
                        s.param.shape().to_vec(),
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
        if let Some(t) = &self.state {
            t.assign(&t.zeros_like()?)?;
        }
        self.steps = 0;
        Ok(())
    }

    /// Applies one update to every parameter that has a gradient.
    pub fn step(&mut self) -> Result<()> {
        const { assert!(R::SLOTS.len() <= MAX_SLOTS && !R::SLOTS.is_empty()) };
        let t = self.steps + 1;
        let mut work = Vec::new();
        for group in &self.groups {
            let scalars = self.rule.scalars(group.lr, t);
            let mut jobs = Vec::new();
            for slot in &group.slots {
                if let Some(g) = slot.param.grad() {
                    check_grad(slot, &g)?;
                    jobs.push(Job { slot, grad: g });
                }
            }
            work.push((scalars, jobs));
        }
        // A gradient must not alias any parameter: parameters are written while it is read.
        for job in work.iter().flat_map(|(_, jobs)| jobs) {
            if self
                .slots()
                .any(|s| Rc::ptr_eq(s.param.storage_rc(), job.grad.storage_rc()))
            {
                return Err(Error::Invalid(format!(
                    "optimiser: the gradient of {} shares a parameter's storage",
                    job.slot.name
                )));
            }
        }
        match &self.state {
            Some(state) if matches!(state.storage(), Storage::Gpu(_)) => {
                self.step_gpu(state, &work)?
            }
            Some(state) => self.step_cpu(state, &work)?,
            None => {}
        }
        self.steps = t;
        Ok(())
    }

    /// One launch per [`PAIRS`] parameters of a group.
    fn step_gpu(&self, state: &Tensor, work: &[(Scalars, Vec<Job>)]) -> Result<()> {
        let stride = self.state_len() as u32;
        let state = gpu_buffer(state);
        let ctx = state.context();
        for (scalars, jobs) in work {
            for chunk in jobs.chunks(PAIRS) {
                let mut params = OptimParams {
                    stride,
                    clipped: self.clip.is_some() as u32,
                    clip: self.clip.unwrap_or(0.0),
                    scalars: *scalars,
                    ..Default::default()
                };
                let mut buffers = vec![state];
                let mut end = 0;
                for k in 0..PAIRS {
                    // Missing pairs repeat the first with an empty range: bound, never touched.
                    let job = chunk.get(k).unwrap_or(&chunk[0]);
                    if k < chunk.len() {
                        end += job.slot.param.numel();
                        params.offs[k] = job.slot.offset as u32;
                    }
                    params.ends[k] = end as u32;
                    buffers.push(gpu_buffer(&job.slot.param));
                    buffers.push(gpu_buffer(&job.grad));
                }
                ctx.dispatch(R::KERNEL, &params, &buffers, ctx.grid(end)?)?;
            }
        }
        Ok(())
    }

    /// One parallel pass over chunks of every parameter, its gradient and its state.
    fn step_cpu(&self, state: &Tensor, work: &[(Scalars, Vec<Job>)]) -> Result<()> {
        const CHUNK: usize = 1 << 14;
        let dtype_err = || Error::DType {
            op: "optimiser",
            dtype: DType::F64,
            hint: "optimisers update f32 parameters",
        };
        fn cpu(t: &Tensor) -> &crate::cpu::CpuStorage {
            match t.storage() {
                Storage::Cpu(c) => c,
                Storage::Gpu(_) => unreachable!("parameters, gradients and state share a device"),
            }
        }
        let jobs: Vec<(&Scalars, &Job)> = work
            .iter()
            .flat_map(|(k, jobs)| jobs.iter().map(move |j| (k, j)))
            .collect();
        let mut params = Vec::with_capacity(jobs.len());
        let mut grads = Vec::with_capacity(jobs.len());
        for (_, job) in &jobs {
            params.push(cpu(&job.slot.param).f32_mut().ok_or_else(dtype_err)?);
            grads.push(cpu(&job.grad).f32().ok_or_else(dtype_err)?);
        }
        let mut state = cpu(state).f32_mut().ok_or_else(dtype_err)?;
        // Each slot's row of the state, cut into the jobs' ranges (in offset order).
        let mut rest: Vec<&mut [f32]> = state.chunks_mut(self.state_len().max(1)).collect();
        let mut consumed = 0;
        let mut pieces: Vec<Piece> = Vec::new();
        for (((scalars, job), p), g) in jobs.iter().zip(params.iter_mut()).zip(&grads) {
            let mut own = Vec::with_capacity(rest.len());
            for r in rest.iter_mut() {
                let (_, tail) = std::mem::take(r).split_at_mut(job.slot.offset - consumed);
                let (mine, tail) = tail.split_at_mut(p.len());
                own.push(mine);
                *r = tail;
            }
            consumed = job.slot.offset + p.len();
            // Split the parameter, its gradient and state at the same chunk boundaries.
            let (mut p, mut g) = (&mut p[..], &g[..]);
            while !p.is_empty() {
                let at = CHUNK.min(p.len());
                let (ph, pt) = p.split_at_mut(at);
                let (gh, gt) = g.split_at(at);
                let mut heads = Vec::with_capacity(own.len());
                for s in own.iter_mut() {
                    let (h, t) = std::mem::take(s).split_at_mut(at);
                    heads.push(h);
                    *s = t;
                }
                pieces.push(Piece {
                    scalars,
                    p: ph,
                    g: gh,
                    state: heads,
                });
                (p, g) = (pt, gt);
            }
        }
        let clip = self.clip;
        crate::cpu::team::for_each_piece(&mut pieces, 1, |_, piece| piece[0].update::<R>(clip));
        Ok(())
    }
}

/// A parameter with its gradient at this step.
struct Job<'a> {
    slot: &'a Slot,
    grad: Tensor,
}

/// A chunk of one parameter's CPU update.
struct Piece<'a> {
    scalars: &'a Scalars,
    p: &'a mut [f32],
    g: &'a [f32],
    state: Vec<&'a mut [f32]>,
}

impl Piece<'_> {
    /// Updates every element, `LANES` at a time, then the tail one at a time. Each block's
    /// state is copied into fixed-size arrays, one per slot, so that the rule's arithmetic (a
    /// square root and a division for Adam) runs on vectors rather than one element at a time;
    /// the copies have a constant length, so they are vector moves, not `memcpy` calls (which
    /// had been 8% of an MLP-GAN step).
    fn update<R: UpdateRule>(&mut self, clip: Option<f32>) {
        const LANES: usize = 16;
        let full = self.p.len() - self.p.len() % LANES;
        for i in (0..full).step_by(LANES) {
            self.update_block::<R, LANES>(i, clip);
        }
        for i in full..self.p.len() {
            self.update_block::<R, 1>(i, clip);
        }
    }

    #[inline(always)]
    fn update_block<R: UpdateRule, const L: usize>(&mut self, i: usize, clip: Option<f32>) {
        let block = |row: &[f32]| -> [f32; L] { row[i..i + L].try_into().expect("L elements") };
        let mut state = [[0f32; L]; MAX_SLOTS];
        for (lane, row) in state.iter_mut().zip(&self.state) {
            *lane = block(row);
        }
        let (mut p, g) = (block(&*self.p), block(self.g));
        update_lanes::<R, L>(self.scalars, &mut p, &g, &mut state);
        if let Some(c) = clip {
            p = p.map(|w| w.max(-c).min(c));
        }
        self.p[i..i + L].copy_from_slice(&p);
        for (lane, row) in state.iter().zip(&mut self.state) {
            row[i..i + L].copy_from_slice(lane);
        }
    }
}

/// [`UpdateRule::update`] on each of `L` lanes, in a loop over lanes LLVM vectorises.
#[inline(always)]
fn update_lanes<R: UpdateRule, const L: usize>(
    k: &Scalars,
    p: &mut [f32; L],
    g: &[f32; L],
    state: &mut [[f32; L]; MAX_SLOTS],
) {
    for l in 0..L {
        let mut s: [f32; MAX_SLOTS] = std::array::from_fn(|j| state[j][l]);
        p[l] = R::update(k, p[l], g[l], &mut s);
        for (row, v) in state.iter_mut().zip(s) {
            row[l] = v;
        }
    }
}

fn check_grad(slot: &Slot, g: &Tensor) -> Result<()> {
    slot.param.same_device(g, "optimiser")?;
    if g.shape() != slot.param.shape() || g.dtype() != DType::F32 {
        return Err(Error::shape(
            "optimiser",
            format!(
                "gradient of {} is {:?} {:?}, parameter is {:?}",
                slot.name,
                g.dtype(),
                g.shape(),
                slot.param.shape()
            ),
        ));
    }
    Ok(())
}

fn gpu_buffer(t: &Tensor) -> &GpuBuffer {
    match t.storage() {
        Storage::Gpu(b) => b,
        Storage::Cpu(_) => unreachable!("parameters, gradients and state share a device"),
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
