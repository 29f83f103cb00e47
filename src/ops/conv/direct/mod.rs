//! Direct convolution on the CPU, for the thin shapes where im2col + GEMM wastes its work.
//!
//! With one or a few output channels (a generator's last layer, ProGAN's toRGB), the per-image
//! GEMM is a matrix-vector product, and building its im2col matrix (taps x pixels) costs more
//! than the product. Here each tile of `ROWS x COLS` outputs (7 rows on some planes, see
//! `tiles`) is summed in registers straight from zero-padded copies of the input planes, which
//! stay in cache. The padded planes cover whole tiles, so no tap needs a bounds check and
//! every read past the image is a zero.
//!
//! - `plan`: the padded planes, by stride phases;
//! - `tiles`: the register-tiled correlation (forward, stride-1 input gradient);
//! - `pointwise`: 1x1 layers summed from one in-order read of the image;
//! - `weight_dots`: the weight gradient as dot products over the padded planes;
//! - `few_weights_grads`: the weight gradient and a strided layer's input gradient of layers
//!   with at most [`FEW_WEIGHTS`] weights per output (a discriminator's first layer), without
//!   im2col matrices or reorders.

mod few_weights_grads;
mod plan;
mod pointwise;
mod tiles;
mod weight_dots;

pub(super) use few_weights_grads::few_weights_input_grad;

use super::Geometry;
use crate::cpu::{team, Real};
use few_weights_grads::few_weights_grad;
use plan::Plan;
use pointwise::{pointwise, sum_channels, sums_channels};
use tiles::correlate;
use weight_dots::correlate_weights;

/// A register tile of outputs: columns vectorise, and four rows give the FMA units eight
/// independent chains (of AVX2 vectors).
const ROWS: usize = 4;
const COLS: usize = 16;

/// Whether a `vectorised!` loop built `WIDE` (for AVX-512's 32 registers of 16 `f32`) takes
/// its wide blocking for `T`: an `f64` row of `COLS` values takes two registers, and the
/// blocking would spill.
const fn wide<T>(wide: bool) -> bool {
    wide && size_of::<T>() == 4
}

/// A layer is thin with at most this many output channels. The im2col matrix (col2im for the
/// input gradient) costs as much as a GEMM with that many rows, so it dominates; a layer with
/// few taps but many outputs (a discriminator's first layer) builds a small im2col matrix
/// and keeps the GEMM, which measured faster there.
const THIN: usize = 4;

/// Weight-gradient partial sums over this many fixed groups of images, added in order: the
/// result does not depend on how threads were scheduled.
const GROUPS: usize = 8;

/// The input gradient is a stride-1 correlation of the output gradient with the flipped
/// kernel; for strided layers it is not a plain correlation, and they keep the GEMM.
pub(super) fn reads_input_grad(g: &Geometry) -> bool {
    g.stride == 1 && g.pt < g.kh && g.pl < g.kw
}

/// Whether a layer is thin enough that the direct kernels beat im2col + GEMM (each pass).
pub(super) fn thin(g: &Geometry) -> bool {
    g.cout <= THIN
}

/// Whether a layer has at most [`FEW_WEIGHTS`] weights per output (a discriminator's first
/// layer, ProGAN's fromRGB). There the im2col matrix and the reorder by image of the GEMM's
/// output (forward) or gradient (weight gradient) cost as much as the product, and the direct
/// kernels do neither. Forward, at batch 64: D conv1 (1 -> 32, k3 s2) 0.097-0.117 ms on the
/// GEMM path and 0.088-0.093 here, the WGAN critic's conv1 0.088 and 0.056; the 64x64 DCGAN's
/// conv1 (3 -> 64, k4 s2: 48 weights) measured within noise of the GEMM path either way, and
/// with 288 (D conv2) the GEMM path is twice as fast. The weight gradient and a strided
/// layer's input gradient take direct kernels too ([`few_weights_grad`],
/// [`few_weights_input_grad`]); a stride-1 one keeps the GEMM path, as fast or faster.
pub(super) fn few_weights(g: &Geometry) -> bool {
    g.k() <= FEW_WEIGHTS
}

/// See [`few_weights`].
const FEW_WEIGHTS: usize = 16;

/// Whether the forward pass takes the direct kernels: thin layers, and layers with
/// [`few_weights`] but for 1x1 ones over more than 3 input planes, where the tiles read one
/// stream per plane. Into 32 channels at 28x28, batch 64 (`cargo bench --bench conv --
/// --filter few-weights`), the GEMM path is as fast over 3 or 4 planes and 20% faster over 16
/// (0.47 against 0.58 ms).
pub(super) fn runs_forward(g: &Geometry) -> bool {
    thin(g) || few_weights(g) && !(g.kh * g.kw == 1 && g.cin > 3)
}

