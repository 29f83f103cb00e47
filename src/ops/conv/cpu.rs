//! The convolution's CPU kernels, one function per pass: a dense layer as one GEMM, thin
//! layers by the direct kernels (`direct/`), upsampling convolutions by phases
//! (`upsampled.rs`), and the rest as the blocked GEMM over im2col rows (gathered while the GEMM
//! packs them in the forward pass) with col2im for strided input gradients.
//!
//! Image by image (in parallel): the im2col matrix of one image (K x OH*OW) stays in cache,
//! and each image's GEMM writes straight into its NCHW output, so no large buffer is built or
//! transposed.

use super::{cpu_direct, direct, upsampled, Geometry};
use crate::cpu::gemm::{GatherRows, Gemm, MatRef};
use crate::cpu::{team, write_copy, Real};
use std::mem::MaybeUninit;

/// Output columns `ox` whose input column `ox * stride + k - pad` lies inside 0..size.
fn valid_range(
    g: &Geometry,
    k: usize,
    pad: usize,
    size: usize,
    out: usize,
) -> std::ops::Range<usize> {
    // ox * s + k >= pad  and  ox * s + k - pad < size
    let lo = pad.saturating_sub(k).div_ceil(g.stride).min(out);
    let hi = (size + pad)
        .saturating_sub(k)
        .div_ceil(g.stride)
        .clamp(lo, out);
    lo..hi
}

/// cols[(ci, ky, kx), (oy, ox)] of one image (zero where the kernel overlaps the padding),
/// each row `ld` values after the last: the image's columns of a block of images.
fn im2col_image<T: Real>(x: &[T], g: &Geometry, cols: &mut [T], ld: usize) {
    let ohw = g.oh * g.ow;
    for (row, dst) in cols.chunks_mut(ld).take(g.k()).enumerate() {
        Im2col { x, g }.gather(row, 0, &mut dst[..ohw]);
    }
}

/// The im2col matrix of consecutive images (K x images*OH*OW): stored by `im2col_image`, or
/// never stored, the GEMM gathering each row from the images as it packs B.
struct Im2col<'a, T> {
    x: &'a [T],
    g: &'a Geometry,
}

impl<T: Real> GatherRows<T> for Im2col<'_, T> {
    fn gather(&self, row: usize, j0: usize, out: &mut [T]) {
        let g = self.g;
        let (ohw, plane) = (g.oh * g.ow, g.h * g.w);
        let (ci, ky, kx) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
        // Output columns whose input column lies inside the image, the same on every row.
        let xs = valid_range(g, kx, g.pl, g.w, g.ow);
        // Zero once, then copy the parts inside the image: cheaper than a fill per segment.
        out.fill(T::ZERO);
        let (mut img, mut oy, mut ox) = (j0 / ohw, j0 % ohw / g.ow, j0 % g.ow);
        let mut at = 0;
        while at < out.len() {
            let len = (g.ow - ox).min(out.len() - at);
            let (lo, hi) = (xs.start.max(ox), xs.end.min(ox + len));
            if let (Some(iy), true) = (g.source(oy, ky, g.pt, g.h), lo < hi) {
                let src = &self.x[(img * g.cin + ci) * plane + iy * g.w..][..g.w];
                let first = lo * g.stride + kx - g.pl;
                let dst = &mut out[at + lo - ox..at + hi - ox];
                // Every `stride`-th input pixel: chunks of a constant 2 vectorise as a
                // de-interleave, where an index stepping by a runtime stride does not.
                match g.stride {
                    1 => dst.copy_from_slice(&src[first..first + dst.len()]),
                    2 => dst
                        .iter_mut()
                        .zip(src[first..].chunks(2))
                        .for_each(|(o, pair)| *o = pair[0]),
                    s => dst
                        .iter_mut()
                        .zip(src[first..].chunks(s))
                        .for_each(|(o, run)| *o = run[0]),
                }
            }
            at += len;
            ox = 0;
            oy += 1;
            if oy == g.oh {
                (img, oy) = (img + 1, 0);
            }
        }
    }
}

