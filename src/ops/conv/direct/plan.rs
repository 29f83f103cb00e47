//! Zero-padded copies of input planes, stored by stride phases, which the direct kernels read
//! by whole vectors without bounds checks.

use super::{COLS, ROWS};
use crate::cpu::simd::vectorised;
use crate::cpu::Real;

/// A correlation's sizes: `channels` zero-padded input planes read with the stride by a
/// `kh x kw` kernel into `oh x ow` outputs per output channel.
///
/// Each padded plane is stored as `stride x stride` phase planes of `rows x pitch`: padded
/// pixel (Y, X) goes to phase (Y % s, X % s) at (Y / s, X / s). Tap (ky, kx) of output
/// (y, x) reads padded pixel (y s + ky, x s + kx), that is phase (ky % s, kx % s) at
/// (y + ky / s, x + kx / s): every tap is a contiguous stride-1 read, whatever the stride.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) channels: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) stride: usize,
    pub(super) rows: usize,
    pub(super) pitch: usize,
}

impl Plan {
    pub(super) fn new(
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

    /// The plan with every row starting on a whole vector of `COLS` values, as the padded
    /// planes start on a cache line: a tile's row reads then split a line only at the taps
    /// that shift them (kx / s > 0), not at every tap. For the tiles: on D conv1's planes, at
    /// a pitch of 17, every AVX-512 load split a line, and aligned rows took 13% off the
    /// forward pass's CPU time (28x28 planes measured the same either way). The weight
    /// gradient's dot products run over the padding between rows, and keep it narrow.
    pub(super) fn aligned(self) -> Plan {
        Plan {
            pitch: self.pitch.next_multiple_of(COLS),
            ..self
        }
    }

    fn phase(&self) -> usize {
        self.rows * self.pitch
    }

    fn plane(&self) -> usize {
        self.stride * self.stride * self.phase()
    }

    /// Where each tap (c, ky, kx) of output (0, 0) reads, in weight order.
    pub(super) fn taps(&self) -> Vec<usize> {
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
    pub(super) fn padded<'a, T: Real>(
        &self,
        src: &'a [T],
        size: (usize, usize),
        corner: (usize, usize),
        scratch: &'a mut Vec<T>,
    ) -> &'a [T] {
        if self.stride == 1 && corner == (0, 0) && size == (self.rows, self.pitch) {
            return &src[..self.channels * self.plane()];
        }
        self.pad(src, size, corner, scratch)
    }

    /// Copies `channels` planes of `h x w` from `src` to (top, left) of zeroed padded planes
    /// (what falls outside them is never read, and is cut), which start on a cache line of
    /// `scratch`. A scratch serves one plan and placement: zeroed when first sized, it is then
    /// only written where the pixels go (and zeros after them, see [`copy_row`]), so its
    /// padding stays zero for the next image.
    fn pad<'a, T: Real>(
        &self,
        src: &[T],
        size: (usize, usize),
        corner: (usize, usize),
        scratch: &'a mut Vec<T>,
    ) -> &'a [T] {
        let len = self.channels * self.plane();
        let slack = LINE / size_of::<T>();
        if scratch.len() != len + slack {
            scratch.clear();
            scratch.resize(len + slack, T::ZERO);
        }
        // The same start for every image, or the last image's pixels would sit in this one's
        // padding: the buffer only moves when resized, and a resize zeroes it all.
        let start = scratch.as_ptr().align_offset(LINE).min(slack);
        let out = &mut scratch[start..][..len];
        place_built(self, src, size, corner, out);
        out
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

/// Bytes in a cache line, where [`Plan::pad`] starts the planes.
const LINE: usize = 64;

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
