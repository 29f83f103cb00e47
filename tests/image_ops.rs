//! The image and GAN ops: resampling, batch norm, pixel norm, minibatch stddev, dropout,
//! embedding, zero padding and the losses; GPU against CPU, gradient checks, and the
//! conventions (Keras, ProGAN) each must follow.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads best in tests

mod common;

use common::{
    assert_gpu_matches_cpu, assert_within_terms, fresh_rng, gpu, gpu_and_cpu, gradcheck,
    gradgradcheck, randn, randn64, uniform64,
};
use ganlab::ops::dropout::dropout_mask;
use ganlab::ops::BatchNormState;
use ganlab::{grad, Device, Tensor};

const EW: f64 = 1e-5;
const RED: f64 = 1e-4;
/// Error bound relative to the magnitude of an output's terms (see `assert_within_terms`).
const TERMS: f64 = 1e-5;

fn cpu(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

#[test]
fn resampling_on_gpu_matches_cpu_and_conventions() {
    let up = cpu(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2])
        .upsample_nearest2d(2)
        .unwrap();
    assert_eq!(
        up.to_vec().unwrap(),
        vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]
    );
    let pooled = up.avg_pool2d(2).unwrap().to_vec().unwrap();
    assert_eq!(pooled, vec![1.0, 2.0, 3.0, 4.0]);
    assert!(cpu(&[0.0; 9], &[1, 1, 3, 3]).avg_pool2d(2).is_err());

    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("resampling");
    for shape in [[2, 3, 7, 5], [1, 1, 1, 1], [3, 2, 14, 14]] {
        let x = randn(&shape, &mut rng);
        assert_gpu_matches_cpu("upsample x2", &gpu, &[x.clone()], EW, |t| {
            t[0].upsample_nearest2d(2)
        });
        assert_gpu_matches_cpu("upsample x3", &gpu, &[x.clone()], EW, |t| {
            t[0].upsample_nearest2d(3)
        });
        let big = randn(&[shape[0], shape[1], shape[2] * 2, shape[3] * 2], &mut rng);
        assert_gpu_matches_cpu("avg_pool2d", &gpu, &[big], EW, |t| t[0].avg_pool2d(2));
    }
}

#[test]
fn keras_zero_padding_pads_bottom_right() {
    let x = cpu(&[1.0; 49], &[1, 1, 7, 7]);
    let y = x.pad(&[(0, 0), (0, 0), (0, 1), (0, 1)]).unwrap();
    assert_eq!(y.shape(), [1, 1, 8, 8]);
    let v = y.to_vec().unwrap();
    assert_eq!(v[0], 1.0);
    assert!(v[7] == 0.0 && v[56] == 0.0 && v[63] == 0.0);
    assert_eq!(v.iter().sum::<f32>(), 49.0);
}

