//! Direct convolution on the CPU, for the thin shapes where im2col + GEMM wastes its work.
//!
//! With one or a few output channels (a generator's last layer, ProGAN's toRGB), the per-image
//! GEMM is a matrix-vector product, and building its im2col matrix (taps x pixels) costs more
//! than the product. Here each tile of `ROWS x COLS` outputs is summed in registers straight
//! from zero-padded copies of the input planes, which stay in cache. The padded planes cover
//! whole tiles, so no tap needs a bounds check and every read past the image is a zero.

use super::cpu::col2im_image;
use super::Geometry;
use crate::cpu::simd::vectorised;
use crate::cpu::{team, write_copy, Real};
use std::mem::MaybeUninit;

/// A register tile of outputs: columns vectorise, and four rows give the FMA units eight
/// independent chains (of AVX2 vectors).
const ROWS: usize = 4;
const COLS: usize = 16;
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

/// A correlation's sizes: `channels` zero-padded input planes read with the stride by a
/// `kh x kw` kernel into `oh x ow` outputs per output channel.
///
/// Each padded plane is stored as `stride x stride` phase planes of `rows x pitch`: padded
/// pixel (Y, X) goes to phase (Y % s, X % s) at (Y / s, X / s). Tap (ky, kx) of output
/// (y, x) reads padded pixel (y s + ky, x s + kx), that is phase (ky % s, kx % s) at
/// (y + ky / s, x + kx / s): every tap is a contiguous stride-1 read, whatever the stride.
#[derive(Clone, Copy, Debug)]
struct Plan {
    channels: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    rows: usize,
    pitch: usize,
}

impl Plan {
    fn new(
        channels: usize,
        (kh, kw): (usize, usize),
        (oh, ow): (usize, usize),
        stride: usize,
    ) -> Plan {
        Plan {
            channels,
            kh,
            kw,
            oh,
            ow,
            stride,
            // Whole tiles, so a tile past the last output row or column reads padding.
            rows: oh.next_multiple_of(ROWS) - 1 + kh.div_ceil(stride),
            pitch: ow.next_multiple_of(COLS) - 1 + kw.div_ceil(stride),
        }
    }

    fn phase(&self) -> usize {
        self.rows * self.pitch
    }

    fn plane(&self) -> usize {
        self.stride * self.stride * self.phase()
    }

    /// Where each tap (c, ky, kx) of output (0, 0) reads, in weight order.
    fn taps(&self) -> Vec<usize> {
        let s = self.stride;
        let mut at = Vec::with_capacity(self.channels * self.kh * self.kw);
        for c in 0..self.channels {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    at.push(
                        c * self.plane()
                            + (ky % s * s + kx % s) * self.phase()
                            + ky / s * self.pitch
                            + kx / s,
                    );
                }
            }
        }
        at
    }

    /// `channels` planes of `h x w` from `src` placed at (top, left) of zeroed padded planes:
    /// `src` itself where it is laid out so already (a 1x1 layer on whole tiles), else a copy
    /// in `scratch`.
    fn padded<'a, T: Real>(
        &self,
        src: &'a [T],
        size: (usize, usize),
        corner: (usize, usize),
        scratch: &'a mut Vec<T>,
    ) -> &'a [T] {
        if self.stride == 1 && corner == (0, 0) && size == (self.rows, self.pitch) {
            return &src[..self.channels * self.plane()];
        }
        self.pad(src, size, corner, scratch);
        scratch
    }

    /// Copies `channels` planes of `h x w` from `src` to (top, left) of zeroed padded planes
    /// (what falls outside them is never read, and is cut). A scratch serves one plan and
    /// placement: zeroed when first sized, it is then only written where the pixels go (and
    /// zeros after them, see [`copy_row`]), so its padding stays zero for the next image.
    fn pad<T: Real>(
        &self,
        src: &[T],
        size: (usize, usize),
        corner: (usize, usize),
        out: &mut Vec<T>,
    ) {
        if out.len() != self.channels * self.plane() {
            out.clear();
            out.resize(self.channels * self.plane(), T::ZERO);
        }
        place_built(self, src, size, corner, out)
    }

    /// [`Plan::pad`]'s copies, for stride `S` (0: the plan's own).
    #[inline(always)]
    fn place<T: Real, const S: usize>(
        &self,
        src: &[T],
        (h, w): (usize, usize),
        (top, left): (usize, usize),
        out: &mut [T],
    ) {
        let s = if S == 0 { self.stride } else { S };
        let rows = h.min((self.rows * s).saturating_sub(top));
        let cols = w.min((self.pitch * s).saturating_sub(left));
        for c in 0..self.channels {
            for y in 0..rows {
                let from = &src[(c * h + y) * w..][..cols];
                let (py, row) = ((top + y) % s, (top + y) / s);
                let at = c * self.plane() + py * s * self.phase() + row * self.pitch;
                if s == 1 {
                    copy_row(out, at + left, src, (c * h + y) * w, cols);
                    continue;
                }
                if S == 2 {
                    // Pixel pairs to the two column phases in one loop, which vectorises as a
                    // de-interleave (a loop per phase over chunks of 2 stayed scalar).
                    let at = |x: usize| at + (left + x) % 2 * self.phase() + (left + x) / 2;
                    let (even, odd) = (at(0), at(1));
                    // The two phases' rows lie a phase apart: split between them.
                    let (lo, hi) = out.split_at_mut(even.max(odd));
                    let (even, odd) = if even < odd {
                        (&mut lo[even..], hi)
                    } else {
                        (hi, &mut lo[odd..])
                    };
                    let pairs = from.chunks_exact(2);
                    if let [last] = pairs.remainder() {
                        even[cols / 2] = *last;
                    }
                    for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                        (*e, *o) = (pair[0], pair[1]);
                    }
                    continue;
                }
                for (x, &v) in from.iter().enumerate() {
                    let px = left + x;
                    out[at + px % s * self.phase() + px / s] = v;
                }
            }
        }
    }
}

