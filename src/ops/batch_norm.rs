//! Batch normalisation (Keras conventions), fused: training forward is two kernels (the
//! per-channel statistics, which also update the running ones, then normalise-and-affine),
//! inference one, and the training backward two (the per-channel sums that are dgamma and
//! dbeta, then dx). On the CPU each phase is one multi-threaded pass.
//!
//! The fused backward is not itself differentiable; when a gradient must be differentiated
//! again (`create_graph`), and for the inference-mode backward, the rule differentiates the
//! composite expression instead, built from the same inputs.

use super::activation::Activation;
use crate::cpu::{team, CpuStorage, Real};
use crate::device::{read, write, Binding, GpuBuffer, Kernel, KernelSource};
use crate::tensor::graph::{self, GradFn};
use crate::tensor::Storage;
use crate::{Error, Result, Tensor};

/// Running statistics and how to update them (Keras `BatchNormalization`).
pub struct BatchNormState<'a> {
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
    /// running = momentum * running + (1 - momentum) * batch statistic (Keras: 0.99, book: 0.8);
    /// 1 leaves them untouched.
    pub momentum: f32,
    pub eps: f32,
}

crate::kernel_params! {
    /// A (N, C, HW) view: m = N * HW values per channel; mean at [c], var at [var_off + c];
    /// the activation the apply pass folds in.
    pub(crate) struct BatchNormParams {
        m: u32,
        c: u32,
        hw: u32,
        var_off: u32,
        momentum: f32,
        unbiased: f32,
        eps: f32,
        update: u32,
        act: u32,
        act_alpha: f32,
    }
}

const COMMON: &str = include_str!("../../shaders/batch_norm.wgsl");
const GRAD_BUFFERS: &[Binding] = &[
    read("x"),
    read("dy"),
    read("stats"),
    read("gamma"),
    read("y"),
    write("dbeta"),
    write("dgamma"),
    write("dx"),
];
const GRAD_SOURCE: &[&str] = &[
    COMMON,
    super::activation::FUNCTIONS,
    super::activation::ACTIVATE,
    include_str!("../../shaders/batch_norm_grad.wgsl"),
];

static STATS: Kernel<BatchNormParams> = Kernel::new(
    "batch_norm_stats",
    &[
        read("x"),
        write("stats"),
        write("running_mean"),
        write("running_var"),
    ],
    &[COMMON, include_str!("../../shaders/batch_norm_stats.wgsl")],
)
.entry("batch_stats");
static APPLY: Kernel<BatchNormParams> = Kernel::new(
    "batch_norm_apply",
    &[
        read("x"),
        read("mean_"),
        read("var_"),
        read("gamma"),
        read("beta"),
        write("y"),
    ],
    &[
        COMMON,
        super::activation::FUNCTIONS,
        super::activation::ACTIVATE,
        include_str!("../../shaders/batch_norm_apply.wgsl"),
    ],
)
.entry("apply");
static GRAD_REDUCE: Kernel<BatchNormParams> =
    Kernel::new("batch_norm_grad_reduce", GRAD_BUFFERS, GRAD_SOURCE).entry("grad_reduce");
static GRAD_INPUT: Kernel<BatchNormParams> =
    Kernel::new("batch_norm_grad_input", GRAD_BUFFERS, GRAD_SOURCE).entry("grad_input");

/// Every batch-norm kernel (for the portability test).
pub(crate) fn kernels() -> Vec<&'static dyn KernelSource> {
    vec![&STATS, &APPLY, &GRAD_REDUCE, &GRAD_INPUT]
}

/// (N, C, HW) of a 2-D or 4-D input.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    c: usize,
    hw: usize,
}

impl Dims {
    fn of(x: &Tensor) -> Result<Dims> {
        match *x.shape() {
            [n, c] => Ok(Dims { n, c, hw: 1 }),
            [n, c, h, w] => Ok(Dims { n, c, hw: h * w }),
            ref s => Err(Error::shape(
                "batch_norm",
                format!("needs (N, C) or (N, C, H, W), got {s:?}"),
            )),
        }
    }

    /// Values per channel.
    fn m(&self) -> usize {
        self.n * self.hw
    }