/// Keras batch norm by hand: normalise with biased batch variance; running variance takes the
/// unbiased one for 4-D input and the biased one for 2-D.
#[test]
fn batch_norm_follows_keras() {
    for (shape, unbiased) in [(vec![4, 2, 3, 1], true), (vec![6, 2], false)] {
        let n: usize = shape.iter().product();
        let x = cpu(
            &(0..n)
                .map(|i| ((i * 7) % 11) as f32 - 3.0)
                .collect::<Vec<_>>(),
            &shape,
        );
        let gamma = cpu(&[1.5, -0.5], &[2]);
        let beta = cpu(&[0.25, 1.0], &[2]);
        let (rm, rv) = (cpu(&[0.1, 0.2], &[2]), cpu(&[1.0, 2.0], &[2]));
        let state = BatchNormState {
            running_mean: &rm,
            running_var: &rv,
            momentum: 0.8,
            eps: 1e-3,
        };
        let y = x
            .batch_norm(&gamma, &beta, &state, true)
            .unwrap()
            .to_vec()
            .unwrap();
        let xv = x.to_vec().unwrap();
        let inner: usize = shape[2..].iter().product();
        for c in 0..2 {
            let vals: Vec<f64> = (0..n)
                .filter(|i| (i / inner) % 2 == c)
                .map(|i| xv[i] as f64)
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / vals.len() as f64;
            for i in (0..n).filter(|i| (i / inner) % 2 == c) {
                let want =
                    (xv[i] as f64 - m) / (var + 1e-3).sqrt() * [1.5, -0.5][c] + [0.25, 1.0][c];
                assert!(
                    (y[i] as f64 - want).abs() < 1e-5,
                    "{shape:?} c{c}: {} vs {want}",
                    y[i]
                );
            }
            let stat_var = if unbiased {
                var * vals.len() as f64 / (vals.len() - 1) as f64
            } else {
                var
            };
            let want_rm = 0.8 * [0.1, 0.2][c] + 0.2 * m;
            let want_rv = 0.8 * [1.0, 2.0][c] + 0.2 * stat_var;
            assert!((rm.to_vec().unwrap()[c] as f64 - want_rm).abs() < 1e-5);
            assert!(
                (rv.to_vec().unwrap()[c] as f64 - want_rv).abs() < 1e-5,
                "{shape:?} running var"
            );
        }
        // Inference uses the running statistics and leaves them alone.
        let before = (rm.to_vec().unwrap(), rv.to_vec().unwrap());
        let e = x
            .batch_norm(&gamma, &beta, &state, false)
            .unwrap()
            .to_vec()
            .unwrap();
        let (m0, v0) = (before.0[0] as f64, before.1[0] as f64);
        let want = (xv[0] as f64 - m0) / (v0 + 1e-3).sqrt() * 1.5 + 0.25;
        assert!((e[0] as f64 - want).abs() < 1e-5);
        assert_eq!((rm.to_vec().unwrap(), rv.to_vec().unwrap()), before);
    }
}

#[test]
fn normalisations_on_gpu_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("normalisations_on_gpu_match_cpu");
    for shape in [vec![5, 3, 4, 4], vec![7, 9]] {
        let x = randn(&shape, &mut rng);
        let c = shape[1];
        let (gamma, beta) = (randn(&[c], &mut rng), randn(&[c], &mut rng));
        let run = |t: &[Tensor], training: bool| {
            let (rm, rv) = (t[3].detach().mul_scalar(1.0)?, t[3].abs()?.add_scalar(0.5)?);
            let state = BatchNormState {
                running_mean: &rm,
                running_var: &rv,
                momentum: 0.8,
                eps: 1e-3,
            };
            let y = t[0].batch_norm(&t[1], &t[2], &state, training)?;
            // The updated running statistics are checked along with the output.
            Tensor::concat(&[&y.flatten(0)?, &rm, &rv], 0)
        };
        let stats = randn(&[c], &mut rng);
        let inputs = [x.clone(), gamma, beta, stats];
        assert_gpu_matches_cpu("batch_norm train", &gpu, &inputs, RED, |t| run(t, true));
        assert_gpu_matches_cpu("batch_norm eval", &gpu, &inputs, RED, |t| run(t, false));
        assert_gpu_matches_cpu("pixel_norm", &gpu, &[x], RED, |t| t[0].pixel_norm());
    }
    let x = randn(&[8, 3, 4, 4], &mut rng);
    assert_gpu_matches_cpu("minibatch_stddev", &gpu, &[x], RED, |t| {
        t[0].minibatch_stddev(4)
    });
}

