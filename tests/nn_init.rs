//! Initialisers: Keras' glorot-uniform limits (fans counted with the receptive field), zero
//! biases, embeddings U(-0.05, 0.05), batch norm's starting values, and the equalised learning
//! rate's N(0, 1) storage and run-time scale. Every bound here fails on a wrong scale.

mod common;

use common::{fresh_rng, mean_var};
use ganlab::nn::{
    BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Ctx, Embedding, Layer,
    Linear, WeightConfig, WeightInit,
};
use ganlab::ops::Padding;
use ganlab::{Device, Tensor};

/// U(-limit, limit): every value inside, the extremes reached, variance limit^2 / 3 within 6
/// standard errors (the sample variance of n uniform values has a relative standard error of
/// sqrt(4/5) / sqrt(n): 1% for the 8,192 weights of the smallest layer here), mean near 0.
fn assert_uniform(what: &str, t: &Tensor, limit: f64) {
    let v = t.to_vec().unwrap();
    let max = v.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
    assert!(max <= limit, "{what}: |w| reaches {max} > limit {limit}");
    assert!(
        max >= 0.98 * limit,
        "{what}: |w| only reaches {max}, limit {limit}"
    );
    let (mean, var) = mean_var(&v);
    let want = limit * limit / 3.0;
    let tolerance = 6.0 * (0.8f64).sqrt() / (v.len() as f64).sqrt();
    assert!(
        (var / want - 1.0).abs() < tolerance,
        "{what}: variance {var} vs {want} for U(-{limit}, {limit}) (tolerance {tolerance})"
    );
    assert!(mean.abs() < 0.03 * limit, "{what}: mean {mean}");
}

fn assert_zeros(what: &str, t: &Tensor) {
    assert!(t.to_vec().unwrap().iter().all(|&x| x == 0.0), "{what}");
}

#[test]
fn dense_weights_are_glorot_uniform_and_biases_zero() {
    let mut rng = fresh_rng("dense_weights_are_glorot_uniform_and_biases_zero");
    let layer = Linear::new(300, 200, &mut rng, &Device::Cpu).unwrap();
    assert_eq!(layer.weight().shape(), [200, 300]);
    assert_uniform("Linear(300, 200)", layer.weight(), (6.0f64 / 500.0).sqrt());
    assert_zeros("Linear bias", layer.bias().unwrap());
    assert_eq!(layer.weight_scale(), 1.0);
    assert!(layer.weight().requires_grad() && layer.bias().unwrap().requires_grad());
}

#[test]
fn conv_fans_count_the_receptive_field() {
    let mut rng = fresh_rng("conv_fans_count_the_receptive_field");
    let cpu = Device::Cpu;
    let conv = Conv2d::new(16, 32, 3, Conv2dConfig::default(), &mut rng, &cpu).unwrap();
    assert_eq!(conv.weight().shape(), [32, 16, 3, 3]);
    assert_uniform(
        "Conv2d(16, 32, 3)",
        conv.weight(),
        (6.0f64 / (16.0 * 9.0 + 32.0 * 9.0)).sqrt(),
    );
    assert_zeros("Conv2d bias", conv.bias().unwrap());

    let cfg = ConvTranspose2dConfig::default();
    let deconv = ConvTranspose2d::new(32, 16, 4, cfg, &mut rng, &cpu).unwrap();
    assert_eq!(deconv.weight().shape(), [32, 16, 4, 4]);
    assert_uniform(
        "ConvTranspose2d(32, 16, 4)",
        deconv.weight(),
        (6.0f64 / (32.0 * 16.0 + 16.0 * 16.0)).sqrt(),
    );
    assert_zeros("ConvTranspose2d bias", deconv.bias().unwrap());
}

#[test]
fn embeddings_are_uniform_005_and_batch_norm_starts_at_identity() {
    let mut rng = fresh_rng("embeddings_are_uniform_005_and_batch_norm_starts_at_identity");
    let emb = Embedding::new(100, 100, &mut rng, &Device::Cpu).unwrap();
    assert_uniform("Embedding(100, 100)", emb.weight(), 0.05);

    let bn = BatchNorm::new(5, &Device::Cpu).unwrap();
    let state = ganlab::nn::Module::named_parameters(&bn, "")
        .into_iter()
        .chain(ganlab::nn::Module::named_buffers(&bn, ""))
        .map(|(n, t)| (n, t.to_vec().unwrap()))
        .collect::<Vec<_>>();
    assert_eq!(
        state,
        [
            ("weight".to_string(), vec![1.0; 5]),
            ("bias".to_string(), vec![0.0; 5]),
            ("running_mean".to_string(), vec![0.0; 5]),
            ("running_var".to_string(), vec![1.0; 5]),
        ]
    );
}

#[test]
fn equalized_weights_are_standard_normal_scaled_at_run_time() {
    let mut rng = fresh_rng("equalized_weights_are_standard_normal_scaled_at_run_time");
    let cpu = Device::Cpu;
    let cfg = WeightConfig::default().init(WeightInit::equalized());
    let layer = Linear::with_config(256, 128, cfg, &mut rng, &cpu).unwrap();
    let (mean, var) = mean_var(&layer.weight().to_vec().unwrap());
    assert!(
        mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
        "N(0,1)? mean {mean} var {var}"
    );
    let scale = 2f32.sqrt() / 16.0; // gain sqrt(2), fan_in 256
    assert!((layer.weight_scale() / scale - 1.0).abs() < 1e-6);

    // The run-time weight is the stored one times the scale: one-hot inputs read its columns.
    let eye: Vec<f32> = (0..256 * 256)
        .map(|i| if i / 256 == i % 256 { 1.0 } else { 0.0 })
        .collect();
    let x = Tensor::from_vec(eye, &[256, 256], &cpu).unwrap();
    let y = layer
        .forward(&x, &mut Ctx::new(0))
        .unwrap()
        .to_vec()
        .unwrap();
    let w = layer.weight().to_vec().unwrap(); // [128, 256]
    for j in (0..256).step_by(37) {
        for o in (0..128).step_by(11) {
            let want = w[o * 256 + j] * scale;
            assert!((y[j * 128 + o] - want).abs() <= 1e-6 * want.abs().max(1.0));
        }
    }

    // The gain is an option (1 for toRGB and D's output), and conv fans include k*k.
    let rgb = Conv2dConfig::default().init(WeightInit::Equalized { gain: 1.0 });
    let to_rgb = Conv2d::new(8, 1, 1, rgb, &mut rng, &cpu).unwrap();
    assert!((to_rgb.weight_scale() - 1.0 / 8f32.sqrt()).abs() < 1e-7);
    let conv_cfg = Conv2dConfig::default()
        .init(WeightInit::equalized())
        .padding(Padding::symmetric(1));
    let conv = Conv2d::new(4, 6, 3, conv_cfg, &mut rng, &cpu).unwrap();
    let scale = 2f32.sqrt() / 36f32.sqrt();
    assert!((conv.weight_scale() / scale - 1.0).abs() < 1e-6);
    let x = Tensor::randn(&[2, 4, 5, 5], 0.0, 1.0, &mut rng, &cpu).unwrap();
    let got = conv.forward(&x, &mut Ctx::new(0)).unwrap();
    let want = x
        .conv2d(
            &conv.weight().mul_scalar(scale).unwrap(),
            conv.bias(),
            1,
            Padding::symmetric(1),
        )
        .unwrap();
    let err = common::rel_l2(&got.to_vec().unwrap(), &want.to_vec().unwrap());
    assert!(
        err < 1e-6,
        "equalised conv differs from conv with scaled weights: {err}"
    );
}