/// Adjoint of `im2col_image`: adds every column entry into the pixel it came from.
pub(super) fn col2im_image<T: Real>(cols: &[T], g: &Geometry, x: &mut [T], ld: usize) {
    let ohw = g.oh * g.ow;
    x.fill(T::ZERO);
    for (row, src) in cols.chunks(ld).take(g.k()).enumerate() {
        let (ci, ky, kx) = (row / (g.kh * g.kw), row / g.kw % g.kh, row % g.kw);
        let plane = &mut x[ci * g.h * g.w..][..g.h * g.w];
        let xs = valid_range(g, kx, g.pl, g.w, g.ow);
        for oy in 0..g.oh {
            let Some(iy) = g.source(oy, ky, g.pt, g.h).filter(|_| !xs.is_empty()) else {
                continue;
            };
            let dst = &mut plane[iy * g.w..][..g.w];
            let first = xs.start * g.stride + kx - g.pl;
            for (o, i) in src[..ohw][oy * g.ow..][xs.clone()]
                .iter()
                .zip((first..).step_by(g.stride))
            {
                dst[i] = dst[i] + *o;
            }
        }
    }
}

/// Images per GEMM on the CPU: enough that the GEMM has at least 256 columns (output
/// pixels), so layers with small outputs (4x4, 1x1) are one well-shaped product rather than
/// one thin product per image.
fn images_per_gemm(g: &Geometry) -> usize {
    const COLUMNS: usize = 256;
    COLUMNS
        .div_ceil((g.oh * g.ow).max(1))
        .clamp(1, g.batch.max(1))
}

/// Room to reorder a group's planes between image-major and channel-major order; none when
/// every GEMM takes one image and nothing is reordered.
fn reorder_scratch<T: Real>(g: &Geometry, group: usize) -> Vec<T> {
    if group > 1 {
        vec![T::ZERO; g.cout * group * g.oh * g.ow]
    } else {
        Vec::new()
    }
}

/// `dst[b][a] = src[a][b]` for blocks of `block` values: `src` holds `rows_a` x `rows_b`
/// blocks. Moves a group's planes between image-major (`[img][c][pixels]`, tensors) and
/// channel-major (`[c][img][pixels]`, one GEMM's rows).
fn transpose_blocks<T: Real>(src: &[T], dst: &mut [T], rows_a: usize, rows_b: usize, block: usize) {
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and only initialised values are written, so
    // `dst` stays initialised.
    let dst = unsafe { &mut *(dst as *mut [T] as *mut [MaybeUninit<T>]) };
    transpose_blocks_into(src, dst, rows_a, rows_b, block)
}

/// [`transpose_blocks`] into a destination not yet initialised: every element of `dst` is
/// written.
fn transpose_blocks_into<T: Real>(
    src: &[T],
    dst: &mut [MaybeUninit<T>],
    rows_a: usize,
    rows_b: usize,
    block: usize,
) {
    assert_eq!(
        dst.len(),
        rows_a * rows_b * block,
        "the reorder covers its output"
    );
    for a in 0..rows_a {
        for b in 0..rows_b {
            write_copy(
                &mut dst[(b * rows_a + a) * block..][..block],
                &src[(a * rows_b + b) * block..][..block],
            );
        }
    }
}

