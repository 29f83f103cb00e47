//! Layers with at most `FEW_WEIGHTS` weights per output (D conv1: 9; the WGAN critic's conv1;
//! fromRGB's weight gradient). Their im2col matrices are small, but on the GEMM path the
//! packing and the reorder of the output gradient by image cost as much as the products:
//! here the weight gradient is lane-wise dot products with im2col rows, and a strided layer's
//! input gradient sums of the gradient planes per tap, then col2im.

use super::super::cpu::col2im_image;
use super::super::Geometry;
use super::plan::Plan;
use super::{madd_row, row, sum_lanes, wide, COLS, GROUPS};
use crate::cpu::simd::vectorised;
use crate::cpu::{team, Real};

/// dx of a strided layer with [`few_weights`](super::few_weights) (D conv1: 9 per output):
/// per image, the column gradient dcols[t, p] = sum over co of w[co, t] gy[co, p], each tap's
/// row summed in vectors of pixels straight from the gradient planes as stored, then col2im
/// ([`col2im_halves`] where [`halves`] allows). The GEMM path spends as much on packing and
/// on the reorder of the gradient by image as on this product.
pub(in crate::ops::conv) fn few_weights_input_grad<T: Real>(
    gy: &[T],
    w: &[T],
    g: &Geometry,
) -> Vec<T> {
    let (k, ohw, image) = (g.k(), g.oh * g.ow, g.cin * g.h * g.w);
    let ld = ohw.next_multiple_of(COLS);
    let halves = halves(g);
    team::build_with(
        g.batch * image,
        image,
        // The column gradient, with a vector to spare for the row reads of `col2im_halves`.
        || vec![T::ZERO; k * ld + COLS],
        |dcols, img, dx| {
            let grad = &gy[img * g.cout * ohw..];
            tap_sums_built(w, grad, g.cout, ohw, &mut dcols[..k * ld]);
            if halves {
                col2im_halves_built(dcols, ld, g, dx);
            } else {
                col2im_image(dcols, g, dx, ld);
            }
        },
    )
}

/// Whether col2im goes by whole vectors ([`col2im_halves`]): a stride-2 layer whose input is
/// exactly twice its output each way, with kernels at most 4 wide and no padding on the left
/// (D conv1 and the WGAN critic's conv1: 28 -> 14, k3). The input pixels of each parity
/// (py, px) form an oh x ow phase plane, and tap (ky, kx) reaches phase ((ky - pt) mod 2,
/// kx mod 2), shifted down by (ky - pt) div 2 rows and right by kx div 2 (0 or 1) columns.
/// So each vector of an input row's even and odd columns is a sum of vectors of the taps'
/// column-gradient rows, some shifted right a lane, summed in registers and interleaved: no
/// index per pixel (the scalar col2im was a third of the pass).
///
/// A row's vectors run past its last pixel, into the next row's: those lanes only reach
/// columns at or past `ow` (the shifts are never to the left), which the interleave writes
/// past the input row's end, onto pixels written after it.
fn halves(g: &Geometry) -> bool {
    let applies = g.stride == 2 && g.up == 1 && g.pl == 0 && g.kw <= 4;
    applies && g.h == 2 * g.oh && g.w == 2 * g.ow
}