    fn params(&self, var_off: usize, eps: f32) -> BatchNormParams {
        BatchNormParams {
            m: self.m() as u32,
            c: self.c as u32,
            hw: self.hw as u32,
            var_off: var_off as u32,
            eps,
            ..Default::default()
        }
    }
}

// ---- CPU kernels: sums in f64, one parallel pass per phase ----------------------------------

/// The indices of channel `c`: its N contiguous runs of HW values, in order.
#[derive(Clone)]
struct Runs {
    d: Dims,
    c: usize,
    n: usize,
}

impl Iterator for Runs {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        (self.n < self.d.n).then(|| {
            let start = (self.n * self.d.c + self.c) * self.d.hw;
            self.n += 1;
            start..start + self.d.hw
        })
    }
}

/// Runs `f(c, runs of channel c)` for every channel, in parallel; reductions over the runs in
/// order keep one summation order.
fn per_channel<R: Send>(d: Dims, f: impl Fn(usize, Runs) -> R + Sync) -> Vec<R> {
    team::map_range(d.c, team::rows_per_piece(d.m()), |c| {
        f(c, Runs { d, c, n: 0 })
    })
}

/// A new vector shaped like `x`, filled sample by sample (in parallel): `f(c, i)` for every
/// element i of channel c.
fn per_element<T: Real>(x: &[T], d: Dims, f: impl Fn(usize, usize) -> T + Sync) -> Vec<T> {
    let sample = d.c * d.hw;
    let fill = |n: usize, o: &mut [T]| {
        for (c, plane) in o.chunks_mut(d.hw.max(1)).enumerate() {
            let start = n * sample + c * d.hw;
            for (s, v) in plane.iter_mut().enumerate() {
                *v = f(c, start + s);
            }
        }
    };
    team::build_rows(x.len(), sample, team::rows_per_piece(sample), fill)
}

/// (mean, biased variance) per channel, two passes.
fn stats_cpu<T: Real>(x: &[T], d: Dims) -> (Vec<f64>, Vec<f64>) {
    let m = d.m().max(1) as f64;
    per_channel(d, |_, runs| {
        let values = || runs.clone().flat_map(|r| &x[r]).map(|v| v.to_f64());
        let mean = values().sum::<f64>() / m;
        let var = values().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        (mean, var)
    })
    .into_iter()
    .unzip()
}

fn apply_cpu<T: Real>(x: &[T], d: Dims, scale: &[f64], shift: &[f64]) -> Vec<T> {
    per_element(x, d, |c, i| {
        T::from_f64(x[i].to_f64() * scale[c] + shift[c])
    })
}

/// The output gradient `dy` taken back through the folded activation, from its output `y`.
#[derive(Clone, Copy)]
struct Upstream<'a, T> {
    dy: &'a [T],
    y: &'a [T],
    act: Option<Activation>,
}

impl<T: Real> Upstream<'_, T> {
    #[inline(always)]
    fn at(&self, i: usize) -> f64 {
        Activation::grad_of(self.act, self.dy[i], self.y[i]).to_f64()
    }
}

/// (dbeta, dgamma) per channel.
fn grad_reduce_cpu<T: Real>(
    x: &[T],
    g: Upstream<T>,
    d: Dims,
    mean: &[f64],
    inv: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    per_channel(d, |c, runs| {
        let (mut sg, mut sgx) = (0.0, 0.0);
        for r in runs {
            let (xs, dy, y) = (&x[r.clone()], &g.dy[r.clone()], &g.y[r]);
            for ((&xv, &dv), &yv) in xs.iter().zip(dy).zip(y) {
                let v = Activation::grad_of(g.act, dv, yv).to_f64();
                sg += v;
                sgx += v * (xv.to_f64() - mean[c]) * inv[c];
            }
        }
        (sg, sgx)
    })
    .into_iter()
    .unzip()
}