pub(super) fn forward_cpu<T: Real>(x: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    if g.up > 1 {
        return upsampled::forward(x, w, g);
    }
    if cpu_direct(g, true, direct::runs_forward(g)) {
        return direct::forward(x, w, g);
    }
    let (k, ohw, image) = (g.k(), g.oh * g.ow, g.cin * g.h * g.w);
    if g.is_dense() {
        // y [batch, cout] = x [batch, k] W^T.
        let mut y = team::zeroed(g.batch * g.cout);
        let p = Gemm::new(
            (g.batch, g.cout, k),
            MatRef::rows(x, k),
            MatRef::rows(w, k).t(),
        );
        T::gemm(p, &mut y);
        return y;
    }
    let group = images_per_gemm(g);
    // SAFETY: a piece is zeroed before the GEMM writes it, or written whole by the reorder.
    unsafe {
        team::build_uninit_with(
            g.batch * g.cout * ohw,
            group * g.cout * ohw,
            || reorder_scratch(g, group),
            |rows, block, out| {
                let images = out.len() / (g.cout * ohw).max(1);
                let ld = images * ohw;
                let x = &x[block * group * image..][..images * image];
                let cols = Im2col { x, g };
                let p = Gemm::gathered((g.cout, ld, k), MatRef::rows(w, k), &cols);
                if images == 1 {
                    T::gemm(p, team::zero_init(out));
                } else {
                    T::gemm(p, &mut rows[..g.cout * ld]);
                    transpose_blocks_into(&rows[..g.cout * ld], out, g.cout, images, ohw);
                }
            },
        )
    }
}

pub(super) fn input_grad_cpu<T: Real>(gy: &[T], w: &[T], g: &Geometry) -> Vec<T> {
    if g.up > 1 {
        return upsampled::input_grad(gy, w, g);
    }
    if cpu_direct(g, direct::reads_input_grad(g), direct::thin(g)) {
        return direct::input_grad(gy, w, g);
    }
    if g.stride > 1 && !g.is_dense() && cpu_direct(g, true, direct::few_weights(g)) {
        return direct::few_weights_input_grad(gy, w, g);
    }
    let (k, ohw, image) = (g.k(), g.oh * g.ow, g.cin * g.h * g.w);
    if g.is_dense() {
        // dx [batch, k] = gy [batch, cout] W.
        let mut dx = team::zeroed(g.batch * image);
        let p = Gemm::new(
            (g.batch, k, g.cout),
            MatRef::rows(gy, g.cout),
            MatRef::rows(w, k),
        );
        T::gemm(p, &mut dx);
        return dx;
    }
    if let Some((flipped, fwd)) = input_grad_as_forward(w, g) {
        return forward_cpu(gy, &flipped, &fwd);
    }
    let group = images_per_gemm(g);
    team::build_with(
        g.batch * image,
        group * image,
        || (vec![T::ZERO; k * group * ohw], reorder_scratch(g, group)),
        |(dcols, rows), block, out| {
            let images = out.len() / image.max(1);
            let ld = images * ohw;
            let gy = &gy[block * group * g.cout * ohw..][..g.cout * ld];
            let gy = if images == 1 {
                gy
            } else {
                transpose_blocks(gy, &mut rows[..g.cout * ld], images, g.cout, ohw);
                &rows[..g.cout * ld]
            };
            // dcols = W^T gy, reading W [cout, k] transposed.
            let p = Gemm::new(
                (k, ld, g.cout),
                MatRef::rows(w, k).t(),
                MatRef::rows(gy, ld),
            );
            T::gemm(p, &mut dcols[..k * ld]);
            for (j, x) in out.chunks_mut(image.max(1)).enumerate() {
                col2im_image(&dcols[j * ohw..], g, x, ld);
            }
        },
    )
}

