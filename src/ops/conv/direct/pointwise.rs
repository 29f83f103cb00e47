//! Pointwise (1x1, stride 1) layers with few outputs or one input plane: each output plane a
//! sum of scaled input planes, from one in-order read of the image.

use super::super::Geometry;
use super::THIN;
use crate::cpu::simd::vectorised;
use crate::cpu::{write_copy, Real};
use std::mem::MaybeUninit;

/// Whether a layer is pointwise: 1x1, stride 1, unpadded (ProGAN's toRGB and fromRGB).
pub(super) fn pointwise(g: &Geometry) -> bool {
    (g.kh, g.kw, g.stride, g.pt, g.pl) == (1, 1, 1, 0, 0) && (g.oh, g.ow) == (g.h, g.w)
}

/// Whether [`sum_channels`] takes a pointwise product of `channels` input planes into `outs`
/// output planes: a few outputs, summed from one in-order read of the image rather than the
/// tiles' one stream per channel plane (64 planes 4 KiB apart at once: toRGB at batch 64, 0.40
/// to 0.31 ms, whose 16 MB read alone takes 0.29 ms here), or one input plane, which each
/// output plane scales (fromRGB's forward pass, toRGB's input gradient: the tiles, one
/// multiply-add per row, measured 0.36 ms, here 0.30).
pub(super) fn sums_channels(channels: usize, outs: usize) -> bool {
    outs <= THIN || channels == 1
}

/// Pixels per block of [`sum_channels`]: the block's sums for every output stay in L1.
const BLOCK: usize = 256;

/// out[o, p] = sum over c of w[o, c] x[c, p] for `plane` pixels per channel, as
/// [`sums_channels`] allows (every element of `out` is written).
pub(super) fn sum_channels<T: Real>(
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