/// [`Plan::pad`]'s copies: a constant stride makes each pixel's phase and place a shift, not a
/// division, and the widest vectors copy the rows.
#[inline(always)]
fn place_rows<T: Real, const FUSED: bool>(
    plan: &Plan,
    src: &[T],
    size: (usize, usize),
    corner: (usize, usize),
    out: &mut [T],
) {
    match plan.stride {
        1 => plan.place::<T, 1>(src, size, corner, out),
        2 => plan.place::<T, 2>(src, size, corner, out),
        _ => plan.place::<T, 0>(src, size, corner, out),
    }
}

/// out[at..at + n] = src[from..from + n], by whole vectors, for rows placed in order: the last
/// vector spills past the row, and a vector of zeros stored after the row puts back the zeros
/// there; what else it covers is padding or a later row's pixels. (A copy of the row's length
/// was a memcpy call per row, 32 planes of 14 rows per image for D conv1's output gradient.)
#[inline(always)]
fn copy_row<T: Real>(out: &mut [T], at: usize, src: &[T], from: usize, n: usize) {
    for x in (0..n).step_by(COLS) {
        match (
            out.get_mut(at + x..at + x + COLS),
            src.get(from + x..from + x + COLS),
        ) {
            (Some(to), Some(v)) => to.copy_from_slice(v),
            _ => return copy_row_end(&mut out[at + x..], &src[from + x..from + n]),
        }
    }
    match out.get_mut(at + n..at + n + COLS) {
        Some(to) => to.fill(T::ZERO),
        None => copy_row_end(&mut out[at + n..], &[]),
    }
}

/// [`copy_row`] where whole vectors run past either slice's end (the last rows): `v`, then
/// zeros up to `COLS` values or the end of `out`. Out of line, so that LLVM does not merge
/// [`copy_row`]'s fixed-size copies into this one's call.
#[cold]
#[inline(never)]
fn copy_row_end<T: Real>(out: &mut [T], v: &[T]) {
    out[..v.len()].copy_from_slice(v);
    let end = out.len().min(v.len() + COLS);
    out[v.len()..end].fill(T::ZERO);
}

