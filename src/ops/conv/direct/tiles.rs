//! The register-tiled correlation: `ROWS x COLS` outputs (bands of 7 rows on 14x14 planes
//! with AVX-512) of two output channels at a time, summed from the padded planes (forward
//! passes, and stride-1 input gradients as the flipped kernel's correlation).

use super::plan::Plan;
use super::{madd_row, wide, COLS, ROWS};
use crate::cpu::simd::vectorised;
use crate::cpu::{write_copy, Real};
use std::mem::MaybeUninit;

/// out[o, y, x] = sum over (c, ky, kx) of w[o, c, ky, kx] src[c, y*s + ky, x*s + kx], for every
/// output channel `o` of `w` (`out` holds one `oh x ow` plane per channel, each element of
/// which is written).
pub(super) fn correlate<T: Real>(
    src: &[T],
    w: &[T],
    plan: &Plan,
    taps: &[usize],
    out: &mut [MaybeUninit<T>],
) {
    // Every output written, as the callers' safety rests on: a plane per kernel.
    assert_eq!(
        w.len() / taps.len().max(1) * plan.oh * plan.ow,
        out.len(),
        "correlate covers its output"
    );
    correlate_built(src, w, plan, taps, out)
}

#[inline(always)]
fn correlate_tiles<T: Real, const FUSED: bool, const WIDE: bool>(
    src: &[T],
    w: &[T],
    plan: &Plan,
    taps: &[usize],
    out: &mut [MaybeUninit<T>],
) {
    if (plan.oh, plan.ow) != (FIXED, FIXED) {
        correlate_planes::<T, FUSED, 0, ROWS>(src, w, plan, taps, out)
    } else if wide::<T>(WIDE) {
        correlate_planes::<T, FUSED, FIXED, { FIXED / 2 }>(src, w, plan, taps, out)
    } else {
        correlate_planes::<T, FUSED, FIXED, ROWS>(src, w, plan, taps, out)
    }
}

/// Output planes of `FIXED x FIXED` (a 28x28 image's stride-2 layer: D conv1, the critic's
/// conv1) are tiled with their size known to the compiler: which rows of which band fit
/// whole in their plane is then decided at compile time, not per row, and the sums stay in
/// registers through the tap loop. D conv1's forward pass took a quarter less CPU time with
/// AVX-512, a third less in the AVX2 and baseline builds; planes of 28x28 fixed so made G
/// conv3's input gradient twice as slow, so only this size is. With AVX-512's 32 registers
/// the bands are half a plane, 7 rows (14 sums of 16 values for a pair of channels): no
/// band of 2 rows, half the tiles, each tap's loads and broadcasts shared by 14 FMAs, not 8
/// (8% less CPU time; AVX2's 16 registers keep bands of `ROWS`).
const FIXED: usize = 14;

/// [`correlate`], into planes of `SIZE x SIZE` (0: the plan's size) by bands of `BAND` rows
/// (`ROWS`, or a divisor of `SIZE`, so that the plan's padded rows cover every band).
#[inline(always)]
fn correlate_planes<T: Real, const FUSED: bool, const SIZE: usize, const BAND: usize>(
    src: &[T],
    w: &[T],
    plan: &Plan,
    taps: &[usize],
    out: &mut [MaybeUninit<T>],
) {
    // Output channels in pairs: each tap's input rows, loaded once, feed both channels'
    // sums, and eight (or 14) independent chains of FMAs hide their latency (D conv1, 32
    // channels).
    const { assert!(BAND == ROWS || SIZE > 0 && SIZE.is_multiple_of(BAND)) };
    let plane = (plan.oh * plan.ow).max(1);
    let mut pairs = w.chunks_exact(PAIR * taps.len());
    let mut outs = out.chunks_exact_mut(PAIR * plane);
    for (w, out) in (&mut pairs).zip(&mut outs) {
        correlate_block::<T, FUSED, PAIR, SIZE, BAND>(src, w, plan, taps, out);
    }
    let (w, out) = (pairs.remainder(), outs.into_remainder());
    for (w, out) in w.chunks_exact(taps.len()).zip(out.chunks_exact_mut(plane)) {
        correlate_block::<T, FUSED, 1, SIZE, BAND>(src, w, plan, taps, out);
    }
}

/// Output channels summed together by [`correlate`].
const PAIR: usize = 2;

/// [`correlate`] for the `CH` output channels of `w`, into their `CH` planes of `out` (of
/// `SIZE x SIZE`; 0: the plan's size), by bands of `BAND` rows.
#[inline(always)]
fn correlate_block<
    T: Real,
    const FUSED: bool,
    const CH: usize,
    const SIZE: usize,
    const BAND: usize,
>(
    src: &[T],
    w: &[T],
    plan: &Plan,
    taps: &[usize],
    out: &mut [MaybeUninit<T>],
) {
    let block = Block::<T, CH, SIZE> {
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
    let (oh, ow) = block.size();
    let whole = ow / COLS * COLS;
    let ragged = (whole < ow).then_some(whole);
    for y0 in (0..oh).step_by(BAND) {
        let rows = BAND.min(oh - y0);
        for x0 in ragged.into_iter().chain((0..whole).step_by(COLS)) {
            // A last band of at most half the rows (bands of 4 on 14 rows: the last 2) sums
            // only those.
            if rows > ROWS / 2 {
                block.tile::<FUSED, BAND>(y0, x0, rows, out);
            } else {
                block.tile::<FUSED, { ROWS / 2 }>(y0, x0, rows, out);
            }
        }
    }
}

/// What [`correlate_block`]'s tiles read: the padded planes, the weights of each of the
/// block's output channels, where each tap reads and the furthest of those.
struct Block<'a, T, const CH: usize, const SIZE: usize> {
    src: &'a [T],
    w: [&'a [T]; CH],
    taps: &'a [usize],
    last: usize,
    plan: &'a Plan,
}

impl<T: Real, const CH: usize, const SIZE: usize> Block<'_, T, CH, SIZE> {
    /// The output planes' rows and columns.
    #[inline(always)]
    fn size(&self) -> (usize, usize) {
        match SIZE {
            0 => (self.plan.oh, self.plan.ow),
            _ => (SIZE, SIZE),
        }
    }

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
        let (oh, ow) = self.size();
        let plane = oh * ow;
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
                let at = (y0 + r) * ow + x0;
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

vectorised! {
    /// [`correlate_tiles`] built for this CPU.
    fn correlate_built<T> = correlate_tiles::<WIDE>(
        src: &[T],
        w: &[T],
        plan: &Plan,
        taps: &[usize],
        out: &mut [MaybeUninit<T>],
    );
}
