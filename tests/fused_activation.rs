//! Activations folded into the kernel before them (a linear or convolution layer's GEMM store,
//! batch norm's normalise pass): the same values and gradients as the activation run as its
//! own op, on the CPU and on the GPU, first and second order; `Sequential` folds them, one
//! launch fewer per pair; and the binary accuracy the BCE kernel computes on the side.

mod common;

use common::{assert_gpu_matches_cpu, fresh_rng, gpu, gradcheck, gradgradcheck, randn, randn64};
use ganlab::device::AdapterRequest;
use ganlab::nn::{Activation, Ctx, Layer, Linear, Sequential};
use ganlab::ops::{BatchNormState, Padding};
use ganlab::{Device, Result, Rng, Tensor};

const ACTS: [Activation; 4] = [
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
];

/// An op that may fold an activation, on its three inputs.
type FoldingOp = Box<dyn Fn(&[Tensor], Option<Activation>) -> Result<Tensor>>;

/// The three folding ops on (x, w or gamma, b or beta), with the activation folded or run after.
fn ops() -> Vec<(&'static str, [Vec<usize>; 3], FoldingOp)> {
    vec![
        (
            "linear",
            [vec![5, 7], vec![6, 7], vec![6]],
            Box::new(|t: &[Tensor], act| t[0].linear_activated(&t[1], Some(&t[2]), act)),
        ),
        (
            "conv2d",
            [vec![2, 3, 5, 5], vec![4, 3, 3, 3], vec![4]],
            Box::new(|t: &[Tensor], act| {
                t[0].conv2d_activated(&t[1], Some(&t[2]), 2, Padding::Same, act)
            }),
        ),
        (
            "batch_norm",
            [vec![4, 3, 2, 2], vec![3], vec![3]],
            Box::new(|t: &[Tensor], act| {
                // Training statistics; running ones that momentum 1 leaves alone.
                let (mean, var) = (t[1].zeros_like()?, t[1].ones_like()?);
                let state = BatchNormState {
                    running_mean: &mean,
                    running_var: &var,
                    momentum: 1.0,
                    eps: 1e-3,
                };
                t[0].batch_norm_activated(&t[1], &t[2], &state, true, act)
            }),
        ),
    ]
}

#[test]
fn a_folded_activation_equals_the_activation_run_after_it_and_passes_gradient_checks() {
    let mut rng = fresh_rng("a_folded_activation_equals_the_activation_run_after_it");
    for (name, shapes, op) in ops() {
        let inputs: Vec<Tensor> = shapes.iter().map(|s| randn64(s, &mut rng)).collect();
        for act in ACTS {
            let what = format!("{name} + {act:?}");
            let fused = op(&inputs, Some(act)).unwrap();
            let after = act.apply(&op(&inputs, None).unwrap()).unwrap();
            let (f, a) = (fused.to_vec_f64().unwrap(), after.to_vec_f64().unwrap());
            for (x, y) in f.iter().zip(&a) {
                assert!(
                    (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                    "{what}: {x} vs {y}"
                );
            }
            gradcheck(&what, &inputs, |t| op(t, Some(act)), &mut rng);
            gradgradcheck(&what, &inputs, |t| op(t, Some(act)), &mut rng);
        }
    }
}

#[test]
fn a_folded_activation_on_the_gpu_matches_the_cpu_with_its_gradients() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("a_folded_activation_on_the_gpu_matches_the_cpu");
    for (name, shapes, op) in ops() {
        let mut inputs: Vec<Tensor> = shapes.iter().map(|s| randn(s, &mut rng)).collect();
        let out_shape = op(&inputs, None).unwrap().shape().to_vec();
        inputs.push(randn(&out_shape, &mut rng));
        for act in ACTS {
            // The output and the three input gradients, concatenated.
            let run = |t: &[Tensor]| -> Result<Tensor> {
                let leaves: Vec<Tensor> = t[..3].iter().map(|v| v.detach().with_grad()).collect();
                let y = op(&leaves, Some(act))?;
                let g = ganlab::grad(
                    std::slice::from_ref(&y),
                    Some(&[t[3].clone()]),
                    &leaves,
                    false,
                )?;
                let mut parts = vec![y.flatten(0)?];
                parts.extend(g.into_iter().map(|g| g.unwrap().flatten(0).unwrap()));
                Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
            };
            assert_gpu_matches_cpu(&format!("{name} + {act:?}"), &gpu, &inputs, 1e-5, run);
        }
    }
}