/// Overwrites a CPU tensor's values in place (its dtype kept).
fn set_values(t: &Tensor, v: &[f64]) {
    if let Storage::Cpu(s) = t.storage() {
        match s {
            CpuStorage::F32(cell) => cell
                .borrow_mut()
                .iter_mut()
                .zip(v)
                .for_each(|(d, &x)| *d = x as f32),
            CpuStorage::F64(cell) => cell.borrow_mut().copy_from_slice(v),
        }
    }
}

fn cpu_storage<T: Real>(v: Vec<T>) -> Storage
where
    CpuStorage: From<Vec<T>>,
{
    Storage::Cpu(CpuStorage::from(v))
}

/// Runs `$body` with `$x` as the CPU slice of `$a`, whichever its dtype.
macro_rules! with_slices {
    ($a:expr, $x:ident => $body:expr) => {
        match $a.storage() {
            Storage::Cpu(CpuStorage::F32(c)) => {
                let $x: &[f32] = &c.borrow();
                $body
            }
            Storage::Cpu(CpuStorage::F64(c)) => {
                let $x: &[f64] = &c.borrow();
                $body
            }
            Storage::Gpu(_) => unreachable!("CPU path"),
        }
    };
}

/// Runs `$body` with `$x`, `$y` as the CPU slices of `$a`, `$b`, which must share a dtype.
macro_rules! with_slices3 {
    ($a:expr, $b:expr, $c:expr, $x:ident, $y:ident, $z:ident => $body:expr) => {
        match ($a.storage(), $b.storage(), $c.storage()) {
            (
                Storage::Cpu(CpuStorage::F32(a)),
                Storage::Cpu(CpuStorage::F32(b)),
                Storage::Cpu(CpuStorage::F32(c)),
            ) => {
                let ($x, $y, $z): (&[f32], &[f32], &[f32]) =
                    (&a.borrow(), &b.borrow(), &c.borrow());
                Ok($body)
            }
            (
                Storage::Cpu(CpuStorage::F64(a)),
                Storage::Cpu(CpuStorage::F64(b)),
                Storage::Cpu(CpuStorage::F64(c)),
            ) => {
                let ($x, $y, $z): (&[f64], &[f64], &[f64]) =
                    (&a.borrow(), &b.borrow(), &c.borrow());
                Ok($body)
            }
            _ => Err(Error::DType {
                op: "batch_norm backward",
                dtype: $a.dtype(),
                hint: "the gradient, the input and the output must share a dtype",
            }),
        }
    };
}

// ---- the op ----------------------------------------------------------------------------------

/// Why it is called: the statistics it normalises with, and where they are.
enum Stats {
    /// Training: the batch's (mean, biased variance) as a [2C] tensor.
    Batch(Tensor),
    /// Inference: the running statistics (copied where the graph keeps them).
    Running { mean: Tensor, var: Tensor },
}

impl Tensor {
    /// Batch normalisation over (N, C) or (N, C, H, W) with per-channel `gamma` and `beta` of
    /// shape `[C]`. Training normalises with the batch mean and biased variance and updates the
    /// running statistics in place (the running variance takes the unbiased batch variance for
    /// 4-D input and the biased one for 2-D, as Keras does); inference uses the running ones.
    pub fn batch_norm(
        &self,
        gamma: &Tensor,
        beta: &Tensor,
        state: &BatchNormState,
        training: bool,
    ) -> Result<Tensor> {
        self.batch_norm_activated(gamma, beta, state, training, None)
    }