/// y = conv(x, w), image by image in parallel.
pub(super) fn forward<T: Real>(x: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    let plan = Plan::new(g.cin, (g.kh, g.kw), (g.oh, g.ow), g.stride).aligned();
    let taps = plan.taps();
    let sample = g.cout * g.oh * g.ow;
    // SAFETY: `sum_channels` and `correlate` write every output of their piece.
    unsafe {
        team::build_uninit_with(g.batch * sample, sample, Vec::new, |padded, img, out| {
            let image = &x[img * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
            if pointwise(g) && sums_channels(g.cin, g.cout) {
                return sum_channels(image, w, g.cin, g.oh * g.ow, out);
            }
            let src = plan.padded(image, (g.h, g.w), (g.pt, g.pl), padded);
            correlate(src, w, &plan, &taps, out);
        })
    }
}

/// dx = conv_input_grad(gy, w) for stride 1: dx[ci, y, x] = sum over (co, ky, kx) of
/// w[co, ci, kh-1-ky, kw-1-kx] gy[co, y + ky - (kh-1-pt), x + kx - (kw-1-pl)], a correlation
/// of the output gradient padded by kh-1-pt rows and kw-1-pl columns with the flipped,
/// transposed kernel.
pub(super) fn input_grad<T: Real>(gy: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    let (kh, kw) = (g.kh, g.kw);
    let mut flipped = vec![T::ZERO; w.len()];
    for co in 0..g.cout {
        for ci in 0..g.cin {
            for ky in 0..kh {
                for kx in 0..kw {
                    flipped[((ci * g.cout + co) * kh + kh - 1 - ky) * kw + kw - 1 - kx] =
                        w[((co * g.cin + ci) * kh + ky) * kw + kx];
                }
            }
        }
    }
    let plan = Plan::new(g.cout, (kh, kw), (g.h, g.w), 1).aligned();
    let taps = plan.taps();
    let ohw = g.oh * g.ow;
    let image = g.cin * g.h * g.w;
    // SAFETY: `sum_channels` and `correlate` write every output of their piece.
    unsafe {
        team::build_uninit_with(g.batch * image, image, Vec::new, |padded, img, out| {
            let grad = &gy[img * g.cout * ohw..][..g.cout * ohw];
            if pointwise(g) && sums_channels(g.cout, g.cin) {
                return sum_channels(grad, &flipped, g.cout, ohw, out);
            }
            let src = plan.padded(grad, (g.oh, g.ow), (kh - 1 - g.pt, kw - 1 - g.pl), padded);
            correlate(src, &flipped, &plan, &taps, out);
        })
    }
}

/// dw = conv_weight_grad(x, gy): per (co, ci, ky, kx), the sum over images and outputs of
/// gy[co, y, x] times the input the tap read.
pub(super) fn weight_grad<T: Real>(x: &[T], gy: &[T], g: &Geometry) -> Vec<T> {
    if few_weights(g) {
        return few_weights_grad(x, gy, g);
    }
    let plan = Plan::new(g.cin, (g.kh, g.kw), (g.oh, g.ow), g.stride);
    let taps = plan.taps();
    // The output gradient in the input planes' pitch, zeros past each row's outputs.
    let grad_plan = Plan {
        channels: g.cout,
        stride: 1,
        rows: g.oh,
        ..plan
    };
    let ohw = g.oh * g.ow;
    let per_group = g.batch.div_ceil(GROUPS).max(1);
    let partials: Vec<Vec<T>> = team::map_range(g.batch.div_ceil(per_group), 1, |group| {
        let (mut padded, mut padded_grad) = (Vec::new(), Vec::new());
        let mut dw = vec![T::ZERO; g.cout * g.k()];
        for img in group * per_group..((group + 1) * per_group).min(g.batch) {
            let image = &x[img * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
            let src = plan.padded(image, (g.h, g.w), (g.pt, g.pl), &mut padded);
            let grad = &gy[img * g.cout * ohw..][..g.cout * ohw];
            let grad = grad_plan.padded(grad, (g.oh, g.ow), (0, 0), &mut padded_grad);
            correlate_weights(src, grad, &plan, &taps, &mut dw);
        }
        dw
    });
    let mut total = vec![T::ZERO; g.cout * g.k()];
    for part in partials {
        total.iter_mut().zip(part).for_each(|(t, p)| *t = *t + p);
    }
    total
}

/// `COLS` values from `at`: one bounds check, then a fixed-size array LLVM vectorises.
#[inline(always)]
fn row<T: Real>(v: &[T], at: usize) -> &[T; COLS] {
    v[at..at + COLS]
        .try_into()
        .expect("a tile row lies inside the padded plane")
}

/// acc += a * b, lane by lane (fused when `FUSED`).
#[inline(always)]
fn madd_row<T: Real, const FUSED: bool>(acc: &mut [T; COLS], a: &[T; COLS], b: &[T; COLS]) {
    for ((s, &a), &b) in acc.iter_mut().zip(a).zip(b) {
        *s = if FUSED { a.mul_add(b, *s) } else { a * b + *s };
    }
}

/// The lanes added pairwise (deterministic, and a short dependency chain).
#[inline(always)]
fn sum_lanes<T: Real>(mut v: [T; COLS]) -> T {
    let mut width = COLS;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            v[l] = v[l] + v[l + width];
        }
    }
    v[0]
}
