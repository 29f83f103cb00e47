//! A convolution of a nearest-upsampled input (Keras' `UpSampling2D` then `Conv2D`, the
//! DCGAN generator's block) on the CPU, without the upsampled image.
//!
//! With an upsampling factor s, the output pixels fall into s x s phases (oy mod s, ox mod s).
//! Within a phase every kernel row reads the input row `qy + floor((ry + ky - pt) / s)`, so
//! kernel rows that land on the same input row can be added first: each phase is a stride-1
//! convolution of the input itself with a smaller kernel (2x2 for a 3x3 kernel and s = 2).
//! For a 3x3 kernel and s = 2 the four phases do 4 multiply-adds per output pixel and
//! channel pair where the upsampled convolution does 9 (for 4x4: 6.25 against 16), in the
//! forward pass and both gradients, and the upsampled image (4x the input) is never stored.
//! The sums are the same terms in another order.
//!
//! The GPU runs the phases as batched implicit GEMMs (`shaders/conv_phase.wgsl`): one launch
//! for the s x s phases of the forward pass or the weight gradient, one for the input gradient
//! (its K runs over the phases), with every phase kernel padded to the largest (2x2 for 3x3,
//! 3x3 for 4x4: 36 against 64) and added up from the weights as the GEMM reads them.

use super::cpu::{forward_cpu, input_grad_cpu, weight_grad_cpu};
use super::{conv_mode, ConvParams, Geometry};
use crate::cpu::{team, Real, PAR_CHUNK};
use crate::device::{read, write, GpuBuffer, Kernel, KernelSource};
use crate::ops::gemm::{launch_gemm, GemmKernels};
use crate::ops::resample::{block_sum_cpu, upsample_cpu};
use crate::Result;

/// One phase along one axis: output positions `r, r + s, ...`, read through a kernel of `taps`
/// rows starting `pad` rows above the input row of the output's quotient.
struct AxisPhase {
    r: usize,
    /// Outputs in this phase.
    out: usize,
    /// The phase kernel's size and its padding before and after the input.
    taps: usize,
    pad: [usize; 2],
    /// The phase kernel's tap of each original kernel tap.
    tap_of: Vec<usize>,
}

/// The phases of one axis of a stride-1 convolution of an input of `n` upsampled by `s`,
/// kernel `k`, padding `pad` before, `out` outputs; `None` where a phase would need negative
/// padding after the input (an output cropped short of the upsampled image).
fn axis_phases(n: usize, s: usize, k: usize, pad: usize, out: usize) -> Option<Vec<AxisPhase>> {
    let floor_div = |a: isize| a.div_euclid(s as isize);
    (0..s.min(out))
        .map(|r| {
            let (first, taps) = phase_span(r, s, k, pad);
            let out = (out - r).div_ceil(s);
            // r < s, so the first tap is at most 0 rows below the output's input row.
            let before = (-first) as usize;
            let after = (out + taps - 1).checked_sub(n + before)?;
            let tap_of = (0..k)
                .map(|t| (floor_div((r + t) as isize - pad as isize) - first) as usize)
                .collect();
            Some(AxisPhase {
                r,
                out,
                taps,
                pad: [before, after],
                tap_of,
            })
        })
        .collect()
}

/// Phase r's first input row relative to its output's quotient (floor((r - pad) / s)), and
/// its kernel's size: the input rows its k taps read.
fn phase_span(r: usize, s: usize, k: usize, pad: usize) -> (isize, usize) {
    let floor_div = |a: isize| a.div_euclid(s as isize);
    let first = floor_div(r as isize - pad as isize);
    let last = floor_div((r + k - 1) as isize - pad as isize);
    (first, (last - first + 1) as usize)
}

/// One phase of the convolution: its outputs and its stride-1 convolution of the input.
struct Phase {
    y: AxisPhase,
    x: AxisPhase,
    g: Geometry,
}