    /// `act(batch_norm(..))`, the activation applied in the same pass.
    pub fn batch_norm_activated(
        &self,
        gamma: &Tensor,
        beta: &Tensor,
        state: &BatchNormState,
        training: bool,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        let act = act.map(Activation::foldable).transpose()?;
        let d = Dims::of(self)?;
        for (name, t) in [
            ("gamma", gamma),
            ("beta", beta),
            ("running_mean", state.running_mean),
            ("running_var", state.running_var),
        ] {
            if t.shape() != [d.c] {
                return Err(Error::shape(
                    "batch_norm",
                    format!("{name} has shape {:?}, expected [{}]", t.shape(), d.c),
                ));
            }
            self.same_device(t, "batch_norm")?;
        }
        // Inference records the running statistics it used: copies where the graph keeps them
        // (the running ones may change before the backward pass), the tensors themselves else.
        let tracked =
            graph::is_grad_enabled() && [self, gamma, beta].iter().any(|t| t.requires_grad());
        let pass = Pass {
            d,
            state,
            training,
            update: training && state.momentum != 1.0,
            // Keras feeds the running variance the unbiased batch variance for 4-D input.
            unbiased: if self.rank() == 4 && d.m() > 1 {
                d.m() as f32 / (d.m() - 1) as f32
            } else {
                1.0
            },
            act,
            copy_running: tracked,
        };
        let (storage, stats) = match self.storage() {
            Storage::Cpu(_) => pass.cpu(self, gamma, beta)?,
            Storage::Gpu(xb) => pass.gpu(xb, gamma, beta)?,
        };
        Ok(Tensor::from_op(
            storage,
            self.shape().to_vec(),
            &[self, gamma, beta],
            BatchNormGrad {
                stats,
                eps: state.eps,
                act,
            },
        ))
    }
}

/// One batch-norm forward pass, settled before the device's kernels run.
struct Pass<'a> {
    d: Dims,
    state: &'a BatchNormState<'a>,
    training: bool,
    /// Training with a momentum below 1: the running statistics move.
    update: bool,
    /// The factor that makes the batch variance unbiased for the running variance.
    unbiased: f32,
    act: Option<Activation>,
    /// Inference keeps copies of the running statistics (the graph needs them as they are).
    copy_running: bool,
}

impl Pass<'_> {
    /// Inference's statistics: the running ones (copied where the graph keeps them).
    fn running(&self) -> Result<Stats> {
        let keep = |t: &Tensor| {
            if self.copy_running {
                t.detach().mul_scalar(1.0)
            } else {
                Ok(t.detach())
            }
        };
        Ok(Stats::Running {
            mean: keep(self.state.running_mean)?,
            var: keep(self.state.running_var)?,
        })
    }

    fn cpu(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Result<(Storage, Stats)> {
        let (d, state) = (self.d, self.state);
        let (mean, var) = if self.training {
            let (mean, var) = with_slices!(x, x => stats_cpu(x, d));
            if self.update {
                let m = f64::from(state.momentum);
                let blend = |run: &Tensor, batch: &[f64], k: f64| -> Result<()> {
                    let old = run.to_vec_f64()?;
                    let new: Vec<f64> = old
                        .iter()
                        .zip(batch)
                        .map(|(&r, &b)| m * r + (1.0 - m) * b * k)
                        .collect();
                    set_values(run, &new);
                    Ok(())
                };
                blend(state.running_mean, &mean, 1.0)?;
                blend(state.running_var, &var, f64::from(self.unbiased))?;
            }
            (mean, var)
        } else {
            (
                state.running_mean.to_vec_f64()?,
                state.running_var.to_vec_f64()?,
            )
        };
        let (g, b) = (gamma.to_vec_f64()?, beta.to_vec_f64()?);
        let eps = f64::from(state.eps);
        let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        let scale: Vec<f64> = inv.iter().zip(&g).map(|(i, g)| i * g).collect();
        let shift: Vec<f64> = (0..d.c).map(|c| b[c] - mean[c] * scale[c]).collect();
        let y = with_slices!(x, x => cpu_storage(apply_cpu(x, d, &scale, &shift)));
        let y = match y {
            Storage::Cpu(y) => {
                Activation::apply_cpu(self.act, &y);
                Storage::Cpu(y)
            }
            gpu => gpu,
        };
        let stats = if self.training {
            let both = [mean, var].concat();
            Stats::Batch(match x.dtype() {
                crate::DType::F64 => Tensor::from_vec_f64(both, &[2 * d.c])?,
                crate::DType::F32 => Tensor::from_vec(
                    both.iter().map(|&v| v as f32).collect(),
                    &[2 * d.c],
                    &x.device(),
                )?,
            })
        } else {
            self.running()?
        };
        Ok((y, stats))
    }

    fn gpu(&self, xb: &GpuBuffer, gamma: &Tensor, beta: &Tensor) -> Result<(Storage, Stats)> {
        let (d, state) = (self.d, self.state);
        let ctx = xb.context();
        let (Storage::Gpu(gb), Storage::Gpu(bb), Storage::Gpu(rm), Storage::Gpu(rv)) = (
            gamma.storage(),
            beta.storage(),
            state.running_mean.storage(),
            state.running_var.storage(),
        ) else {
            unreachable!("same_device checked")
        };
        let (act, act_alpha) = Activation::code(self.act);
        let mut params = BatchNormParams {
            act,
            act_alpha,
            ..d.params(0, state.eps)
        };
        let stats = if self.training {
            let sb = ctx.alloc(2 * d.c)?;
            let p = BatchNormParams {
                momentum: state.momentum,
                unbiased: self.unbiased,
                update: u32::from(self.update),
                ..params
            };
            ctx.dispatch(&STATS, &p, &[xb, &sb, rm, rv], ctx.grid_for_groups(d.c)?)?;
            Stats::Batch(Tensor::from_storage(
                std::rc::Rc::new(Storage::Gpu(sb)),
                vec![2 * d.c],
            ))
        } else {
            self.running()?
        };
        let (mb, vb) = match &stats {
            Stats::Batch(s) => {
                params.var_off = d.c as u32;
                (s, s)
            }
            Stats::Running { mean, var } => (mean, var),
        };
        let (Storage::Gpu(mb), Storage::Gpu(vb)) = (mb.storage(), vb.storage()) else {
            unreachable!("made on this device")
        };
        let n = d.n * d.c * d.hw;
        let y = ctx.alloc(n)?;
        ctx.dispatch(&APPLY, &params, &[xb, mb, vb, gb, bb, &y], ctx.grid(n)?)?;
        Ok((Storage::Gpu(y), stats))
    }
}

