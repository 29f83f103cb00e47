//! Convolution: the CPU kernels against a direct loop, the GPU kernels (both forward
//! variants, both gradients, transposed convolution) against the CPU, and gradient checks of
//! first and second order.

#![allow(clippy::cloned_ref_to_slice_refs)] // `grad(&[y.clone()], ..)` reads best in tests

mod common;

use common::{
    assert_gpu_matches_cpu, fresh_rng, gpu, gradcheck, gradgradcheck, randn, randn64, rel_l2,
    MatrixContext,
};
use ganlab::ops::{set_conv_algo, ConvAlgo, Padding};
use ganlab::{grad, Device, Tensor};

const GEMM_TOL: f64 = 1e-4;

/// (input NCHW, cout, kernel, stride, padding)
fn cases() -> Vec<([usize; 4], usize, usize, usize, Padding)> {
    vec![
        ([2, 3, 7, 7], 4, 3, 1, Padding::Same),
        ([3, 1, 28, 28], 5, 3, 2, Padding::Same),
        ([2, 6, 14, 14], 3, 3, 2, Padding::Same),
        ([2, 5, 8, 8], 7, 4, 1, Padding::Valid),
        (
            [1, 4, 9, 11],
            3,
            4,
            2,
            Padding::Explicit {
                top: 1,
                bottom: 2,
                left: 0,
                right: 1,
            },
        ),
        ([4, 3, 5, 5], 70, 1, 1, Padding::Valid),
        // Large enough that forward and input gradient fill 256 tiles without split-K (the
        // small cases above all take the split-K pair).
        ([4, 3, 64, 64], 64, 3, 1, Padding::Same),
        ([2, 17, 6, 6], 9, 3, 1, Padding::symmetric(1)),
        // Stride above the kernel (pixels no output reads: their gradient is 0), a strided
        // 1x1, padding wider than the stride (the input gradient's stride phases).
        ([2, 3, 10, 11], 4, 2, 3, Padding::Valid),
        ([2, 4, 7, 9], 5, 1, 2, Padding::Valid),
        ([1, 3, 6, 7], 2, 3, 2, Padding::symmetric(3)),
        // Stride larger than the image, padding wider than the kernel reach.
        ([2, 2, 2, 5], 3, 3, 3, Padding::symmetric(2)),
        ([1, 2, 1, 1], 2, 1, 3, Padding::Valid),
        // Thin layers, which the CPU convolves directly: one output channel (a generator's
        // last layer, toRGB), one input channel (fromRGB), wider than one register tile.
        ([3, 16, 9, 37], 1, 3, 1, Padding::Same),
        ([2, 6, 10, 10], 1, 4, 1, Padding::Same),
        ([2, 8, 7, 5], 1, 1, 1, Padding::Valid),
        // Outputs of 14x14, which the CPU tiles with their size fixed at compile time: a thin
        // stride-1 layer (its input gradient too: 3 planes of 14x14, a pair and a single).
        ([2, 3, 14, 14], 2, 3, 1, Padding::Same),
        // Few-weights layers with more outputs than one block of 4 gradient planes (the
        // weight gradient's AVX-512 blocking) and 2 or 3 over; 14x14 in three pairs.
        ([2, 1, 28, 28], 6, 3, 2, Padding::Same),
        ([3, 1, 10, 12], 7, 3, 2, Padding::symmetric(1)),
        // A pointwise thin layer over more than one block of pixels (323: 256, then 67).
        ([2, 5, 17, 19], 3, 1, 1, Padding::Valid),
        ([2, 1, 6, 19], 8, 1, 1, Padding::Valid),
        ([2, 5, 17, 35], 2, 3, 2, Padding::Same),
        // Strided layers with few weights and inputs twice their outputs, whose input gradient
        // is summed in phase planes: two input channels and two vectors of columns, a k3 over
        // 17 columns (the shifted tap's last column in the plane's spare room), padding on top
        // (a tap shifted up a row); padding on the left takes the scalar col2im.
        ([2, 2, 12, 40], 3, 2, 2, Padding::Valid),
        ([1, 1, 36, 34], 2, 3, 2, Padding::Same),
        (
            [2, 1, 10, 10],
            2,
            3,
            2,
            Padding::Explicit {
                top: 1,
                bottom: 0,
                left: 0,
                right: 1,
            },
        ),
        ([2, 1, 10, 10], 3, 3, 2, Padding::symmetric(1)),
        // A k4 one (columns 2 and 3 of the kernel shifted), padded on the right only.
        (
            [2, 1, 12, 10],
            3,
            4,
            2,
            Padding::Explicit {
                top: 0,
                bottom: 2,
                left: 0,
                right: 2,
            },
        ),
        // The 64x64 DCGAN's k4 s2 p1 with small outputs, which the CPU convolves several
        // images per GEMM: 8x8 outputs four at a time (5 images: a group of 4, then 1), 4x4
        // sixteen at a time (20 images: 16 then 4; the weight gradient's groups of 3).
        ([5, 3, 16, 16], 6, 4, 2, Padding::symmetric(1)),
        ([20, 2, 8, 8], 5, 4, 2, Padding::symmetric(1)),
        // Kernels covering the whole input, one output pixel: a dense layer over the batch
        // (G's first layer from z, run backwards; a critic's last), thin or not; and one
        // output pixel reached through padding, which is not.
        ([3, 4, 4, 4], 6, 4, 1, Padding::Valid),
        ([5, 8, 4, 4], 1, 4, 1, Padding::Valid),
        ([2, 3, 4, 4], 5, 4, 3, Padding::symmetric(1)),
        // Stride 1 with padding past the kernel's reach: the input gradient cannot be the
        // flipped kernel's forward pass and scatters through col2im instead.
        ([2, 3, 5, 5], 6, 3, 1, Padding::symmetric(3)),
        // Stride 1 with outputs of at least 8x8, whose input gradient is the flipped kernel's
        // forward pass: same, valid, and asymmetric padding.
        ([2, 6, 9, 8], 5, 3, 1, Padding::Same),
        ([3, 4, 11, 10], 7, 3, 1, Padding::Valid),
        (
            [2, 3, 10, 9],
            6,
            4,
            1,
            Padding::Explicit {
                top: 0,
                bottom: 3,
                left: 2,
                right: 1,
            },
        ),
    ]
}