#[test]
fn fused_batch_norm_gradients_on_gpu_match_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("fused_batch_norm_gradients_on_gpu_match_cpu");
    // Odd sizes, a channel longer than one workgroup (2 x 13 x 11 = 286 > 256), 2-D input.
    for shape in [
        vec![5, 3, 4, 4],
        vec![2, 7, 13, 11],
        vec![7, 9],
        vec![300, 2],
    ] {
        let c = shape[1];
        let inputs = [
            randn(&shape, &mut rng),
            randn(&[c], &mut rng),
            randn(&[c], &mut rng),
            randn(&shape, &mut rng),
        ];
        for training in [true, false] {
            // d <y, w> / d (x, gamma, beta), concatenated, through the fused backward kernels.
            let grads = |t: &[Tensor]| -> ganlab::Result<Tensor> {
                let (rm, rv) = (
                    Tensor::zeros(&[c], &t[0].device())?,
                    Tensor::ones(&[c], &t[0].device())?,
                );
                let state = BatchNormState {
                    running_mean: &rm,
                    running_var: &rv,
                    momentum: 0.8,
                    eps: 1e-3,
                };
                let leaves: Vec<Tensor> = t[..3].iter().map(|v| v.detach().with_grad()).collect();
                let y = leaves[0].batch_norm(&leaves[1], &leaves[2], &state, training)?;
                let loss = y.mul(&t[3])?.sum_all()?;
                let g = ganlab::grad(&[loss], None, &leaves, false)?;
                let flat: Vec<Tensor> = g
                    .into_iter()
                    .map(|g| g.unwrap().flatten(0))
                    .collect::<ganlab::Result<_>>()?;
                Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)
            };
            let what = format!("batch_norm gradients {shape:?} training={training}");
            assert_gpu_matches_cpu(&what, &gpu, &inputs, RED, grads);
        }
    }
}

#[test]
fn minibatch_stddev_matches_a_direct_computation() {
    let mut rng = fresh_rng("minibatch_stddev_direct");
    let (n, c, h, w, g) = (8, 2, 3, 3, 4);
    let x = randn64(&[n, c, h, w], &mut rng);
    let y = x.minibatch_stddev(g).unwrap();
    assert_eq!(y.shape(), [n, c + 1, h, w]);
    let xv = x.to_vec_f64().unwrap();
    let yv = y.to_vec_f64().unwrap();
    let at = |i: usize, ch: usize, k: usize| xv[(i * c + ch) * h * w + k];
    for s in 0..n {
        // Sample s shares a group with s + (n/g) * j.
        let members: Vec<usize> = (0..g).map(|j| s % (n / g) + j * (n / g)).collect();
        let mut total = 0.0;
        for ch in 0..c {
            for k in 0..h * w {
                let vals: Vec<f64> = members.iter().map(|&i| at(i, ch, k)).collect();
                let m = vals.iter().sum::<f64>() / g as f64;
                total +=
                    (vals.iter().map(|v| (v - m).powi(2)).sum::<f64>() / g as f64 + 1e-8).sqrt();
            }
        }
        let want = total / (c * h * w) as f64;
        for k in 0..h * w {
            assert!((yv[(s * (c + 1) + c) * h * w + k] - want).abs() < 1e-12);
        }
        assert_eq!(yv[s * (c + 1) * h * w], xv[s * c * h * w]);
    }
}