#[test]
fn a_leaky_relu_with_a_negative_slope_is_not_folded() {
    let mut rng = Rng::seed(4);
    let x = randn(&[3, 4], &mut rng);
    let (w, b) = (randn(&[2, 4], &mut rng), randn(&[2], &mut rng));
    // Its output's sign does not tell the input's: refused where asked for directly...
    assert!(x
        .linear_activated(&w, Some(&b), Some(Activation::LeakyRelu(-0.5)))
        .is_err());
    // ...and run as its own op by a Sequential.
    let net = Sequential::new()
        .layer(Linear::new(4, 2, &mut rng, &Device::Cpu).unwrap())
        .layer(Activation::LeakyRelu(-0.5));
    let y = net.forward(&x, &mut Ctx::new(0)).unwrap().to_vec().unwrap();
    let z = x
        .linear(
            &net_weight(&net, "0.weight"),
            Some(&net_weight(&net, "0.bias")),
        )
        .unwrap();
    let want = z.leaky_relu(-0.5).unwrap().to_vec().unwrap();
    assert_eq!(y, want);
}

fn net_weight(net: &Sequential, name: &str) -> Tensor {
    use ganlab::nn::Module;
    net.named_parameters("")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
}

#[test]
fn sequential_folds_an_activation_into_the_layer_before_it() {
    let device = Device::gpu_with(&AdapterRequest {
        backend: Some("noop".into()),
        ..Default::default()
    })
    .unwrap();
    let Device::Gpu(ctx) = &device else {
        unreachable!()
    };
    let mut rng = Rng::seed(2);
    let net = Sequential::new()
        .layer(Linear::new(8, 16, &mut rng, &device).unwrap())
        .layer(Activation::LeakyRelu(0.2))
        .layer(Linear::new(16, 4, &mut rng, &device).unwrap())
        .layer(Activation::Tanh)
        .layer(Activation::Relu);
    let x = Tensor::zeros(&[64, 8], &device).unwrap();
    let before = ctx.counters();
    net.forward(&x, &mut Ctx::new(0)).unwrap();
    // Two GEMMs with bias and activation in the store, then the second activation alone.
    assert_eq!(ctx.counters().since(&before).dispatches, 3);
}

#[test]
fn the_bce_kernel_reports_keras_binary_accuracy() {
    // Predicted class 1 where the logit is > 0 (sigmoid > 0.5), 0 at and below 0.
    let logits = vec![2.0, -1.0, 0.0, 0.5, -3.0, 1e-6];
    let targets = vec![1.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    // Right: 2.0 -> 1, 0.0 -> 0, -3.0 -> 0, 1e-6 -> 1; wrong: -1.0, 0.5.
    let want = 4.0 / 6.0;
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let x = Tensor::from_vec(logits.clone(), &[6, 1], device).unwrap();
        let y = Tensor::from_vec(targets.clone(), &[6, 1], device).unwrap();
        let (loss, acc) = x.bce_with_logits_accuracy(&y).unwrap();
        let acc = acc.item().unwrap();
        assert!((acc - want).abs() < 1e-6, "{device:?}: accuracy {acc}");
        assert!(!acc_requires_grad(&x, &y), "{device:?}");
        let plain = x.bce_with_logits(&y).unwrap().item().unwrap();
        assert_eq!(loss.item().unwrap(), plain, "{device:?}");
    }
}

fn acc_requires_grad(x: &Tensor, y: &Tensor) -> bool {
    let x = x.detach().with_grad();
    x.bce_with_logits_accuracy(y).unwrap().1.requires_grad()
}