/// The s x s phases of `g` (whose input is upsampled by `g.up`), or `None` where the phases do
/// not apply (a stride above 1, or an output cropped short of the upsampled image).
fn phases(g: &Geometry) -> Option<Vec<Phase>> {
    if g.stride != 1 {
        return None;
    }
    let (h, w) = (g.h / g.up, g.w / g.up);
    let rows = axis_phases(h, g.up, g.kh, g.pt, g.oh)?;
    let cols = axis_phases(w, g.up, g.kw, g.pl, g.ow)?;
    let mut all = Vec::with_capacity(rows.len() * cols.len());
    for y in &rows {
        for x in &cols {
            let g = Geometry::new(
                &[g.batch, g.cin, h, w],
                &[g.cout, g.cin, y.taps, x.taps],
                1,
                [y.pad[0], y.pad[1], x.pad[0], x.pad[1]],
            )
            .ok()?;
            debug_assert_eq!((g.oh, g.ow), (y.out, x.out));
            let clone = |a: &AxisPhase| AxisPhase {
                tap_of: a.tap_of.clone(),
                ..*a
            };
            all.push(Phase {
                y: clone(y),
                x: clone(x),
                g,
            });
        }
    }
    Some(all)
}

impl Phase {
    /// The phase kernel: the original taps that read the same input pixel, added.
    fn weight<T: Real>(&self, w: &[T], g: &Geometry) -> Vec<T> {
        let (taps, ptaps) = (g.kh * g.kw, self.y.taps * self.x.taps);
        let mut pw = vec![T::ZERO; g.cout * g.cin * ptaps];
        for (src, dst) in w.chunks_exact(taps).zip(pw.chunks_exact_mut(ptaps)) {
            for (ky, row) in src.chunks_exact(g.kw).enumerate() {
                let prow = &mut dst[self.y.tap_of[ky] * self.x.taps..][..self.x.taps];
                for (kx, &v) in row.iter().enumerate() {
                    let d = &mut prow[self.x.tap_of[kx]];
                    *d = *d + v;
                }
            }
        }
        pw
    }

    /// Adds the phase kernel's gradient `pw` into the original kernel's `dw`: each original
    /// tap takes the gradient of the phase tap it was added into.
    fn add_weight_grad<T: Real>(&self, pw: &[T], dw: &mut [T], g: &Geometry) {
        let (taps, ptaps) = (g.kh * g.kw, self.y.taps * self.x.taps);
        for (src, dst) in pw.chunks_exact(ptaps).zip(dw.chunks_exact_mut(taps)) {
            for (ky, row) in dst.chunks_exact_mut(g.kw).enumerate() {
                let prow = &src[self.y.tap_of[ky] * self.x.taps..][..self.x.taps];
                for (kx, d) in row.iter_mut().enumerate() {
                    *d = *d + prow[self.x.tap_of[kx]];
                }
            }
        }
    }

    /// Output row `qy` of this phase within an output plane of `g`: the columns it takes.
    fn row_of<'a, T>(
        &self,
        g: &Geometry,
        plane: &'a [T],
        qy: usize,
    ) -> impl Iterator<Item = &'a T> {
        let row = &plane[(qy * g.up + self.y.r) * g.ow..][..g.ow];
        row.iter().skip(self.x.r).step_by(g.up)
    }

    /// This phase's share of `full` (planes of the whole output).
    fn gather<T: Real>(&self, g: &Geometry, full: &[T]) -> Vec<T> {
        let (plane, pplane) = (g.oh * g.ow, self.g.oh * self.g.ow);
        team::build_rows(
            g.batch * g.cout * pplane,
            pplane,
            team::rows_per_piece(pplane),
            |p, part| {
                let full = &full[p * plane..][..plane];
                for (qy, prow) in part.chunks_exact_mut(self.g.ow.max(1)).enumerate() {
                    prow.iter_mut()
                        .zip(self.row_of(g, full, qy))
                        .for_each(|(v, &o)| *v = o);
                }
            },
        )
    }

    /// Writes this phase's outputs `part` into their places in `full`.
    fn scatter<T: Real>(&self, g: &Geometry, part: &[T], full: &mut [T]) {
        let (plane, pplane) = (g.oh * g.ow, self.g.oh * self.g.ow);
        team::for_each_row(full, plane, team::rows_per_piece(plane), |p, full| {
            let part = &part[p * pplane..][..pplane];
            for (qy, prow) in part.chunks_exact(self.g.ow.max(1)).enumerate() {
                let row = &mut full[(qy * g.up + self.y.r) * g.ow..][..g.ow];
                row.iter_mut()
                    .skip(self.x.r)
                    .step_by(g.up)
                    .zip(prow)
                    .for_each(|(o, &v)| *o = v);
            }
        });
    }
}

