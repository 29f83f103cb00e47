//! The weight gradient as dot products: per output channel and tap, the gradient plane with
//! the padded input from the tap's corner on.

use super::plan::Plan;
use super::{madd_row, row, sum_lanes, COLS, ROWS};
use crate::cpu::simd::vectorised;
use crate::cpu::Real;

/// dw[o, c, ky, kx] += sum over (y, x) of grad[o, y, x] src[c, y*s + ky, x*s + kx]: per
/// output channel and tap, one contiguous dot product of the gradient plane with the input
/// from the tap's corner on (`grad` has the input planes' pitch and zeros past each row's
/// outputs).
pub(super) fn correlate_weights<T: Real>(
    src: &[T],
    grad: &[T],
    plan: &Plan,
    taps: &[usize],
    dw: &mut [T],
) {
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