/// y = conv(x, w), image by image in parallel.
pub(super) fn forward<T: Real>(x: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    let plan = Plan::new(g.cin, (g.kh, g.kw), (g.oh, g.ow), g.stride);
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

/// Whether a layer is pointwise: 1x1, stride 1, unpadded (ProGAN's toRGB and fromRGB).
fn pointwise(g: &Geometry) -> bool {
    (g.kh, g.kw, g.stride, g.pt, g.pl) == (1, 1, 1, 0, 0) && (g.oh, g.ow) == (g.h, g.w)
}

/// Whether [`sum_channels`] takes a pointwise product of `channels` input planes into `outs`
/// output planes: a few outputs, summed from one in-order read of the image rather than the
/// tiles' one stream per channel plane (64 planes 4 KiB apart at once: toRGB at batch 64, 0.40
/// to 0.31 ms, whose 16 MB read alone takes 0.29 ms here), or one input plane, which each
/// output plane scales (fromRGB's forward pass, toRGB's input gradient: the tiles, one
/// multiply-add per row, measured 0.36 ms, here 0.30).
fn sums_channels(channels: usize, outs: usize) -> bool {
    outs <= THIN || channels == 1
}

/// Pixels per block of [`sum_channels`]: the block's sums for every output stay in L1.
const BLOCK: usize = 256;

/// out[o, p] = sum over c of w[o, c] x[c, p] for `plane` pixels per channel, as
/// [`sums_channels`] allows (every element of `out` is written).
fn sum_channels<T: Real>(
    x: &[T],
    w: &[T],
    channels: usize,
    plane: usize,
    out: &mut [MaybeUninit<T>],
) {
    // Every output written, as the callers' safety rests on.
    let outs = w.len() / channels.max(1);
    assert!(
        sums_channels(channels, outs) && out.len() == outs * plane,
        "sum_channels covers its output"
    );
    if channels == 1 {
        for (out, &wv) in out.chunks_exact_mut(plane.max(1)).zip(w) {
            for (o, &v) in out.iter_mut().zip(x) {
                o.write(wv * v);
            }
        }
        return;
    }
    channel_sums_built(x, w, channels, plane, out)
}

#[inline(always)]
fn channel_sums<T: Real, const FUSED: bool>(
    x: &[T],
    w: &[T],
    channels: usize,
    plane: usize,
    out: &mut [MaybeUninit<T>],
) {
    let outs = w.len() / channels.max(1);
    for p0 in (0..plane).step_by(BLOCK) {
        let n = BLOCK.min(plane - p0);
        let mut acc = [[T::ZERO; BLOCK]; THIN];
        for c in 0..channels {
            let xs = &x[c * plane + p0..][..n];
            for (o, acc) in acc.iter_mut().enumerate().take(outs) {
                let wv = w[o * channels + c];
                for (a, &v) in acc[..n].iter_mut().zip(xs) {
                    *a = if FUSED {
                        wv.mul_add(v, *a)
                    } else {
                        wv * v + *a
                    };
                }
            }
        }
        for (o, acc) in acc.iter().enumerate().take(outs) {
            write_copy(&mut out[o * plane + p0..][..n], &acc[..n]);
        }
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
    let plan = Plan::new(g.cout, (kh, kw), (g.h, g.w), 1);
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

/// dx of a strided layer with [`few_weights`] (D conv1: 9 per output): per image, the column
/// gradient dcols[t, p] = sum over co of w[co, t] gy[co, p], each tap's row summed in vectors
/// of pixels straight from the gradient planes as stored, then col2im ([`Halves`] where it
/// applies). The GEMM path spends as much on packing and on the reorder of the gradient by
/// image as on this product.
pub(super) fn few_weights_input_grad<T: Real>(gy: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    let (k, ohw, image) = (g.k(), g.oh * g.ow, g.cin * g.h * g.w);
    let ld = ohw.next_multiple_of(COLS);
    let halves = Halves::new(g);
    team::build_with(
        g.batch * image,
        image,
        // The column gradient, with a vector to spare for the row reads of `Halves`.
        || vec![T::ZERO; k * ld + COLS],
        |dcols, img, dx| {
            let grad = &gy[img * g.cout * ohw..];
            tap_sums_built(w, grad, g.cout, ohw, &mut dcols[..k * ld]);
            match &halves {
                Some(h) => col2im_halves_built(dcols, ld, h, dx),
                None => col2im_image(dcols, g, dx, ld),
            }
        },
    )
}

/// col2im by whole vectors for a stride-2 layer whose input is exactly twice its output each
/// way, with kernels at most 4 wide and no padding on the left (D conv1 and the WGAN critic's
/// conv1: 28 -> 14, k3). The input pixels of each parity (py, px) form an oh x ow phase
/// plane, and tap (ky, kx) reaches phase ((ky - pt) mod 2, kx mod 2), shifted down by
/// (ky - pt) div 2 rows and right by kx div 2 (0 or 1) columns. So each vector of an input
/// row's even and odd columns is a sum of vectors of the taps' column-gradient rows, some
/// shifted right a lane, summed in registers and interleaved: no index per pixel (the scalar
/// col2im was a third of the pass).
///
/// A row's vectors run past its last pixel, into the next row's: those lanes only reach
/// columns at or past `ow` (the shifts are never to the left), which the interleave writes
/// past the input row's end, onto pixels written after it.
#[derive(Clone, Copy, Debug)]
struct Halves {
    cin: usize,
    kh: usize,
    kw: usize,
    pt: usize,
    oh: usize,
    ow: usize,
}

impl Halves {
    fn new(g: &Geometry) -> Option<Halves> {
        let applies = g.stride == 2 && g.up == 1 && g.pl == 0 && g.kw <= 4;
        (applies && g.h == 2 * g.oh && g.w == 2 * g.ow).then_some(Halves {
            cin: g.cin,
            kh: g.kh,
            kw: g.kw,
            pt: g.pt,
            oh: g.oh,
            ow: g.ow,
        })
    }
}

#[inline(always)]
fn col2im_halves<T: Real, const FUSED: bool>(dcols: &[T], ld: usize, h: &Halves, dx: &mut [T]) {
    let (oh, ow) = (h.oh, h.ow);
    let (w, taps) = (2 * ow, h.kh * h.kw);
    assert!(dx.len() == h.cin * 2 * oh * w);
    assert!(dcols.len() >= (h.cin * taps - 1) * ld + (oh - 1) * ow + ow.next_multiple_of(COLS));
    for (i, out) in (0..h.cin * 2 * oh).map(|i| (i, i * w)) {
        let (ci, y) = (i / (2 * oh), i % (2 * oh));
        for c in (0..ow).step_by(COLS) {
            // The row's even and odd columns c.. (phases (y % 2, 0) and (y % 2, 1)).
            let mut sums = [[T::ZERO; COLS]; 2];
            for ky in 0..h.kh {
                // Tap row ky of output row oy reaches input row 2 oy + ky - pt.
                let twice = (y + h.pt).checked_sub(ky);
                let Some(oy) = twice.filter(|d| d % 2 == 0 && d / 2 < oh).map(|d| d / 2) else {
                    continue;
                };
                let from = (ci * taps + ky * h.kw) * ld + oy * ow + c;
                for kx in 0..h.kw {
                    let at = from + kx * ld;
                    let v = row(dcols, at);
                    let sum = &mut sums[kx % 2];
                    if kx < 2 {
                        add_row(sum, v);
                    } else {
                        let before = if c == 0 {
                            [T::ZERO; COLS]
                        } else {
                            *row(dcols, at - COLS)
                        };
                        add_row(sum, &shifted(&before, v));
                    }
                }
            }
            let at = out + 2 * c;
            match dx.get_mut(at..at + 2 * COLS) {
                Some(dst) => interleave(&sums[0], &sums[1], dst.try_into().expect("two vectors")),
                // The image's last vectors.
                None => {
                    let mut last = [T::ZERO; 2 * COLS];
                    interleave(&sums[0], &sums[1], &mut last);
                    let n = dx.len() - at;
                    dx[at..].copy_from_slice(&last[..n]);
                }
            }
        }
    }
}

/// acc += v, lane by lane.
#[inline(always)]
fn add_row<T: Real>(acc: &mut [T; COLS], v: &[T; COLS]) {
    for (a, &v) in acc.iter_mut().zip(v) {
        *a = *a + v;
    }
}

/// `v` one lane to the right, after the last lane of `before`.
#[inline(always)]
fn shifted<T: Real>(before: &[T; COLS], v: &[T; COLS]) -> [T; COLS] {
    let mut s = [before[COLS - 1]; COLS];
    s[1..].copy_from_slice(&v[..COLS - 1]);
    s
}

/// dst = a0 b0 a1 b1 ...
#[inline(always)]
fn interleave<T: Real>(a: &[T; COLS], b: &[T; COLS], dst: &mut [T; 2 * COLS]) {
    for (pair, (&a, &b)) in dst.chunks_exact_mut(2).zip(a.iter().zip(b)) {
        pair[0] = a;
        pair[1] = b;
    }
}

/// dcols[t, p] = sum over o < `outs` of w[o, t] grad[o, p], for the `plane` pixels p of each
/// gradient plane (`grad` may run on past the last), in rows of whole vectors: a row's lanes
/// past `plane` hold sums of the next plane's pixels, never read (each lane is a pixel of its
/// own, so nothing there reaches a pixel of the plane).
#[inline(always)]
fn tap_sums<T: Real, const FUSED: bool>(
    w: &[T],
    grad: &[T],
    outs: usize,
    plane: usize,
    dcols: &mut [T],
) {
    let k = w.len() / outs.max(1);
    let ld = plane.next_multiple_of(COLS);
    assert!(dcols.len() == k * ld && grad.len() >= outs * plane);
    for (first, n) in tap_blocks(k) {
        let rows = &mut dcols[first * ld..(first + n) * ld];
        let block = TapBlock {
            w,
            grad,
            outs,
            plane,
            first,
            k,
        };
        with_taps!(n, N => block.sums::<FUSED, N>(rows));
    }
}

/// Taps in blocks that share each load of the gradient, at most 8 and as even as can be
/// (D conv1's 9 taps: 5 and 4, not 8 and 1): (first tap, taps) of each.
fn tap_blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let size = k.div_ceil(k.div_ceil(8).max(1)).max(1);
    (0..k)
        .step_by(size)
        .map(move |first| (first, size.min(k - first)))
}

/// `$run` with the constant `$N` equal to `$n`, a block of [`tap_blocks`] (1 to 8 taps).
macro_rules! with_taps {
    ($n:expr, $N:ident => $run:expr) => {
        with_taps!(@ $n, $N, $run, 8 7 6 5 4 3 2)
    };
    (@ $n:expr, $N:ident, $run:expr, $($taps:literal)*) => {
        match $n {
            $($taps => { const $N: usize = $taps; $run })*
            _ => { const $N: usize = 1; $run }
        }
    };
}
use with_taps;

/// [`tap_sums`] for the taps from `first` on.
struct TapBlock<'a, T> {
    w: &'a [T],
    grad: &'a [T],
    outs: usize,
    plane: usize,
    first: usize,
    k: usize,
}

impl<T: Real> TapBlock<'_, T> {
    /// The `N` rows of taps `first..first + N` into `rows`.
    #[inline(always)]
    fn sums<const FUSED: bool, const N: usize>(&self, rows: &mut [T]) {
        let (ld, plane, grad) = (rows.len() / N, self.plane, self.grad);
        assert!(self.outs == 0 || self.w.len() >= (self.outs - 1) * self.k + self.first + N);
        for p in (0..ld).step_by(COLS) {
            let mut acc = [[T::ZERO; COLS]; N];
            // One check for the outputs whose vectors lie in `grad` (all but the last image's
            // last few), not one per read: the loop was a third checks.
            let whole = grad
                .len()
                .checked_sub(p + COLS)
                .map_or(0, |r| r / plane + 1);
            for o in 0..whole.min(self.outs) {
                // SAFETY: o * plane + p + COLS <= (whole - 1) * plane + p + COLS <= grad.len().
                let gv = unsafe { &*(grad.as_ptr().add(o * plane + p) as *const [T; COLS]) };
                self.madd::<FUSED, N>(&mut acc, o, gv);
            }
            for o in whole..self.outs {
                // The gradient's last pixels: zeros past them.
                let at = o * plane + p;
                let mut gv = [T::ZERO; COLS];
                gv[..grad.len() - at].copy_from_slice(&grad[at..]);
                self.madd::<FUSED, N>(&mut acc, o, &gv);
            }
            for (t, acc) in acc.iter().enumerate() {
                rows[t * ld + p..][..COLS].copy_from_slice(acc);
            }
        }
    }

    /// acc[t] += w[o, first + t] gv.
    #[inline(always)]
    fn madd<const FUSED: bool, const N: usize>(
        &self,
        acc: &mut [[T; COLS]; N],
        o: usize,
        gv: &[T; COLS],
    ) {
        // SAFETY: o < outs, and `sums` checked that w holds taps first..first + N of the last
        // output.
        let w = unsafe { &*(self.w.as_ptr().add(o * self.k + self.first) as *const [T; N]) };
        for (acc, &wt) in acc.iter_mut().zip(w) {
            madd_row::<T, FUSED>(acc, gv, &[wt; COLS]);
        }
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

/// [`weight_grad`] for a layer with [`few_weights`] (D conv1: 9 per output): per image, the
/// dot products of each output channel's gradient plane, read as stored, with each im2col row.
/// The GEMM path's packing and reorder of the gradient by image cost more than these products,
/// and the padded planes of [`weight_grad`] would re-pad the gradient (32 planes of 14 rows
/// per image for D conv1). Each product is summed in `COLS` lanes over a group's images, added
/// across lanes once per group.
fn few_weights_grad<T: Real>(x: &[T], gy: &[T], g: &Geometry) -> Vec<T> {
    let (k, ohw, image) = (g.k(), g.oh * g.ow, g.cin * g.h * g.w);
    let plan = Plan::new(g.cin, (g.kh, g.kw), (g.oh, g.ow), g.stride);
    let taps = plan.taps();
    // Rows of whole vectors, zeros past each row's pixels; room for the last row's spill.
    let ld = ohw.next_multiple_of(COLS);
    let per_group = g.batch.div_ceil(GROUPS).max(1);
    let partials: Vec<Vec<T>> = team::map_range(g.batch.div_ceil(per_group), 1, |group| {
        let (mut padded, mut cols) = (Vec::new(), vec![T::ZERO; k * ld + COLS]);
        let mut lanes = vec![[T::ZERO; COLS]; g.cout * k];
        for img in group * per_group..((group + 1) * per_group).min(g.batch) {
            let image = &x[img * image..][..image];
            let src = plan.padded(image, (g.h, g.w), (g.pt, g.pl), &mut padded);
            im2col_rows(src, &plan, &taps, &mut cols, ld);
            let grad = &gy[img * g.cout * ohw..][..g.cout * ohw];
            lane_dots_built(&cols[..k * ld], grad, ohw, &mut lanes);
        }
        lanes.into_iter().map(sum_lanes).collect()
    });
    let mut total = vec![T::ZERO; g.cout * k];
    for part in partials {
        total.iter_mut().zip(part).for_each(|(t, p)| *t = *t + p);
    }
    total
}

/// The im2col rows (one per tap, `ld` apart, then `COLS` values of slack) of the padded
/// planes `src`, by whole-vector copies of the planes' rows: a copy's spill past its row lands
/// on the next row's pixels, copied after it, or past the last pixel, zeroed after (or in the
/// slack). The GEMM path's gather, by output row segment, was 30% of D conv1's weight gradient.
fn im2col_rows<T: Real>(src: &[T], plan: &Plan, taps: &[usize], cols: &mut [T], ld: usize) {
    let ohw = plan.oh * plan.ow;
    assert!(ld >= ohw && cols.len() == taps.len() * ld + COLS);
    let (whole, tail) = (ohw / COLS * COLS, ohw % COLS);
    for (t, &tap) in taps.iter().enumerate() {
        for y in 0..plan.oh {
            for x0 in (0..plan.ow).step_by(COLS) {
                let to = t * ld + y * plan.ow + x0;
                cols[to..to + COLS].copy_from_slice(row(src, tap + y * plan.pitch + x0));
            }
        }
        cols[t * ld + ohw..(t + 1) * ld].fill(T::ZERO);
        if tail > 0 && ohw >= COLS {
            // The last vector holds the row's last COLS pixels, those the vector before holds
            // zeroed, so that it meets the gradient's last COLS pixels, a whole load inside
            // its plane (see `tap_block`).
            let mut last = *row(cols, t * ld + ohw - COLS);
            last[..COLS - tail].fill(T::ZERO);
            cols[t * ld + whole..][..COLS].copy_from_slice(&last);
        }
    }
}

/// lanes[o * k + t] += the lane-wise products of gradient plane `o` (`plane` pixels) with
/// row `t` of `cols` (`k` rows of whole vectors, zeros past `plane`).
#[inline(always)]
fn lane_dots<T: Real, const FUSED: bool>(
    cols: &[T],
    grad: &[T],
    plane: usize,
    lanes: &mut [[T; COLS]],
) {
    let ld = plane.next_multiple_of(COLS);
    let k = cols.len() / ld.max(1);
    for (grad, lanes) in grad
        .chunks_exact(plane.max(1))
        .zip(lanes.chunks_exact_mut(k))
    {
        for (first, n) in tap_blocks(k) {
            let lanes = &mut lanes[first..first + n];
            with_taps!(n, N => tap_block::<T, FUSED, N>(cols, ld, grad, first, lanes));
        }
    }
}

/// [`lane_dots`] of one gradient plane with the `N` rows of `cols` from `first` on.
#[inline(always)]
fn tap_block<T: Real, const FUSED: bool, const N: usize>(
    cols: &[T],
    ld: usize,
    grad: &[T],
    first: usize,
    lanes: &mut [[T; COLS]],
) {
    // One check for the block, not one per row read.
    let rows = &cols[first * ld..(first + N) * ld];
    assert!(ld.is_multiple_of(COLS));
    let mut acc = [[T::ZERO; COLS]; N];
    for p in (0..ld).step_by(COLS) {
        // Never the next plane's values, which could be infinite (and infinity times zero is
        // not zero): past the plane's last whole vector, its last COLS pixels, which
        // `im2col_rows` met with the row's last pixels (the pixels both vectors hold are
        // zero there: an infinite one there turns this channel's sums NaN, not infinite,
        // non-finite either way); in a plane under COLS pixels, its pixels then zeros.
        let gv = match grad.get(p..p + COLS) {
            Some(v) => *row(v, 0),
            None if grad.len() >= COLS => *row(grad, grad.len() - COLS),
            None => {
                let mut v = [T::ZERO; COLS];
                v[..grad.len() - p].copy_from_slice(&grad[p..]);
                v
            }
        };
        for (t, acc) in acc.iter_mut().enumerate() {
            // SAFETY: t < N and p + COLS <= ld (a multiple of COLS), so the read lies in `rows`.
            let x = unsafe { &*(rows.as_ptr().add(t * ld + p) as *const [T; COLS]) };
            madd_row::<T, FUSED>(acc, &gv, x);
        }
    }
    for (lane, acc) in lanes.iter_mut().zip(&acc) {
        lane.iter_mut().zip(acc).for_each(|(l, &a)| *l = *l + a);
    }
}

/// out[o, y, x] = sum over (c, ky, kx) of w[o, c, ky, kx] src[c, y*s + ky, x*s + kx], for every
/// output channel `o` of `w` (`out` holds one `oh x ow` plane per channel, each element of
/// which is written).
fn correlate<T: Real>(src: &[T], w: &[T], plan: &Plan, taps: &[usize], out: &mut [MaybeUninit<T>]) {
    // Every output written, as the callers' safety rests on: a plane per kernel.
    assert_eq!(
        w.len() / taps.len().max(1) * plan.oh * plan.ow,
        out.len(),
        "correlate covers its output"
    );
    correlate_built(src, w, plan, taps, out)
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

#[inline(always)]
fn correlate_tiles<T: Real, const FUSED: bool>(
    src: &[T],
    w: &[T],
    plan: &Plan,
    taps: &[usize],
    out: &mut [MaybeUninit<T>],
) {
    // Output channels in pairs: each tap's input rows, loaded once, feed both channels'
    // sums, and eight independent chains of FMAs hide their latency (D conv1, 32 channels).
    let plane = (plan.oh * plan.ow).max(1);
    let mut pairs = w.chunks_exact(PAIR * taps.len());
    let mut outs = out.chunks_exact_mut(PAIR * plane);
    for (w, out) in (&mut pairs).zip(&mut outs) {
        correlate_block::<T, FUSED, PAIR>(src, w, plan, taps, out);
    }
    let (w, out) = (pairs.remainder(), outs.into_remainder());
    for (w, out) in w.chunks_exact(taps.len()).zip(out.chunks_exact_mut(plane)) {
        correlate_block::<T, FUSED, 1>(src, w, plan, taps, out);
    }
}

/// Output channels summed together by [`correlate`].
const PAIR: usize = 2;

/// [`correlate`] for the `CH` output channels of `w`, into their `CH` planes of `out`.
#[inline(always)]
fn correlate_block<T: Real, const FUSED: bool, const CH: usize>(
    src: &[T],
    w: &[T],
    plan: &Plan,
    taps: &[usize],
    out: &mut [MaybeUninit<T>],
) {
    let block = Block::<T, CH> {
        src,
        w: std::array::from_fn(|c| &w[c * taps.len()..][..taps.len()]),
        taps,
        last: taps.iter().copied().max().unwrap_or(0),
        plan,
    };
    // Every store is a fixed-size copy of a whole tile row (a copy of a row's ragged length
    // compiles to a memcpy call per row: 18% of D conv1's forward pass). What a ragged tile's
    // row spills past its row's end lands on outputs of its plane stored later (the band's
    // whole tiles, which go after the ragged tile, and later rows), so only a spill past the
    // plane's end is cut.
    let whole = plan.ow / COLS * COLS;
    let ragged = (whole < plan.ow).then_some(whole);
    for y0 in (0..plan.oh).step_by(ROWS) {
        let rows = ROWS.min(plan.oh - y0);
        for x0 in ragged.into_iter().chain((0..whole).step_by(COLS)) {
            // A last band of at most half the rows (the last 2 of 14) sums only those.
            if rows > ROWS / 2 {
                block.tile::<FUSED, ROWS>(y0, x0, rows, out);
            } else {
                block.tile::<FUSED, { ROWS / 2 }>(y0, x0, rows, out);
            }
        }
    }
}

/// What [`correlate_block`]'s tiles read: the padded planes, the weights of each of the
/// block's output channels, where each tap reads and the furthest of those.
struct Block<'a, T, const CH: usize> {
    src: &'a [T],
    w: [&'a [T]; CH],
    taps: &'a [usize],
    last: usize,
    plan: &'a Plan,
}

impl<T: Real, const CH: usize> Block<'_, T, CH> {
    /// Sums and stores the first `rows` rows of the `R x COLS` tiles at (y0, x0) of the `CH`
    /// output planes in `out`.
    #[inline(always)]
    fn tile<const FUSED: bool, const R: usize>(
        &self,
        y0: usize,
        x0: usize,
        rows: usize,
        out: &mut [MaybeUninit<T>],
    ) {
        let (pitch, taps) = (self.plan.pitch, self.taps);
        let plane = self.plan.oh * self.plan.ow;
        let w = &self.w;
        // One check for the whole tile, not one per row read: half the loop's instructions
        // were bounds and overflow checks.
        let reach = self.last + (R - 1) * pitch + COLS;
        let src = &self.src[y0 * pitch + x0..][..reach];
        let mut acc = [[[T::ZERO; COLS]; R]; CH];
        for (t, &tap) in taps.iter().enumerate() {
            for r in 0..R {
                // SAFETY: tap + r * pitch + COLS <= reach = src.len().
                let x = unsafe { &*(src.as_ptr().add(tap + r * pitch) as *const [T; COLS]) };
                for (acc, w) in acc.iter_mut().zip(w) {
                    madd_row::<T, FUSED>(&mut acc[r], x, &[w[t]; COLS]);
                }
            }
        }
        for (acc, out) in acc.iter().zip(out.chunks_exact_mut(plane)) {
            for (r, acc) in acc.iter().enumerate().take(rows) {
                let at = (y0 + r) * self.plan.ow + x0;
                match out.get_mut(at..at + COLS) {
                    Some(dst) => write_copy(dst, acc),
                    None => write_first(&mut out[at..], acc),
                }
            }
        }
    }
}

/// dst[i] = row[i] for the first `dst.len()` (< `COLS`) values, by conditional stores: a copy
/// of that length would be a memcpy call, and LLVM merges the fixed-size copies of whole rows
/// beside it into that call (a memcpy call per 16 values stored).
#[inline(always)]
fn write_first<T: Real>(dst: &mut [MaybeUninit<T>], row: &[T; COLS]) {
    let n = dst.len();
    for (i, &v) in row.iter().enumerate() {
        if i < n {
            dst[i].write(v);
        }
    }
}

/// dw[o, c, ky, kx] += sum over (y, x) of grad[o, y, x] src[c, y*s + ky, x*s + kx]: per
/// output channel and tap, one contiguous dot product of the gradient plane with the input
/// from the tap's corner on (`grad` has the input planes' pitch and zeros past each row's
/// outputs).
fn correlate_weights<T: Real>(src: &[T], grad: &[T], plan: &Plan, taps: &[usize], dw: &mut [T]) {
    weight_dots_built(src, grad, plan, taps, dw)
}

/// Taps whose dot products share each load of the gradient.
const TAPS: usize = ROWS;

#[inline(always)]
fn weight_dots<T: Real, const FUSED: bool>(
    src: &[T],
    grad: &[T],
    plan: &Plan,
    taps: &[usize],
    dw: &mut [T],
) {
    let len = (plan.oh - 1) * plan.pitch + plan.ow;
    let planes = grad.chunks_exact(plan.oh * plan.pitch);
    for (grad, dw) in planes.zip(dw.chunks_exact_mut(taps.len())) {
        let grad = &grad[..len];
        let mut groups = taps.chunks_exact(TAPS);
        let mut dws = dw.chunks_exact_mut(TAPS);
        for (at, dw) in (&mut groups).zip(&mut dws) {
            let sums = dots::<T, FUSED>(grad, src, at.try_into().expect("TAPS taps"));
            for (d, s) in dw.iter_mut().zip(sums) {
                *d = *d + s;
            }
        }
        for (d, &at) in dws.into_remainder().iter_mut().zip(groups.remainder()) {
            *d = *d + T::dot(grad, &src[at..at + grad.len()]);
        }
    }
}

/// The dot products of `g` with `src` from each of `at` on, in `COLS` lanes per product.
#[inline(always)]
fn dots<T: Real, const FUSED: bool>(g: &[T], src: &[T], at: [usize; TAPS]) -> [T; TAPS] {
    let whole = g.len() / COLS * COLS;
    let mut acc = [[T::ZERO; COLS]; TAPS];
    for p in (0..whole).step_by(COLS) {
        let gv = row(g, p);
        for (acc, &a) in acc.iter_mut().zip(&at) {
            madd_row::<T, FUSED>(acc, gv, row(src, a + p));
        }
    }
    let mut sums = [T::ZERO; TAPS];
    for ((sum, acc), &a) in sums.iter_mut().zip(acc).zip(&at) {
        let tail = (whole..g.len()).fold(T::ZERO, |s, p| g[p] * src[a + p] + s);
        *sum = sum_lanes(acc) + tail;
    }
    sums
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

vectorised! {
    /// [`channel_sums`] built for this CPU.
    fn channel_sums_built<T> = channel_sums(
        x: &[T],
        w: &[T],
        channels: usize,
        plane: usize,
        out: &mut [MaybeUninit<T>],
    );
}

vectorised! {
    /// [`correlate_tiles`] built for this CPU.
    fn correlate_built<T> = correlate_tiles(
        src: &[T],
        w: &[T],
        plan: &Plan,
        taps: &[usize],
        out: &mut [MaybeUninit<T>],
    );
}

vectorised! {
    /// [`weight_dots`] built for this CPU.
    fn weight_dots_built<T> = weight_dots(
        src: &[T],
        grad: &[T],
        plan: &Plan,
        taps: &[usize],
        dw: &mut [T],
    );
}

vectorised! {
    /// [`lane_dots`] built for this CPU.
    fn lane_dots_built<T> = lane_dots(
        cols: &[T],
        grad: &[T],
        plane: usize,
        lanes: &mut [[T; COLS]],
    );
}

vectorised! {
    /// [`place_rows`] built for this CPU.
    fn place_built<T> = place_rows(
        plan: &Plan,
        src: &[T],
        size: (usize, usize),
        corner: (usize, usize),
        out: &mut [T],
    );
}

vectorised! {
    /// [`col2im_halves`] built for this CPU.
    fn col2im_halves_built<T> = col2im_halves(
        dcols: &[T],
        ld: usize,
        h: &Halves,
        dx: &mut [T],
    );
}

vectorised! {
    /// [`tap_sums`] built for this CPU.
    fn tap_sums_built<T> = tap_sums(
        w: &[T],
        grad: &[T],
        outs: usize,
        plane: usize,
        dcols: &mut [T],
    );
}