#[test]
fn dropout_is_reproducible_identical_on_gpu_and_keeps_the_right_share() {
    let n = 200_000;
    let mask = dropout_mask(&[n], 0.25, 42, 7, &Device::Cpu)
        .unwrap()
        .to_vec()
        .unwrap();
    let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / n as f64;
    // Binomial std of the share is sqrt(0.75 * 0.25 / n) ~ 0.001: 5 sigma.
    assert!((kept - 0.75).abs() < 0.005, "kept {kept}");
    assert!(mask
        .iter()
        .all(|&m| m == 0.0 || (m - 1.0 / 0.75).abs() < 1e-6));
    assert_eq!(
        mask,
        dropout_mask(&[n], 0.25, 42, 7, &Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap()
    );
    assert_ne!(
        mask,
        dropout_mask(&[n], 0.25, 42, 8, &Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap()
    );
    assert_ne!(
        mask,
        dropout_mask(&[n], 0.25, 43, 7, &Device::Cpu)
            .unwrap()
            .to_vec()
            .unwrap()
    );
    // Eval mode is the identity; the backward pass uses the forward's mask.
    let x = cpu(&[1.0; 64], &[64]).with_grad();
    assert_eq!(
        x.dropout(0.5, false, 1, 0).unwrap().to_vec().unwrap(),
        vec![1.0; 64]
    );
    let y = x.dropout(0.5, true, 1, 0).unwrap();
    let g = grad(&[y.sum_all().unwrap()], None, &[x.clone()], false).unwrap()[0]
        .clone()
        .unwrap();
    assert_eq!(g.to_vec().unwrap(), y.to_vec().unwrap());
    if let Some(gpu) = gpu() {
        let on_gpu = dropout_mask(&[n], 0.25, 42, 7, &gpu)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(on_gpu, mask, "GPU and CPU masks differ");
    }
}

#[test]
fn fused_dropout_is_the_stored_mask_product_both_ways_on_both_devices() {
    let mut rng = fresh_rng("fused_dropout_is_the_stored_mask_product_both_ways_on_both_devices");
    let x = randn(&[3, 5, 7, 11], &mut rng);
    let w = randn(&[3, 5, 7, 11], &mut rng);
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let (x, w) = (x.to_device(device).unwrap(), w.to_device(device).unwrap());
        let mask = dropout_mask(x.shape(), 0.25, 9, 3, device).unwrap();
        let xl = x.detach().with_grad();
        let y = xl.dropout(0.25, true, 9, 3).unwrap();
        // The regenerated mask is the stored one, bit for bit, forward and backward.
        let want = x.mul(&mask).unwrap().to_vec().unwrap();
        assert_eq!(y.to_vec().unwrap(), want, "{device:?}");
        let loss = y.mul(&w).unwrap().sum_all().unwrap();
        let g = grad(&[loss], None, &[xl], false).unwrap()[0]
            .clone()
            .unwrap();
        let want = w.mul(&mask).unwrap().to_vec().unwrap();
        assert_eq!(g.to_vec().unwrap(), want, "{device:?}");
    }
}

#[test]
fn embedding_gathers_rows_and_sums_repeated_labels() {
    let table = cpu(&[0., 1., 10., 11., 20., 21.], &[3, 2]).with_grad();
    let labels = [2, 0, 2];
    let y = table.embedding(&labels).unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![20., 21., 0., 1., 20., 21.]);
    let w = cpu(&[1., 2., 3., 4., 5., 6.], &[3, 2]);
    let g = grad(
        &[y.mul(&w).unwrap().sum_all().unwrap()],
        None,
        &[table.clone()],
        false,
    )
    .unwrap()[0]
        .clone();
    // Row 2 is picked twice: its gradient is the sum of rows 0 and 2 of w.
    assert_eq!(g.unwrap().to_vec().unwrap(), vec![3., 4., 0., 0., 6., 8.]);
    assert!(table.embedding(&[3]).is_err());
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("embedding");
    let t = randn(&[10, 37], &mut rng);
    let labels: Vec<usize> = (0..64).map(|i| (i * 7) % 10).collect();
    assert_gpu_matches_cpu("embedding", &gpu, &[t.clone()], EW, |t| {
        t[0].embedding(&labels)
    });
    let gy = randn(&[64, 37], &mut rng);
    assert_gpu_matches_cpu("embedding grad", &gpu, &[t, gy], RED, |t| {
        let table = t[0].detach().with_grad();
        let y = table.embedding(&labels)?;
        Ok(grad(&[y], Some(&[t[1].clone()]), &[table], false)?[0]
            .clone()
            .unwrap())
    });
}

#[test]
fn bce_with_logits_gradient_is_sigmoid_minus_target_everywhere_on_both_devices() {
    // Exactly (sigmoid(x) - y) / n, at x = 0 too (where relu/abs subgradients once gave -y/n).
    let x = [0.0f32, 0.0, -3.0, 2.5, 90.0, -90.0];
    let y = [1.0f32, 0.0, 1.0, 0.0, 0.0, 1.0];
    let want: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(&x, &y)| (1.0 / (1.0 + (-f64::from(x)).exp()) - f64::from(y)) / 6.0)
        .collect();
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let xl = Tensor::from_vec(x.to_vec(), &[6, 1], device)
            .unwrap()
            .with_grad();
        let yt = Tensor::from_vec(y.to_vec(), &[6, 1], device).unwrap();
        let loss = xl.bce_with_logits(&yt).unwrap();
        let g = grad(&[loss], None, &[xl.clone()], false).unwrap()[0]
            .clone()
            .unwrap()
            .to_vec()
            .unwrap();
        assert_eq!(g[0], -0.5 / 6.0, "{device:?}");
        assert_eq!(g[1], 0.5 / 6.0, "{device:?}");
        for (got, want) in g.iter().zip(&want) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-7,
                "{device:?}: {g:?} vs {want:?}"
            );
        }
    }
}