/// Batch norm's backward, with the folded activation's: its kernels take the output gradient
/// back through the activation as they read it (from the output), rather than first writing
/// that gradient out whole, which cost a pass and, at the DCGAN's widest layer, the step's peak
/// memory.
struct BatchNormGrad {
    stats: Stats,
    eps: f32,
    act: Option<Activation>,
}

impl BatchNormGrad {
    /// The backward as differentiable ops on the node's own inputs: for gradients that must be
    /// differentiated again, and for inference mode. With xhat = (x - mean) / sqrt(var + eps)
    /// (batch statistics in training, the running ones in inference):
    /// dbeta = sum g, dgamma = sum g * xhat, and dx = gamma / sqrt(var + eps) times
    /// g - mean(g) - xhat * mean(g * xhat) in training, g alone in inference.
    /// Only the gradients `want`ed (x, gamma, beta) are computed.
    fn composite(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        g: &Tensor,
        want: [bool; 3],
    ) -> Result<Vec<Option<Tensor>>> {
        let c = gamma.numel();
        let (axes, param_shape): (&[isize], Vec<usize>) = if x.rank() == 4 {
            (&[0, 2, 3], vec![1, c, 1, 1])
        } else {
            (&[0], vec![1, c])
        };
        let (mean, var) = match &self.stats {
            Stats::Batch(_) => {
                let mean = x.mean(axes, true)?;
                let var = x.sub(&mean)?.square()?.mean(axes, true)?;
                (mean, var)
            }
            Stats::Running { mean, var } => {
                (mean.reshape(&param_shape)?, var.reshape(&param_shape)?)
            }
        };
        let inv_std = var.add_scalar(self.eps)?.pow(-0.5)?;
        let xhat = x.sub(&mean)?.mul(&inv_std)?;
        let dx = || -> Result<Tensor> {
            let scale = inv_std.mul(&gamma.reshape(&param_shape)?)?;
            match &self.stats {
                Stats::Batch(_) => g
                    .sub(&g.mean(axes, true)?)?
                    .sub(&xhat.mul(&g.mul(&xhat)?.mean(axes, true)?)?)?
                    .mul(&scale),
                Stats::Running { .. } => g.mul(&scale),
            }
        };
        Ok(vec![
            want[0].then(dx).transpose()?,
            want[1]
                .then(|| g.mul(&xhat)?.sum(axes, false))
                .transpose()?,
            want[2].then(|| g.sum(axes, false)).transpose()?,
        ])
    }
}