/// A stride-1 input gradient as a forward convolution of the output gradient with the kernel
/// flipped and its channel axes swapped, padded by what the forward pass's padding leaves of
/// the kernel's reach: an im2col copy instead of col2im's scattered adds. `None` for strides
/// above 1, padding past the kernel's reach, or outputs under 8x8, whose col2im is cheap and
/// where the swapped product measured slower (the DCGAN's D conv4 at 4x4: 4.6 -> 6.8 ms).
fn input_grad_as_forward<T: Real>(w: &[T], g: &Geometry) -> Option<(Vec<T>, Geometry)> {
    if g.stride != 1 || g.oh * g.ow < 64 {
        return None;
    }
    // The forward pass's bottom and right padding, and what the kernel reaches past them.
    let pb = (g.oh + g.kh - 1).checked_sub(g.h + g.pt)?;
    let pr = (g.ow + g.kw - 1).checked_sub(g.w + g.pl)?;
    let reach = |k: usize, p: usize| (k - 1).checked_sub(p);
    let pad = [
        reach(g.kh, g.pt)?,
        reach(g.kh, pb)?,
        reach(g.kw, g.pl)?,
        reach(g.kw, pr)?,
    ];
    let fwd = Geometry::new(
        &[g.batch, g.cout, g.oh, g.ow],
        &[g.cin, g.cout, g.kh, g.kw],
        1,
        pad,
    )
    .ok()?;
    let taps = g.kh * g.kw;
    let mut flipped = vec![T::ZERO; w.len()];
    for co in 0..g.cout {
        for ci in 0..g.cin {
            let src = &w[(co * g.cin + ci) * taps..][..taps];
            let dst = &mut flipped[(ci * g.cout + co) * taps..][..taps];
            dst.iter_mut()
                .zip(src.iter().rev())
                .for_each(|(d, &s)| *d = s);
        }
    }
    Some((flipped, fwd))
}

pub(super) fn weight_grad_cpu<T: Real>(x: &[T], gy: &[T], g: &Geometry) -> Vec<T> {
    if g.up > 1 {
        return upsampled::weight_grad(x, gy, g);
    }
    if cpu_direct(g, true, direct::thin(g) || direct::few_weights(g)) {
        return direct::weight_grad(x, gy, g);
    }
    let (k, ohw, image) = (g.k(), g.oh * g.ow, g.cin * g.h * g.w);
    if g.is_dense() {
        // dW [cout, k] = gy^T [cout, batch] x [batch, k].
        let mut dw = vec![T::ZERO; g.cout * k];
        let p = Gemm::new(
            (g.cout, k, g.batch),
            MatRef::rows(gy, g.cout).t(),
            MatRef::rows(x, k),
        );
        T::gemm(p, &mut dw);
        return dw;
    }
    let group = images_per_gemm(g);
    // Partial sums over fixed groups of images, added in order: the result does not depend on
    // how threads were scheduled (bit-exact resume needs that). Each group writes a whole dW
    // and each of its GEMMs rereads it, so layers with few output pixels (a large dW over a
    // short K) take fewer groups: at least PIXELS per group, from 2 to 8 groups.
    const PIXELS: usize = 512;
    let groups = (g.batch * ohw / PIXELS).clamp(2, 8);
    let per_group = g.batch.div_ceil(groups).max(1);
    let partials: Vec<Vec<T>> = team::map_range(g.batch.div_ceil(per_group), 1, |part| {
        let mut cols = vec![T::ZERO; k * group * ohw];
        let mut rows = reorder_scratch(g, group);
        let mut dw = vec![T::ZERO; g.cout * k];
        let first = part * per_group;
        let end = (first + per_group).min(g.batch);
        for start in (first..end).step_by(group) {
            let images = group.min(end - start);
            let ld = images * ohw;
            for j in 0..images {
                let img = &x[(start + j) * image..][..image];
                im2col_image(img, g, &mut cols[j * ohw..], ld);
            }
            let gy = &gy[start * g.cout * ohw..][..g.cout * ld];
            let gy = if images == 1 {
                gy
            } else {
                transpose_blocks(gy, &mut rows[..g.cout * ld], images, g.cout, ohw);
                &rows[..g.cout * ld]
            };
            // dW += gy cols^T, reading cols [k, ld] transposed.
            let p = Gemm::new(
                (g.cout, k, ld),
                MatRef::rows(gy, ld),
                MatRef::rows(&cols[..k * ld], ld).t(),
            )
            .accumulating();
            T::gemm(p, &mut dw);
        }
        dw
    });
    let mut total = vec![T::ZERO; g.cout * k];
    for part in partials {
        total.iter_mut().zip(part).for_each(|(t, p)| *t = *t + p);
    }
    total
}