/// The same convolution of the upsampled input, stored (where the phases do not apply).
fn upsampled_input<T: Real>(x: &[T], g: &Geometry) -> (Vec<T>, Geometry) {
    let (h, w) = (g.h / g.up, g.w / g.up);
    let plain = g.stored_input();
    (upsample_cpu(x, g.batch * g.cin, h, w, g.up), plain)
}

pub(super) fn forward<T: Real>(x: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    let Some(phases) = phases(g) else {
        let (xu, plain) = upsampled_input(x, g);
        return forward_cpu(&xu, w, &plain);
    };
    let mut y = team::zeroed(g.batch * g.cout * g.oh * g.ow);
    for phase in &phases {
        let py = forward_cpu(x, &phase.weight(w, g), &phase.g);
        phase.scatter(g, &py, &mut y);
    }
    y
}

pub(super) fn input_grad<T: Real>(gy: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    let Some(phases) = phases(g) else {
        let plain = g.stored_input();
        let dxu = input_grad_cpu(gy, w, &plain);
        return block_sum_cpu(&dxu, g.batch * g.cin, g.h / g.up, g.w / g.up, g.up);
    };
    let mut dx = team::zeroed(g.batch * g.cin * (g.h / g.up) * (g.w / g.up));
    for phase in &phases {
        let pdx = input_grad_cpu(&phase.gather(g, gy), &phase.weight(w, g), &phase.g);
        team::for_each_piece(&mut dx, PAR_CHUNK, |i, dx| {
            dx.iter_mut()
                .zip(&pdx[i * PAR_CHUNK..])
                .for_each(|(d, &p)| *d = *d + p);
        });
    }
    dx
}

pub(super) fn weight_grad<T: Real>(x: &[T], gy: &[T], g: &Geometry) -> Vec<T> {
    let Some(phases) = phases(g) else {
        let (xu, plain) = upsampled_input(x, g);
        return weight_grad_cpu(&xu, gy, &plain);
    };
    let mut dw = vec![T::ZERO; g.cout * g.cin * g.kh * g.kw];
    for phase in &phases {
        let pdw = weight_grad_cpu(x, &phase.gather(g, gy), &phase.g);
        phase.add_weight_grad(&pdw, &mut dw, g);
    }
    dw
}

// ---- GPU: the phases as implicit GEMMs -------------------------------------------------------

static FORWARD: GemmKernels<ConvParams> = conv_mode!(
    "conv_phase_forward",
    [
        "conv_phase.wgsl",
        "gemm_conv_phase.wgsl",
        "gemm_phase_taps.wgsl",
        "gemm_conv_phase_forward.wgsl"
    ],
    "true",
    k_limit "phase_depth(z)",
    with row_bias
);
static INPUT_GRAD: GemmKernels<ConvParams> = conv_mode!(
    "conv_phase_input_grad",
    [
        "conv_phase.wgsl",
        "gemm_conv_phase.wgsl",
        "gemm_conv_phase_input_grad.wgsl"
    ],
    "true"
)
.reading_gradients();
static WEIGHT_GRAD: GemmKernels<ConvParams> = conv_mode!(
    "conv_phase_weight_grad",
    [
        "conv_phase.wgsl",
        "gemm_conv_phase.wgsl",
        "gemm_conv_phase_weight_grad.wgsl"
    ],
    "false"
)
.reading_gradients();
static FOLD: Kernel<ConvParams> = Kernel::new(
    "conv_phase_fold",
    &[read("partial"), write("dw")],
    &[
        include_str!("../../../shaders/conv_phase.wgsl"),
        include_str!("../../../shaders/conv_phase_fold.wgsl"),
    ],
)
.entry("fold_phases");

/// The phase kernels (for the portability test).
pub(super) fn kernels() -> Vec<&'static dyn KernelSource> {
    let mut all: Vec<&'static dyn KernelSource> = vec![&FOLD];
    for mode in [&FORWARD, &INPUT_GRAD, &WEIGHT_GRAD] {
        all.extend(mode.all());
    }
    all
}