impl GradFn for BatchNormGrad {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn backward(&self, inputs: &[Tensor], y: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, gamma, beta) = (&inputs[0], &inputs[1], &inputs[2]);
        let want = |t: &Tensor| t.requires_grad();
        let stats = match &self.stats {
            // Grad mode is on in a backward pass only when its result must be differentiable.
            Stats::Batch(s) if !graph::is_grad_enabled() => s,
            _ => {
                let g = match self.act {
                    Some(act) => &act.grad(g, y)?,
                    None => g,
                };
                return self.composite(x, gamma, g, [want(x), want(gamma), want(beta)]);
            }
        };
        let d = Dims::of(x)?;
        match (x.storage(), g.storage()) {
            (Storage::Cpu(_), Storage::Cpu(_)) => {
                let s = stats.to_vec_f64()?;
                let (mean, var) = s.split_at(d.c);
                let eps = f64::from(self.eps);
                let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
                let act = self.act;
                let (dbeta, dgamma) = with_slices3!(x, g, y, xs, dy, ys => {
                    grad_reduce_cpu(xs, Upstream { dy, y: ys, act }, d, mean, &inv)
                })?;
                let gam = gamma.to_vec_f64()?;
                let m = d.m() as f64;
                let dx = if want(x) {
                    let storage = with_slices3!(x, g, y, xs, dy, ys => {
                        let g = Upstream { dy, y: ys, act };
                        cpu_storage(per_element(xs, d, |c, i| {
                            let xhat = (xs[i].to_f64() - mean[c]) * inv[c];
                            let v = g.at(i) - (dbeta[c] + xhat * dgamma[c]) / m;
                            Real::from_f64(gam[c] * inv[c] * v)
                        }))
                    })?;
                    Some(Tensor::from_storage(
                        std::rc::Rc::new(storage),
                        x.shape().to_vec(),
                    ))
                } else {
                    None
                };
                let per_channel = |v: Vec<f64>| -> Result<Tensor> {
                    match x.dtype() {
                        crate::DType::F64 => Tensor::from_vec_f64(v, &[d.c]),
                        crate::DType::F32 => Tensor::from_vec(
                            v.into_iter().map(|v| v as f32).collect(),
                            &[d.c],
                            &x.device(),
                        ),
                    }
                };
                Ok(vec![
                    dx,
                    want(gamma).then(|| per_channel(dgamma)).transpose()?,
                    want(beta).then(|| per_channel(dbeta)).transpose()?,
                ])
            }
            (Storage::Gpu(xb), Storage::Gpu(gb)) => {
                let ctx = xb.context();
                let (Storage::Gpu(sb), Storage::Gpu(gam), Storage::Gpu(yb)) =
                    (stats.storage(), gamma.storage(), y.storage())
                else {
                    unreachable!("same device")
                };
                let (act, act_alpha) = Activation::code(self.act);
                let params = BatchNormParams {
                    act,
                    act_alpha,
                    ..d.params(d.c, self.eps)
                };
                let dbeta = ctx.alloc(d.c)?;
                let dgamma = ctx.alloc(d.c)?;
                let dx = ctx.alloc(x.numel())?;
                let buffers = [xb, gb, sb, gam, yb, &dbeta, &dgamma, &dx];
                ctx.dispatch(&GRAD_REDUCE, &params, &buffers, ctx.grid_for_groups(d.c)?)?;
                let want_dx = want(x);
                if want_dx {
                    ctx.dispatch(&GRAD_INPUT, &params, &buffers, ctx.grid(x.numel())?)?;
                }
                let wrap = |b, shape: Vec<usize>| {
                    Tensor::from_storage(std::rc::Rc::new(Storage::Gpu(b)), shape)
                };
                Ok(vec![
                    want_dx.then(|| wrap(dx, x.shape().to_vec())),
                    want(gamma).then(|| wrap(dgamma, vec![d.c])),
                    want(beta).then(|| wrap(dbeta, vec![d.c])),
                ])
            }
            _ => unreachable!("gradient lives beside its input"),
        }
    }
}