#[inline(always)]
fn col2im_halves<T: Real, const FUSED: bool>(dcols: &[T], ld: usize, h: &Geometry, dx: &mut [T]) {
    debug_assert!(halves(h));
    let (oh, ow) = (h.oh, h.ow);
    let (w, taps) = (2 * ow, h.kh * h.kw);
    assert!(dx.len() == h.cin * 2 * oh * w);
    assert!(dcols.len() >= (h.cin * taps - 1) * ld + (oh - 1) * ow + ow.next_multiple_of(COLS));
    for (i, out) in (0..h.cin * 2 * oh).map(|i| (i, i * w)) {
        let (ci, y) = (i / (2 * oh), i % (2 * oh));
        for c in (0..ow).step_by(COLS) {
            // The row's even and odd columns c.. (phases (y % 2, 0) and (y % 2, 1)).
            let (mut even, mut odd) = ([T::ZERO; COLS], [T::ZERO; COLS]);
            for ky in 0..h.kh {
                // Tap row ky of output row oy reaches input row 2 oy + ky - pt.
                let twice = (y + h.pt).checked_sub(ky);
                let Some(oy) = twice.filter(|d| d % 2 == 0 && d / 2 < oh).map(|d| d / 2) else {
                    continue;
                };
                // Taps kx = 0, 1, 2, 3 written out, so that the sums stay in registers (indexed
                // by kx % 2 they went through the stack).
                let from = (ci * taps + ky * h.kw) * ld + oy * ow + c;
                add_row(&mut even, row(dcols, from));
                if h.kw > 1 {
                    add_row(&mut odd, row(dcols, from + ld));
                }
                if h.kw > 2 {
                    add_row(&mut even, &shifted_tap(dcols, from + 2 * ld, c));
                }
                if h.kw > 3 {
                    add_row(&mut odd, &shifted_tap(dcols, from + 3 * ld, c));
                }
            }
            let at = out + 2 * c;
            match dx.get_mut(at..at + 2 * COLS) {
                Some(dst) => interleave(&even, &odd, dst.try_into().expect("two vectors")),
                // The image's last vectors.
                None => {
                    let mut last = [T::ZERO; 2 * COLS];
                    interleave(&even, &odd, &mut last);
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

/// The vector of `dcols` at `at`, column `c` of its row, one lane to the right: its first lane
/// the row's column c - 1, or zero.
#[inline(always)]
fn shifted_tap<T: Real>(dcols: &[T], at: usize, c: usize) -> [T; COLS] {
    let before = if c == 0 {
        [T::ZERO; COLS]
    } else {
        *row(dcols, at - COLS)
    };
    shifted(&before, row(dcols, at))
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
fn tap_sums<T: Real, const FUSED: bool, const WIDE: bool>(
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
        if wide::<T>(WIDE) {
            with_taps!(n, N => block.sums::<FUSED, N, WIDE_VECTORS>(rows));
        } else {
            with_taps!(n, N => block.sums::<FUSED, N, 1>(rows));
        }
    }
}

/// Taps in blocks that share each load of the gradient, at most [`MAX_BLOCK`] and as even as
/// can be (D conv1's 9 taps: 5 and 4, not 6 and 3): (first tap, taps) of each.
fn tap_blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let size = k.div_ceil(k.div_ceil(MAX_BLOCK).max(1)).max(1);
    (0..k)
        .step_by(size)
        .map(move |first| (first, size.min(k - first)))
}

/// Taps per block. With 8, LLVM vectorised the loop over the gradient planes (or im2col rows)
/// across planes, by gathers: layers with 8 or 16 weights per output took 8-10x as long as
/// D conv1's 9 (1 -> 32 channels, k4 s2 at batch 64: input gradient 1.28 ms, weight gradient
/// 1.75, against 0.16 and 0.16 with blocks of at most 6; k3's 0.07 and 0.10).
const MAX_BLOCK: usize = 6;

/// `$run` with the constant `$N` equal to `$n`, a block of [`tap_blocks`] (1 to
/// [`MAX_BLOCK`] taps).
macro_rules! with_taps {
    ($n:expr, $N:ident => $run:expr) => {
        with_taps!(@ $n, $N, $run, 6 5 4 3 2)
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

/// Vectors of pixels whose sums share each load of a weight, with AVX-512's 32 registers (up
/// to 12 sums of 16 values): 12 independent chains of multiply-adds, not 6, so the loop is no
/// longer bound by their latency. CPU time: D conv1's input gradient 4% less, the critic's
/// conv1 12%, 1 -> 32 k4 s2 17%.
const WIDE_VECTORS: usize = 2;

impl<T: Real> TapBlock<'_, T> {
    /// The `N` rows of taps `first..first + N` into `rows`, `P` vectors of pixels at a time.
    #[inline(always)]
    fn sums<const FUSED: bool, const N: usize, const P: usize>(&self, rows: &mut [T]) {
        let ld = rows.len() / N;
        let mut p = 0;
        while p + P * COLS <= ld {
            self.sums_at::<FUSED, N, P>(rows, p);
            p += P * COLS;
        }
        while p < ld {
            self.sums_at::<FUSED, N, 1>(rows, p);
            p += COLS;
        }
    }

    /// The `P` vectors of the `N` rows from pixel `p` on.
    #[inline(always)]
    fn sums_at<const FUSED: bool, const N: usize, const P: usize>(&self, rows: &mut [T], p: usize) {
        let (ld, plane, grad) = (rows.len() / N, self.plane, self.grad);
        // What `madd`'s reads of the weights rest on.
        assert!(self.outs == 0 || self.w.len() >= (self.outs - 1) * self.k + self.first + N);
        let mut acc = [[[T::ZERO; COLS]; N]; P];
        // One check for the outputs whose vectors lie in `grad` (all but the last image's
        // last few), not one per read: the loop was a third checks.
        let whole = grad
            .len()
            .checked_sub(p + P * COLS)
            .map_or(0, |r| r / plane + 1);
        for o in 0..whole.min(self.outs) {
            // SAFETY: o * plane + p + P * COLS <= (whole - 1) * plane + p + P * COLS <=
            // grad.len(), and `[[T; COLS]; P]` is `P * COLS` values in a row.
            let gv = unsafe { &*(grad.as_ptr().add(o * plane + p) as *const [[T; COLS]; P]) };
            self.madd::<FUSED, N, P>(&mut acc, o, gv);
        }
        for o in whole..self.outs {
            // The gradient's last pixels: zeros past them.
            let at = o * plane + p;
            let mut gv = [[T::ZERO; COLS]; P];
            for (v, gv) in gv.iter_mut().enumerate() {
                let from = grad.len().min(at + v * COLS);
                let n = (grad.len() - from).min(COLS);
                gv[..n].copy_from_slice(&grad[from..from + n]);
            }
            self.madd::<FUSED, N, P>(&mut acc, o, &gv);
        }
        for (v, acc) in acc.iter().enumerate() {
            for (t, acc) in acc.iter().enumerate() {
                rows[t * ld + p + v * COLS..][..COLS].copy_from_slice(acc);
            }
        }
    }

    /// acc[v][t] += w[o, first + t] gv[v].
    #[inline(always)]
    fn madd<const FUSED: bool, const N: usize, const P: usize>(
        &self,
        acc: &mut [[[T; COLS]; N]; P],
        o: usize,
        gv: &[[T; COLS]; P],
    ) {
        // SAFETY: o < outs, and `sums_at` checked that w holds taps first..first + N of the
        // last output.
        let w = unsafe { &*(self.w.as_ptr().add(o * self.k + self.first) as *const [T; N]) };
        for (t, &wt) in w.iter().enumerate() {
            let wt = [wt; COLS];
            for (acc, gv) in acc.iter_mut().zip(gv) {
                madd_row::<T, FUSED>(&mut acc[t], gv, &wt);
            }
        }
    }
}

/// The weight gradient of a layer with [`few_weights`](super::few_weights) (D conv1: 9 per
/// output): per image, the dot products of each output channel's gradient plane, read as
/// stored, with each im2col row. The GEMM path's packing and reorder of the gradient by image
/// cost more than these products, and the padded planes of
/// [`weight_grad`](super::weight_grad) would re-pad the gradient (32 planes of 14 rows per
/// image for D conv1). Each product is summed in `COLS` lanes over a group's images, added
/// across lanes once per group.
pub(super) fn few_weights_grad<T: Real>(x: &[T], gy: &[T], g: &Geometry) -> Vec<T> {
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
            // its plane (see `plane_vector`).
            let mut last = *row(cols, t * ld + ohw - COLS);
            last[..COLS - tail].fill(T::ZERO);
            cols[t * ld + whole..][..COLS].copy_from_slice(&last);
        }
    }
}

/// lanes[o * k + t] += the lane-wise products of gradient plane `o` (`plane` pixels) with
/// row `t` of `cols` (`k` rows of whole vectors, zeros past `plane`).
#[inline(always)]
fn lane_dots<T: Real, const FUSED: bool, const WIDE: bool>(
    cols: &[T],
    grad: &[T],
    plane: usize,
    lanes: &mut [[T; COLS]],
) {
    if wide::<T>(WIDE) {
        planes_dots::<T, FUSED, WIDE_PLANES>(cols, grad, plane, lanes);
    } else {
        planes_dots::<T, FUSED, 1>(cols, grad, plane, lanes);
    }
}

/// Gradient planes whose dot products share each load of an im2col row, with AVX-512's 32
/// registers (up to 24 sums of 16 values): the loop is then bound by its multiply-adds, not
/// by its loads (one per multiply-add, plane by plane). D conv1's weight gradient: 10% less
/// CPU time, 15% less time with two threads.
const WIDE_PLANES: usize = 4;

/// [`lane_dots`], `M` gradient planes at a time.
#[inline(always)]
fn planes_dots<T: Real, const FUSED: bool, const M: usize>(
    cols: &[T],
    grad: &[T],
    plane: usize,
    lanes: &mut [[T; COLS]],
) {
    let ld = plane.next_multiple_of(COLS);
    let k = cols.len() / ld.max(1);
    let mut grads = grad.chunks_exact((M * plane).max(1));
    let mut blocks = lanes.chunks_exact_mut(M * k);
    for (grad, lanes) in (&mut grads).zip(&mut blocks) {
        block_dots::<T, FUSED, M>(cols, ld, grad, lanes);
    }
    let (grad, lanes) = (grads.remainder(), blocks.into_remainder());
    for (grad, lanes) in grad
        .chunks_exact(plane.max(1))
        .zip(lanes.chunks_exact_mut(k))
    {
        block_dots::<T, FUSED, 1>(cols, ld, grad, lanes);
    }
}

/// [`lane_dots`] of the `M` gradient planes of `grad` with every row of `cols`, by blocks of
/// taps.
#[inline(always)]
fn block_dots<T: Real, const FUSED: bool, const M: usize>(
    cols: &[T],
    ld: usize,
    grad: &[T],
    lanes: &mut [[T; COLS]],
) {
    for (first, n) in tap_blocks(lanes.len() / M) {
        with_taps!(n, N => tap_block::<T, FUSED, N, M>(cols, ld, grad, first, lanes));
    }
}

/// [`lane_dots`] of the `M` gradient planes of `grad` with the `N` rows of `cols` from `first`
/// on, into the `M` planes' `k` lanes each (`lanes`).
#[inline(always)]
fn tap_block<T: Real, const FUSED: bool, const N: usize, const M: usize>(
    cols: &[T],
    ld: usize,
    grad: &[T],
    first: usize,
    lanes: &mut [[T; COLS]],
) {
    // One check for the block, not one per row read.
    let rows = &cols[first * ld..(first + N) * ld];
    assert!(ld.is_multiple_of(COLS) && grad.len().is_multiple_of(M));
    let (plane, k) = (grad.len() / M, lanes.len() / M);
    let mut acc = [[[T::ZERO; COLS]; N]; M];
    for p in (0..ld).step_by(COLS) {
        // Filled by a loop: `std::array::from_fn` here was compiled, after an unrelated
        // change, to a call per vector and a copy through the stack (4x slower).
        let mut gv = [[T::ZERO; COLS]; M];
        for (m, gv) in gv.iter_mut().enumerate() {
            *gv = plane_vector(&grad[m * plane..][..plane], p);
        }
        for t in 0..N {
            // SAFETY: t < N and p + COLS <= ld (a multiple of COLS), so the read lies in `rows`.
            let x = unsafe { &*(rows.as_ptr().add(t * ld + p) as *const [T; COLS]) };
            for (acc, gv) in acc.iter_mut().zip(&gv) {
                madd_row::<T, FUSED>(&mut acc[t], gv, x);
            }
        }
    }
    for (lanes, acc) in lanes.chunks_exact_mut(k).zip(&acc) {
        for (lane, acc) in lanes[first..first + N].iter_mut().zip(acc) {
            lane.iter_mut().zip(acc).for_each(|(l, &a)| *l = *l + a);
        }
    }
}

/// The vector of gradient plane `grad` at pixel `p`, to meet the im2col rows' vector there.
/// Never the next plane's values, which could be infinite (and infinity times zero is not
/// zero): past the plane's last whole vector, its last COLS pixels, which `im2col_rows` met
/// with the row's last pixels (the pixels both vectors hold are zero there: an infinite one
/// there turns this channel's sums NaN, not infinite, non-finite either way); in a plane under
/// COLS pixels, its pixels then zeros.
#[inline(always)]
fn plane_vector<T: Real>(grad: &[T], p: usize) -> [T; COLS] {
    match grad.get(p..p + COLS) {
        Some(v) => *row(v, 0),
        None if grad.len() >= COLS => *row(grad, grad.len() - COLS),
        None => {
            let mut v = [T::ZERO; COLS];
            v[..grad.len() - p].copy_from_slice(&grad[p..]);
            v
        }
    }
}

vectorised! {
    /// [`col2im_halves`] built for this CPU.
    fn col2im_halves_built<T> = col2im_halves(
        dcols: &[T],
        ld: usize,
        h: &Geometry,
        dx: &mut [T],
    );
}

vectorised! {
    /// [`tap_sums`] built for this CPU.
    fn tap_sums_built<T> = tap_sums::<WIDE>(
        w: &[T],
        grad: &[T],
        outs: usize,
        plane: usize,
        dcols: &mut [T],
    );
}

vectorised! {
    /// [`lane_dots`] built for this CPU.
    fn lane_dots_built<T> = lane_dots::<WIDE>(
        cols: &[T],
        grad: &[T],
        plane: usize,
        lanes: &mut [[T; COLS]],
    );
}