/// Whether the GPU runs `g` by phases: an upsampling convolution at stride 1 (any padding:
/// the GEMMs' loads check the stored image's bounds).
pub(super) fn gpu_phases(g: &Geometry) -> bool {
    g.up > 1 && g.stride == 1
}

/// The GPU phases' sizes: the phase kernel (the largest phase's along each axis, the others
/// padded with zero taps) and the fullest phase's outputs per image.
struct Phases {
    taps: (usize, usize),
    pixels: (usize, usize),
}

impl Phases {
    fn of(g: &Geometry) -> Phases {
        let taps = |k, pad| (0..g.up).map(|r| phase_span(r, g.up, k, pad).1).max();
        Phases {
            taps: (taps(g.kh, g.pt).unwrap_or(0), taps(g.kw, g.pl).unwrap_or(0)),
            pixels: (g.oh.div_ceil(g.up), g.ow.div_ceil(g.up)),
        }
    }

    fn taps(&self) -> usize {
        self.taps.0 * self.taps.1
    }

    fn pixels(&self) -> usize {
        self.pixels.0 * self.pixels.1
    }

    /// The phase GEMMs' params for a product of m x k by k x n.
    fn params(&self, g: &Geometry, (m, n, k): (usize, usize, usize)) -> ConvParams {
        g.params(m, n, k).with_phases(self.taps, self.pixels)
    }
}

/// The forward pass: s x s products (cout x batch * phase pixels, K = cin * phase taps), the
/// bias and the activation `params` names in the store.
pub(super) fn forward_gpu(
    x: &GpuBuffer,
    w: &GpuBuffer,
    bias: Option<&GpuBuffer>,
    g: &Geometry,
    params: impl FnOnce(ConvParams) -> ConvParams,
) -> Result<GpuBuffer> {
    let ctx = x.context();
    let out = ctx.alloc(g.batch * g.cout * g.oh * g.ow)?;
    let phases = Phases::of(g);
    let mnk = (g.cout, g.batch * phases.pixels(), g.cin * phases.taps());
    let params = params(phases.params(g, mnk));
    launch_gemm(ctx, &FORWARD, &params, mnk, g.up * g.up, [w, x, &out], bias)?;
    Ok(out)
}

/// The input gradient: one product (cin x batch * stored pixels) whose K runs over output
/// channels, phases and phase taps.
pub(super) fn input_grad_gpu(gy: &GpuBuffer, w: &GpuBuffer, g: &Geometry) -> Result<GpuBuffer> {
    let ctx = gy.context();
    let phases = Phases::of(g);
    let stored = (g.h / g.up) * (g.w / g.up);
    let k = g.cout * g.up * g.up * phases.taps();
    let (m, n) = (g.cin, g.batch * stored);
    let out = ctx.alloc(m * n)?;
    let params = phases.params(g, (m, n, k));
    launch_gemm(ctx, &INPUT_GRAD, &params, (m, n, k), 1, [w, gy, &out], None)?;
    Ok(out)
}

/// The weight gradient: the phase kernels' gradients (s x s products of cout x cin * phase
/// taps, K = batch * phase pixels), then folded into the original taps.
pub(super) fn weight_grad_gpu(x: &GpuBuffer, gy: &GpuBuffer, g: &Geometry) -> Result<GpuBuffer> {
    let ctx = x.context();
    let shape = Phases::of(g);
    let (m, n, k) = (g.cout, g.cin * shape.taps(), g.batch * shape.pixels());
    let phases = g.up * g.up;
    let partial = ctx.alloc(phases * m * n)?;
    let params = shape.params(g, (m, n, k));
    launch_gemm(
        ctx,
        &WEIGHT_GRAD,
        &params,
        (m, n, k),
        phases,
        [gy, x, &partial],
        None,
    )?;
    let taps = g.cout * g.cin * g.kh * g.kw;
    let dw = ctx.alloc(taps)?;
    ctx.dispatch(&FOLD, &params, &[&partial, &dw], ctx.grid(taps)?)?;
    Ok(dw)
}