#[test]
fn fused_bce_with_logits_on_gpu_matches_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("fused_bce_with_logits_on_gpu_matches_cpu");
    // Past one workgroup (256) and ragged; logits up to +-60.
    for n in [1, 7, 300, 1000] {
        let x = randn(&[n, 1], &mut rng).mul_scalar(20.0).unwrap();
        let y = Tensor::rand_uniform(&[n, 1], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
        // Each loss term, max(x, 0) - x y + log(1 + e^-|x|), is under 2 |x| + 1, and each
        // gradient, 3 (sigmoid(x) - y) / n, under 6 / n. Both cancel where y is near 1 and x
        // large: a bound relative to the result failed about one run in a thousand (n = 1).
        let terms = x
            .abs()
            .unwrap()
            .mul_scalar(2.0)
            .unwrap()
            .add_scalar(1.0)
            .unwrap();
        let loss_terms = terms.mean(&[0, 1], false).unwrap().to_vec_f64().unwrap();
        let inputs = [x, y];
        let (g, c) = gpu_and_cpu("bce_with_logits", &gpu, &inputs, |t| {
            t[0].bce_with_logits(&t[1])
        });
        assert_within_terms("bce_with_logits", &g, &c, &loss_terms, TERMS);
        let (g, c) = gpu_and_cpu("bce_with_logits grad", &gpu, &inputs, |t| {
            let xl = t[0].detach().with_grad();
            let loss = xl.bce_with_logits(&t[1])?.mul_scalar(3.0)?;
            Ok(grad(&[loss], None, &[xl], false)?[0].clone().unwrap())
        });
        let grad_terms = vec![6.0 / n as f64; n];
        assert_within_terms("bce_with_logits grad", &g, &c, &grad_terms, TERMS);
    }
}

#[test]
fn keras_bce_takes_one_minus_p_before_adding_eps() {
    // A saturated wrong prediction, clipped to 1 - eps. In f32, 1 + eps rounds to 1, so
    // (1 + eps) - p would give -ln(1.19e-7) = 15.94 instead of -ln((1 - p) + eps) = 15.33.
    let p32 = 1.0f32 - 1e-7;
    let want32 = -f64::from((1.0f32 - p32) + 1e-7f32).ln();
    let l = cpu(&[1.0], &[1])
        .bce(&cpu(&[0.0], &[1]))
        .unwrap()
        .item()
        .unwrap();
    assert!((f64::from(l) - want32).abs() < 1e-4, "{l} vs {want32}");
    // The f64 path uses eps = 1e-7 itself, not its f32 rounding.
    let p = Tensor::from_vec_f64(vec![1.0], &[1]).unwrap();
    let y = Tensor::from_vec_f64(vec![0.0], &[1]).unwrap();
    let l = p.bce(&y).unwrap().to_vec_f64().unwrap()[0];
    let want = -((1.0 - (1.0 - 1e-7)) + 1e-7f64).ln();
    assert!((l - want).abs() < 1e-12 * want, "{l} vs {want}");
}