/// Visits every (input, weight, output) index triple of a convolution whose tap lies inside
/// the image: the independent reference's loop.
fn each_tap(
    xs: [usize; 4],
    ws: [usize; 4],
    stride: usize,
    pad: [usize; 4],
    mut visit: impl FnMut(usize, usize, usize),
) {
    let [n, c, h, wd] = xs;
    let [co, _, kh, kw] = ws;
    let [_, _, oh, ow] = output_shape(xs, ws, stride, pad);
    for b in 0..n {
        for o in 0..co {
            for i in 0..oh {
                for j in 0..ow {
                    for ci in 0..c {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let (iy, ix) = (
                                    (i * stride + ky) as isize - pad[0] as isize,
                                    (j * stride + kx) as isize - pad[2] as isize,
                                );
                                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                    visit(
                                        ((b * c + ci) * h + iy as usize) * wd + ix as usize,
                                        ((o * c + ci) * kh + ky) * kw + kx,
                                        ((b * co + o) * oh + i) * ow + j,
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn output_shape(xs: [usize; 4], ws: [usize; 4], stride: usize, pad: [usize; 4]) -> [usize; 4] {
    let oh = (xs[2] + pad[0] + pad[1] - ws[2]) / stride + 1;
    let ow = (xs[3] + pad[2] + pad[3] - ws[3]) / stride + 1;
    [xs[0], ws[0], oh, ow]
}

/// Direct convolution in f64, the independent reference.
fn direct_conv(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    stride: usize,
    pad: [usize; 4],
) -> (Vec<f64>, [usize; 4]) {
    let shape = output_shape(xs, ws, stride, pad);
    let mut y = vec![0.0; shape.iter().product()];
    each_tap(xs, ws, stride, pad, |xi, wi, yi| y[yi] += x[xi] * w[wi]);
    (y, shape)
}

/// The reference adjoints of [`direct_conv`]: each output gradient entry scattered back to the
/// input pixel and the weight that made it.
fn direct_grads(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    gy: &[f64],
    stride: usize,
    pad: [usize; 4],
) -> (Vec<f64>, Vec<f64>) {
    let (mut dx, mut dw) = (vec![0.0; x.len()], vec![0.0; w.len()]);
    each_tap(xs, ws, stride, pad, |xi, wi, yi| {
        dx[xi] += gy[yi] * w[wi];
        dw[wi] += gy[yi] * x[xi];
    });
    (dx, dw)
}

#[test]
fn cpu_convolution_matches_a_direct_loop() {
    let mut rng = fresh_rng("cpu_convolution_matches_a_direct_loop");
    for (xs, cout, k, stride, padding) in cases() {
        let x = randn64(&xs, &mut rng);
        let w = randn64(&[cout, xs[1], k, k], &mut rng);
        let y = x.conv2d(&w, None, stride, padding).unwrap();
        let pad = padding.resolve(xs[2], xs[3], k, k, stride);
        let (want, shape) = direct_conv(
            &x.to_vec_f64().unwrap(),
            xs,
            &w.to_vec_f64().unwrap(),
            [cout, xs[1], k, k],
            stride,
            pad,
        );
        assert_eq!(y.shape(), shape);
        let got = y.to_vec_f64().unwrap();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-10, "{xs:?} k{k} s{stride}: {a} vs {b}");
        }
    }
}

/// Both CPU kernel families (direct and im2col + GEMM), forced in turn on every case, give the
/// reference's output and both gradients.
#[test]
fn every_cpu_convolution_kernel_matches_the_reference_loops() {
    use ganlab::cpu::simd::{with_level, Level};
    use ganlab::ops::conv::{conv_forward, conv_input_grad, conv_weight_grad, Geometry};
    use ganlab::ops::{with_cpu_conv, CpuConv};
    let mut rng = fresh_rng("every_cpu_convolution_kernel_matches_the_reference_loops");
    for (xs, cout, k, stride, padding) in cases() {
        let ws = [cout, xs[1], k, k];
        let pad = padding.resolve(xs[2], xs[3], k, k, stride);
        let g = Geometry::new(&xs, &ws, stride, pad).unwrap();
        let x = randn64(&xs, &mut rng);
        let w = randn64(&ws, &mut rng);
        let gy = randn64(&[xs[0], cout, g.oh, g.ow], &mut rng);
        let (xv, wv, gv) = (
            x.to_vec_f64().unwrap(),
            w.to_vec_f64().unwrap(),
            gy.to_vec_f64().unwrap(),
        );
        let (y_want, _) = direct_conv(&xv, xs, &wv, ws, stride, pad);
        let (dx_want, dw_want) = direct_grads(&xv, xs, &wv, ws, &gv, stride, pad);
        // Each build of the direct kernels' loops this CPU runs (AVX-512, AVX2, baseline).
        let levels = Level::ALL
            .into_iter()
            .filter(|l| l.is_supported())
            .map(Some);
        let algos = [(CpuConv::Gemm, None), (CpuConv::Auto, None)].into_iter();
        for (algo, level) in algos.chain(levels.map(|l| (CpuConv::Direct, l))) {
            let run = || {
                with_cpu_conv(algo, || {
                    (
                        conv_forward(&x, &w, g).unwrap(),
                        conv_input_grad(&gy, &w, g).unwrap(),
                        conv_weight_grad(&x, &gy, g).unwrap(),
                    )
                })
            };
            let (y, dx, dw) = match level {
                Some(level) => with_level(level, run),
                None => run(),
            };
            for (what, got, want) in [
                ("y", y, &y_want),
                ("dx", dx, &dx_want),
                ("dw", dw, &dw_want),
            ] {
                let got = got.to_vec_f64().unwrap();
                assert_eq!(got.len(), want.len());
                for (a, b) in got.iter().zip(want) {
                    assert!(
                        (a - b).abs() < 1e-10,
                        "{algo:?} {level:?} {what} {xs:?} k{k} s{stride}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

/// The direct kernels' f32 build (FMA where the CPU has it) against the GEMM path.
#[test]
fn direct_cpu_convolution_matches_the_gemm_path_in_f32() {
    use ganlab::ops::conv::{conv_forward, conv_input_grad, conv_weight_grad, Geometry};
    use ganlab::ops::{with_cpu_conv, CpuConv};
    let mut rng = fresh_rng("direct_cpu_convolution_matches_the_gemm_path_in_f32");
    for (xs, cout, k, stride, padding) in cases() {
        let ws = [cout, xs[1], k, k];
        let g = Geometry::new(
            &xs,
            &ws,
            stride,
            padding.resolve(xs[2], xs[3], k, k, stride),
        )
        .unwrap();
        let x = randn(&xs, &mut rng);
        let w = randn(&ws, &mut rng);
        let gy = randn(&[xs[0], cout, g.oh, g.ow], &mut rng);
        let run = |algo| {
            with_cpu_conv(algo, || {
                [
                    conv_forward(&x, &w, g).unwrap(),
                    conv_input_grad(&gy, &w, g).unwrap(),
                    conv_weight_grad(&x, &gy, g).unwrap(),
                ]
                .map(|t| t.to_vec().unwrap())
            })
        };
        let (direct, gemm) = (run(CpuConv::Direct), run(CpuConv::Gemm));
        // Relative L2 over each output: an element that cancels to near zero (a weight
        // gradient sums 4 x 64 x 64 products) carries the rounding of its large terms.
        for (what, (d, m)) in ["y", "dx", "dw"].iter().zip(direct.iter().zip(&gemm)) {
            let err = rel_l2(d, m);
            assert!(
                err < 1e-5,
                "{xs:?} k{k} s{stride} {what}: relative L2 error {err}"
            );
        }
    }
}

#[test]
fn keras_same_padding_gives_28_14_7() {
    let mut rng = fresh_rng("keras_same_padding");
    let x = randn(&[1, 1, 28, 28], &mut rng);
    let w = randn(&[2, 1, 3, 3], &mut rng);
    let y = x.conv2d(&w, None, 2, Padding::Same).unwrap();
    assert_eq!(y.shape(), [1, 2, 14, 14]);
    let w2 = randn(&[2, 2, 3, 3], &mut rng);
    assert_eq!(
        y.conv2d(&w2, None, 2, Padding::Same).unwrap().shape(),
        [1, 2, 7, 7]
    );
}

#[test]
fn gpu_convolution_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("gpu_convolution_matches_cpu");
    for (xs, cout, k, stride, padding) in cases() {
        let x = randn(&xs, &mut rng);
        let w = randn(&[cout, xs[1], k, k], &mut rng);
        let b = randn(&[cout], &mut rng);
        let what = |s: &str| format!("{s} {xs:?} cout {cout} k{k} s{stride} {padding:?}");
        for algo in [ConvAlgo::ImplicitGemm, ConvAlgo::Im2col] {
            set_conv_algo(algo);
            assert_gpu_matches_cpu(
                &what(&format!("forward {algo:?}")),
                &gpu,
                &[x.clone(), w.clone(), b.clone()],
                GEMM_TOL,
                |t| t[0].conv2d(&t[1], Some(&t[2]), stride, padding),
            );
        }
        set_conv_algo(ConvAlgo::ImplicitGemm);
        let y = x.conv2d(&w, None, stride, padding).unwrap();
        let gy = randn(y.shape(), &mut rng);
        let grads = |t: &[Tensor], which: usize| {
            let (x, w) = (t[0].detach().with_grad(), t[1].detach().with_grad());
            let y = x.conv2d(&w, None, stride, padding)?;
            let g = grad(&[y], Some(&[t[2].clone()]), &[x, w], false)?;
            Ok(g[which].clone().unwrap())
        };
        let inputs = [x.clone(), w.clone(), gy];
        assert_gpu_matches_cpu(&what("input grad"), &gpu, &inputs, GEMM_TOL, |t| {
            grads(t, 0)
        });
        assert_gpu_matches_cpu(&what("weight grad"), &gpu, &inputs, GEMM_TOL, |t| {
            grads(t, 1)
        });
    }
}

#[test]
fn every_gemm_variant_of_the_convolutions_matches_cpu() {
    use ganlab::ops::gemm::Variant;
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("every_gemm_variant_of_the_convolutions_matches_cpu");
    let runs: Vec<_> = [Variant::Tiled, Variant::Wide, Variant::Thin]
        .into_iter()
        .flat_map(|v| [1, 2, 3, 7, 1000].map(|s| (Some(v), s)))
        .collect();
    convolutions_match_cpu(&gpu, &mut rng, &runs, GEMM_TOL);
}

/// The convolution GEMMs on cooperative-matrix fragments, emulated (8x8 and 16x16 with f16
/// inputs where the adapter has f16, whose gradients stay on the tiles, and 8x8 f32 with every
/// pass on them): their tiling, staging and epilogue against the CPU. Where the adapter offers
/// the fragments themselves, the same on them.
#[test]
fn convolutions_on_matrix_fragments_match_cpu() {
    use ganlab::ops::gemm::record_launches;
    let mut rng = fresh_rng("convolutions_on_matrix_fragments_match_cpu");
    let runs = [1, 2, 7].map(|s| (None, s));
    for (request, m) in MatrixContext::open_all(&["emulate", "emulate16", "emulate-f32", "on"]) {
        let ((), launches) =
            record_launches(|| convolutions_match_cpu(&m.gpu, &mut rng, &runs, m.tol));
        let on = m.assert_placed(request, &launches);
        assert!(on >= 5, "{request}: {on} launches on fragments");
    }
}

/// Each convolution pass (forward with a bias, input and weight gradients) of ragged cases on
/// `gpu` against the CPU, for each (forced GEMM variant or the plan's, forced splits).
fn convolutions_match_cpu(
    gpu: &Device,
    rng: &mut ganlab::Rng,
    runs: &[(Option<ganlab::ops::gemm::Variant>, usize)],
    tol: f64,
) {
    use ganlab::ops::gemm::{with_splits, with_variant};
    // Ragged: K of every pass is not a multiple of the slice, 1 output channel, 1 input channel
    // (the thin kernel's three modes: forward, input and weight gradients with M <= 4).
    // Upsampling convolutions (up > 1) run by phases: batched forward and weight-gradient
    // products, an input gradient whose K runs over the phases.
    for (xs, cout, k, stride, up, padding) in [
        ([3, 5, 11, 13], 7, 3, 2, 1, Padding::Same),
        ([2, 1, 17, 17], 1, 3, 1, 1, Padding::Same),
        ([5, 3, 9, 7], 2, 4, 1, 1, Padding::Valid),
        ([2, 4, 6, 6], 3, 1, 1, 1, Padding::Valid),
        ([3, 5, 5, 6], 7, 3, 1, 2, Padding::Same),
        ([2, 3, 4, 5], 1, 4, 1, 2, Padding::Same),
        ([2, 1, 3, 4], 2, 3, 1, 3, Padding::Valid),
    ] {
        let x = randn(&xs, rng);
        let w = randn(&[cout, xs[1], k, k], rng);
        let bias = randn(&[cout], rng);
        let conv = move |x: &Tensor, w: &Tensor, b: Option<&Tensor>| match up {
            1 => x.conv2d(w, b, stride, padding),
            _ => x.upsample_conv2d(up, w, b, padding, None),
        };
        let gy = randn(conv(&x, &w, None).unwrap().shape(), rng);
        let passes = |t: &[Tensor]| -> ganlab::Result<Tensor> {
            let (x, w) = (t[0].detach().with_grad(), t[1].detach().with_grad());
            // The forward with its bias in the (split-K reduce's) store.
            let y = conv(&x, &w, Some(&t[3]))?;
            let g = grad(&[y.clone()], Some(&[t[2].clone()]), &[x, w], false)?;
            let parts = [
                y.flatten(0)?,
                g[0].clone().unwrap().flatten(0)?,
                g[1].clone().unwrap().flatten(0)?,
            ];
            Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
        };
        for &(variant, splits) in runs {
            let what = format!("{xs:?} cout {cout} k{k} up{up} {variant:?} split into {splits}");
            let check = || {
                with_splits(splits, || {
                    assert_gpu_matches_cpu(
                        &what,
                        gpu,
                        &[x.clone(), w.clone(), gy.clone(), bias.clone()],
                        tol,
                        passes,
                    )
                })
            };
            match variant {
                Some(v) => with_variant(v, check),
                None => check(),
            }
        }
    }
}

#[test]
fn gpu_transposed_convolution_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("gpu_transposed_convolution_matches_cpu");
    for (xs, cout, k, stride, pad, out_pad) in [
        ([2, 8, 7, 7], 4, 4, 2, 1, 0),
        ([3, 5, 4, 4], 3, 4, 2, 1, 0),
        ([2, 3, 5, 6], 2, 3, 2, 1, 1),
        ([1, 4, 9, 9], 6, 3, 1, 1, 0),
    ] {
        let x = randn(&xs, &mut rng);
        let w = randn(&[xs[1], cout, k, k], &mut rng);
        let y = x.conv_transpose2d(&w, None, stride, pad, out_pad).unwrap();
        assert_eq!(y.shape()[2], (xs[2] - 1) * stride + k + out_pad - 2 * pad);
        assert_gpu_matches_cpu(
            &format!("conv_transpose2d {xs:?} k{k} s{stride}"),
            &gpu,
            &[x, w],
            GEMM_TOL,
            |t| t[0].conv_transpose2d(&t[1], None, stride, pad, out_pad),
        );
    }
}

#[test]
fn convolution_gradients_match_finite_differences() {
    let mut rng = fresh_rng("convolution_gradients_match_finite_differences");
    for (xs, cout, k, stride, padding) in [
        ([2, 2, 5, 5], 3, 3, 2, Padding::Same),
        (
            [1, 3, 4, 5],
            2,
            2,
            1,
            Padding::Explicit {
                top: 0,
                bottom: 1,
                left: 1,
                right: 0,
            },
        ),
    ] {
        let x = randn64(&xs, &mut rng);
        let w = randn64(&[cout, xs[1], k, k], &mut rng);
        let b = randn64(&[cout], &mut rng);
        let f = move |t: &[Tensor]| t[0].conv2d(&t[1], Some(&t[2]), stride, padding);
        gradcheck("conv2d", &[x.clone(), w.clone(), b], f, &mut rng);
        gradgradcheck(
            "conv2d",
            &[x, w],
            move |t: &[Tensor]| t[0].conv2d(&t[1], None, stride, padding),
            &mut rng,
        );
    }
    let x = randn64(&[2, 3, 3, 3], &mut rng);
    let w = randn64(&[3, 2, 4, 4], &mut rng);
    let f = |t: &[Tensor]| t[0].conv_transpose2d(&t[1], None, 2, 1, 0);
    gradcheck("conv_transpose2d", &[x.clone(), w.clone()], f, &mut rng);
    gradgradcheck("conv_transpose2d", &[x, w], f, &mut rng);
}

/// WGAN-GP's computation through a conv critic: d/dtheta ||d critic / d x||^2 with
/// critic = linear(leaky_relu(conv(x))), by double backward against finite differences.
#[test]
fn gradient_penalty_through_conv_leaky_relu_linear() {
    let mut rng = fresh_rng("gradient_penalty_through_conv");
    let x = randn64(&[2, 1, 5, 5], &mut rng);
    let params = vec![
        randn64(&[2, 1, 3, 3], &mut rng),
        randn64(&[2], &mut rng),
        randn64(&[18, 1], &mut rng),
    ];
    let penalty = |p: &[Tensor]| -> Tensor {
        let x = x.detach().with_grad();
        let h = x
            .conv2d(&p[0], Some(&p[1]), 2, Padding::Same)
            .unwrap()
            .leaky_relu(0.2)
            .unwrap();
        let out = h
            .flatten(1)
            .unwrap()
            .matmul(&p[2])
            .unwrap()
            .sum_all()
            .unwrap();
        let gx = grad(&[out], None, &[x], true).unwrap()[0].clone().unwrap();
        gx.square().unwrap().sum_all().unwrap()
    };
    let leaves: Vec<Tensor> = params.iter().map(|t| t.detach().with_grad()).collect();
    let analytic = grad(&[penalty(&leaves)], None, &leaves, false).unwrap();
    let loss = |ps: &[Tensor]| penalty(ps).to_vec_f64().unwrap()[0];
    common::compare_with_fd(
        "gradient penalty through a conv critic",
        &params,
        &analytic,
        &loss,
        1e-6,
        1e-6,
    );
    assert!(analytic[0].is_some() && analytic[2].is_some());
}

/// (input NCHW, cout, kernel, upsampling factor, padding) of upsampling convolutions: the
/// DCGAN generator's blocks (k3 and WGAN's k4, same), a factor of 3, valid and wide padding,
/// one output channel (whose phases the CPU convolves directly), a 1x1 input.
fn upsampled_cases() -> Vec<([usize; 4], usize, usize, usize, Padding)> {
    vec![
        ([2, 3, 7, 7], 4, 3, 2, Padding::Same),
        ([2, 3, 5, 6], 4, 4, 2, Padding::Same),
        ([1, 2, 4, 5], 3, 3, 3, Padding::Valid),
        ([2, 3, 4, 4], 5, 3, 2, Padding::symmetric(2)),
        ([3, 4, 6, 5], 1, 3, 2, Padding::Same),
        ([2, 2, 1, 1], 3, 3, 2, Padding::Same),
        (
            [2, 3, 5, 4],
            2,
            2,
            2,
            Padding::Explicit {
                top: 0,
                bottom: 1,
                left: 1,
                right: 0,
            },
        ),
    ]
}

/// The upsampling convolution (its forward, input and weight gradients, bias and activation
/// in the store) against upsample_nearest2d then conv2d, in f64, on the CPU.
#[test]
fn upsampling_convolution_matches_upsample_then_conv() {
    use ganlab::nn::Activation;
    let mut rng = fresh_rng("upsampling_convolution_matches_upsample_then_conv");
    for (xs, cout, k, up, padding) in upsampled_cases() {
        let x = randn64(&xs, &mut rng).with_grad();
        let w = randn64(&[cout, xs[1], k, k], &mut rng).with_grad();
        let b = randn64(&[cout], &mut rng).with_grad();
        let act = Some(Activation::LeakyRelu(0.2));
        let fused = x.upsample_conv2d(up, &w, Some(&b), padding, act).unwrap();
        let want = x
            .upsample_nearest2d(up)
            .unwrap()
            .conv2d_activated(&w, Some(&b), 1, padding, act)
            .unwrap();
        assert_eq!(fused.shape(), want.shape(), "{xs:?} k{k} up{up}");
        let gy = randn64(want.shape(), &mut rng);
        let grads = |y: &Tensor| {
            grad(
                &[y.clone()],
                Some(&[gy.clone()]),
                &[x.clone(), w.clone(), b.clone()],
                false,
            )
            .unwrap()
        };
        let (got, expected) = (grads(&fused), grads(&want));
        let pairs = [("y", Some(fused), Some(want))].into_iter().chain(
            ["dx", "dw", "db"]
                .into_iter()
                .zip(got)
                .zip(expected)
                .map(|((n, a), b)| (n, a, b)),
        );
        for (what, a, b) in pairs {
            let (a, b) = (
                a.unwrap().to_vec_f64().unwrap(),
                b.unwrap().to_vec_f64().unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (u, v) in a.iter().zip(&b) {
                assert!(
                    (u - v).abs() < 1e-10,
                    "{what} {xs:?} k{k} up{up} {padding:?}: {u} vs {v}"
                );
            }
        }
    }
}

/// The GPU runs the phases as implicit GEMMs (the phase kernels added up as the GEMM reads the
/// weights; the input gradient's K runs over the phases; the weight gradient folds the phase
/// kernels' gradients): it matches the CPU's phases, forward (bias and activation in the
/// store) and both gradients.
#[test]
fn gpu_upsampling_convolution_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("gpu_upsampling_convolution_matches_cpu");
    for (xs, cout, k, up, padding) in upsampled_cases() {
        let x = randn(&xs, &mut rng);
        let w = randn(&[cout, xs[1], k, k], &mut rng);
        let b = randn(&[cout], &mut rng);
        let y = x.upsample_conv2d(up, &w, None, padding, None).unwrap();
        let gy = randn(y.shape(), &mut rng);
        let what = |s: &str| format!("{s} {xs:?} cout {cout} k{k} up{up} {padding:?}");
        let act = Some(ganlab::nn::Activation::LeakyRelu(0.2));
        assert_gpu_matches_cpu(
            &what("forward"),
            &gpu,
            &[x.clone(), w.clone(), b],
            GEMM_TOL,
            |t| t[0].upsample_conv2d(up, &t[1], Some(&t[2]), padding, act),
        );
        for which in 0..2 {
            assert_gpu_matches_cpu(
                &what(["input grad", "weight grad"][which]),
                &gpu,
                &[x.clone(), w.clone(), gy.clone()],
                GEMM_TOL,
                |t| {
                    let (x, w) = (t[0].detach().with_grad(), t[1].detach().with_grad());
                    let y = x.upsample_conv2d(up, &w, None, padding, None)?;
                    let g = grad(&[y], Some(&[t[2].clone()]), &[x, w], false)?;
                    Ok(g[which].clone().unwrap())
                },
            );
        }
    }
}

/// First and second order gradient checks of the upsampling convolution (WGAN-GP's penalty
/// differentiates through it twice).
#[test]
fn upsampling_convolution_gradients_match_finite_differences() {
    let mut rng = fresh_rng("upsampling_convolution_gradients_match_finite_differences");
    for (xs, cout, k, up) in [([2, 2, 3, 3], 3, 3, 2), ([1, 2, 2, 3], 2, 4, 2)] {
        let x = randn64(&xs, &mut rng);
        let w = randn64(&[cout, xs[1], k, k], &mut rng);
        let b = randn64(&[cout], &mut rng);
        let same = Padding::Same;
        let f = move |t: &[Tensor]| t[0].upsample_conv2d(up, &t[1], Some(&t[2]), same, None);
        gradcheck("upsample_conv2d", &[x.clone(), w.clone(), b], f, &mut rng);
        gradgradcheck(
            "upsample_conv2d",
            &[x, w],
            move |t: &[Tensor]| t[0].upsample_conv2d(up, &t[1], None, same, None),
            &mut rng,
        );
    }
}

/// A hand-built upsampling geometry with stride 2, where the phases do not apply: the CPU
/// stores the upsampled image and convolves it (forward), or block-sums the gradient of the
/// upsampled image (input gradient); both match upsample-then-conv.
#[test]
fn strided_upsampling_geometry_falls_back_to_the_stored_image() {
    use ganlab::ops::conv::{conv_forward, conv_input_grad, conv_weight_grad, Geometry};
    let mut rng = fresh_rng("strided_upsampling_geometry_falls_back_to_the_stored_image");
    let (xs, ws) = ([2, 3, 5, 4], [4, 3, 3, 3]);
    let pad = Padding::Same.resolve(10, 8, 3, 3, 2);
    let plain = Geometry::new(&[2, 3, 10, 8], &ws, 2, pad).unwrap();
    let g = Geometry { up: 2, ..plain };
    let x = randn64(&xs, &mut rng);
    let w = randn64(&ws, &mut rng);
    let gy = randn64(&[2, 4, plain.oh, plain.ow], &mut rng);
    let xu = x.upsample_nearest2d(2).unwrap();
    let pairs = [
        (conv_forward(&x, &w, g), conv_forward(&xu, &w, plain)),
        (
            conv_input_grad(&gy, &w, g),
            conv_input_grad(&gy, &w, plain).and_then(|d| d.sum_pool2d(2)),
        ),
        (
            conv_weight_grad(&x, &gy, g),
            conv_weight_grad(&xu, &gy, plain),
        ),
    ];
    for (what, (got, want)) in ["y", "dx", "dw"].into_iter().zip(pairs) {
        let (got, want) = (got.unwrap(), want.unwrap());
        assert_eq!(got.shape(), want.shape(), "{what}");
        let (got, want) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-10, "{what}: {a} vs {b}");
        }
    }
    // The GPU upsamples first (or block-sums the upsampled image's gradient) and matches.
    let Some(gpu) = gpu() else { return };
    let f32 = |t: &Tensor| t.to_dtype(ganlab::DType::F32).unwrap();
    let inputs = [f32(&x), f32(&w), f32(&gy)];
    let passes: [(&str, PassFn); 3] = [
        ("y", |t, g| conv_forward(&t[0], &t[1], g)),
        ("dx", |t, g| conv_input_grad(&t[2], &t[1], g)),
        ("dw", |t, g| conv_weight_grad(&t[0], &t[2], g)),
    ];
    for (what, pass) in passes {
        assert_gpu_matches_cpu(what, &gpu, &inputs, GEMM_TOL, |t| pass(t, g));
    }
}

type PassFn = fn(&[Tensor], ganlab::ops::conv::Geometry) -> ganlab::Result<Tensor>;

/// Conv2d refuses an upsampling factor of 0, or upsampling with a stride, when it is built.
#[test]
fn conv2d_refuses_a_bad_upsampling_config() {
    use ganlab::nn::{Conv2d, Conv2dConfig};
    let mut rng = ganlab::Rng::seed(1);
    let dev = ganlab::Device::Cpu;
    for cfg in [
        Conv2dConfig::default().upsample(0),
        Conv2dConfig::default().upsample(2).stride(2),
    ] {
        assert!(Conv2d::new(2, 3, 3, cfg, &mut rng, &dev).is_err());
    }
    assert!(Conv2d::new(2, 3, 3, Conv2dConfig::default().upsample(2), &mut rng, &dev).is_ok());
}

/// An infinite gradient in one output channel makes that channel's weight gradient
/// non-finite and leaves the others finite: the direct kernels read whole vectors past a
/// plane's end and must not let what they read there reach another channel's sums.
#[test]
fn an_infinite_gradient_stays_in_its_output_channel() {
    use ganlab::cpu::simd::{with_level, Level};
    use ganlab::ops::conv::{conv_weight_grad, Geometry};
    use ganlab::ops::{with_cpu_conv, CpuConv};
    let mut rng = fresh_rng("an_infinite_gradient_stays_in_its_output_channel");
    // D conv1's shape (few weights: im2col rows), a thin layer (padded planes) and a pointwise
    // one, each with a row that is not a whole number of vectors.
    for (xs, cout, k, stride) in [
        ([2, 1, 28, 28], 3, 3, 2),
        ([2, 3, 9, 13], 2, 3, 1),
        ([2, 1, 5, 7], 3, 1, 1),
    ] {
        let ws = [cout, xs[1], k, k];
        let pad = Padding::Same.resolve(xs[2], xs[3], k, k, stride);
        let g = Geometry::new(&xs, &ws, stride, pad).unwrap();
        let x = randn(&xs, &mut rng);
        let mut gv = randn(&[xs[0], cout, g.oh, g.ow], &mut rng)
            .to_vec()
            .unwrap();
        // The first pixel of channel 1 of the last image: right after channel 0's plane.
        let plane = g.oh * g.ow;
        gv[(xs[0] - 1) * cout * plane + plane] = f32::INFINITY;
        let gy = Tensor::from_vec(gv, &[xs[0], cout, g.oh, g.ow], &Device::Cpu).unwrap();
        for level in Level::ALL.into_iter().filter(|l| l.is_supported()) {
            for algo in [CpuConv::Direct, CpuConv::Auto] {
                let dw = with_level(level, || {
                    with_cpu_conv(algo, || conv_weight_grad(&x, &gy, g).unwrap())
                });
                let dw = dw.to_vec().unwrap();
                let per = dw.len() / cout;
                for (o, row) in dw.chunks(per).enumerate() {
                    assert_eq!(
                        row.iter().all(|v| v.is_finite()),
                        o != 1,
                        "{xs:?} k{k} s{stride} {level:?} {algo:?}: channel {o} {row:?}"
                    );
                }
            }
        }
    }
}