#[test]
fn losses_match_their_formulas_and_stay_finite() {
    let logits = cpu(&[-200.0, -60.0, -1.0, 0.0, 2.0, 60.0, 300.0], &[7]);
    let target = cpu(&[1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0], &[7]);
    let l = logits.bce_with_logits(&target).unwrap().item().unwrap();
    let want: f64 = [
        (-200.0, 1.0),
        (-60.0, 0.0),
        (-1.0, 1.0),
        (0.0, 1.0),
        (2.0, 0.0),
        (60.0, 1.0),
        (300.0, 0.0),
    ]
    .iter()
    .map(|&(x, y): &(f64, f64)| x.max(0.0) - x * y + (1.0 + (-x.abs()).exp()).ln())
    .sum::<f64>()
        / 7.0;
    assert!((l as f64 - want).abs() < 1e-4 * want, "{l} vs {want}");
    let xl = logits.with_grad();
    let g = grad(
        &[xl.bce_with_logits(&target).unwrap()],
        None,
        &[xl.clone()],
        false,
    )
    .unwrap()[0]
        .clone()
        .unwrap();
    assert!(g.to_vec().unwrap().iter().all(|v| v.is_finite()));

    // Saturated probabilities: finite loss and gradient (Keras clipping).
    let p = cpu(&[0.0, 1.0, 1.0, 0.5], &[4]).with_grad();
    let y = cpu(&[1.0, 0.0, 1.0, 1.0], &[4]);
    let l = p.bce(&y).unwrap();
    assert!(l.item().unwrap().is_finite() && l.item().unwrap() > 7.0);
    let g = grad(&[l], None, &[p.clone()], false).unwrap()[0]
        .clone()
        .unwrap();
    assert!(g.to_vec().unwrap().iter().all(|v| v.is_finite()));
    let q = cpu(&[0.9, 0.2], &[2])
        .bce(&cpu(&[1.0, 0.0], &[2]))
        .unwrap()
        .item()
        .unwrap();
    let want = -((0.9f64 + 1e-7).ln() + (0.8f64 + 1e-7).ln()) / 2.0;
    assert!((q as f64 - want).abs() < 1e-6);

    let w = cpu(&[2.0, -3.0], &[2])
        .wasserstein(&cpu(&[-1.0, 1.0], &[2]))
        .unwrap()
        .item()
        .unwrap();
    assert_eq!(w, -2.5);
    let m = cpu(&[1.0, 3.0], &[2])
        .mse(&cpu(&[0.0, 1.0], &[2]))
        .unwrap()
        .item()
        .unwrap();
    assert_eq!(m, 2.5);
    assert!(cpu(&[1.0], &[1]).mse(&cpu(&[1.0, 2.0], &[2])).is_err());
}

#[test]
fn image_ops_pass_gradient_checks() {
    let mut rng = fresh_rng("image_ops_pass_gradient_checks");
    let x = randn64(&[2, 3, 4, 4], &mut rng);
    gradcheck(
        "upsample",
        &[randn64(&[2, 2, 3, 2], &mut rng)],
        |t| t[0].upsample_nearest2d(2),
        &mut rng,
    );
    gradgradcheck(
        "upsample",
        &[randn64(&[1, 2, 2, 3], &mut rng)],
        |t| t[0].upsample_nearest2d(2),
        &mut rng,
    );
    gradcheck("avg_pool2d", &[x.clone()], |t| t[0].avg_pool2d(2), &mut rng);
    gradgradcheck("avg_pool2d", &[x.clone()], |t| t[0].avg_pool2d(2), &mut rng);
    gradcheck("pixel_norm", &[x.clone()], |t| t[0].pixel_norm(), &mut rng);
    gradgradcheck(
        "pixel_norm",
        &[randn64(&[2, 3, 2, 2], &mut rng)],
        |t| t[0].pixel_norm(),
        &mut rng,
    );
    gradcheck(
        "minibatch_stddev",
        &[randn64(&[4, 2, 2, 2], &mut rng)],
        |t| t[0].minibatch_stddev(2),
        &mut rng,
    );
    gradgradcheck(
        "minibatch_stddev",
        &[randn64(&[4, 2, 2, 2], &mut rng)],
        |t| t[0].minibatch_stddev(4),
        &mut rng,
    );
    let bn = |t: &[Tensor]| {
        let (rm, rv) = (
            Tensor::from_vec_f64(vec![0.0; 3], &[3])?,
            Tensor::from_vec_f64(vec![1.0; 3], &[3])?,
        );
        let state = BatchNormState {
            running_mean: &rm,
            running_var: &rv,
            momentum: 0.8,
            eps: 1e-3,
        };
        t[0].batch_norm(&t[1], &t[2], &state, true)
    };
    let (gamma, beta) = (uniform64(&[3], 0.5, 1.5, &mut rng), randn64(&[3], &mut rng));
    gradcheck(
        "batch_norm 4-D",
        &[x.clone(), gamma.clone(), beta.clone()],
        bn,
        &mut rng,
    );
    gradcheck(
        "batch_norm 2-D",
        &[randn64(&[5, 3], &mut rng), gamma.clone(), beta.clone()],
        bn,
        &mut rng,
    );
    gradgradcheck(
        "batch_norm",
        &[randn64(&[4, 3, 2, 1], &mut rng), gamma, beta],
        bn,
        &mut rng,
    );
    gradcheck(
        "embedding",
        &[randn64(&[4, 3], &mut rng)],
        |t| t[0].embedding(&[1, 3, 1]),
        &mut rng,
    );
    let y01 = Tensor::from_vec_f64(vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0], &[6]).unwrap();
    let logits = randn64(&[6], &mut rng).mul_scalar(3.0).unwrap();
    gradcheck(
        "bce_with_logits",
        &[logits.clone()],
        |t| t[0].bce_with_logits(&y01),
        &mut rng,
    );
    gradgradcheck(
        "bce_with_logits",
        &[logits],
        |t| t[0].bce_with_logits(&y01),
        &mut rng,
    );
    gradcheck(
        "bce",
        &[uniform64(&[6], 0.05, 0.95, &mut rng)],
        |t| t[0].bce(&y01),
        &mut rng,
    );
    gradcheck(
        "wasserstein",
        &[randn64(&[6], &mut rng)],
        |t| t[0].wasserstein(&y01),
        &mut rng,
    );
    gradcheck(
        "mse",
        &[randn64(&[6], &mut rng)],
        |t| t[0].mse(&y01),
        &mut rng,
    );
}

/// A vanilla GAN discriminator with a sigmoid output trained to overconfidence: the Keras
/// probability BCE keeps loss and gradients finite.
#[test]
fn a_saturating_sigmoid_discriminator_trains_without_nan() {
    let mut rng = fresh_rng("saturating_sigmoid");
    let x = randn(&[16, 4], &mut rng);
    let y = cpu(
        &[1.0; 8]
            .iter()
            .chain(&[0.0; 8])
            .copied()
            .collect::<Vec<_>>(),
        &[16, 1],
    );
    let mut w = randn(&[4, 1], &mut rng).mul_scalar(50.0).unwrap();
    for _ in 0..50 {
        let wl = w.detach().with_grad();
        let loss = x
            .matmul(&wl)
            .unwrap()
            .mul_scalar(20.0)
            .unwrap()
            .sigmoid()
            .unwrap()
            .bce(&y)
            .unwrap();
        assert!(loss.item().unwrap().is_finite());
        let g = grad(&[loss], None, &[wl.clone()], false).unwrap()[0]
            .clone()
            .unwrap();
        assert!(g.to_vec().unwrap().iter().all(|v| v.is_finite()));
        w = wl.sub(&g.mul_scalar(10.0).unwrap()).unwrap().detach();
    }
}

#[test]
fn resampling_large_tensors_across_threads_matches_a_reference_loop() {
    // Large enough that the CPU kernels split the planes across threads.
    let mut rng = fresh_rng("resampling_large_tensors");
    let (n, c, h, w, f) = (8, 16, 12, 10, 3);
    let x = randn(&[n, c, h, w], &mut rng);
    let xv = x.to_vec().unwrap();
    let up = x.upsample_nearest2d(f).unwrap();
    assert_eq!(up.shape(), &[n, c, h * f, w * f]);
    let upv = up.to_vec().unwrap();
    let (bh, bw) = (h * f, w * f);
    for p in 0..n * c {
        for i in 0..bh {
            for j in 0..bw {
                assert_eq!(upv[(p * bh + i) * bw + j], xv[(p * h + i / f) * w + j / f]);
            }
        }
    }
    let y = randn(&[n, c, bh, bw], &mut rng);
    let yv = y.to_vec().unwrap();
    let sums = y.sum_pool2d(f).unwrap().to_vec().unwrap();
    for p in 0..n * c {
        for i in 0..h {
            for j in 0..w {
                let mut want = 0f32;
                for di in 0..f {
                    for dj in 0..f {
                        want += yv[(p * bh + i * f + di) * bw + j * f + dj];
                    }
                }
                assert_eq!(sums[(p * h + i) * w + j], want, "plane {p} ({i}, {j})");
            }
        }
    }
}
