//! Modules: dotted names of parameters and buffers, forward shapes, train/eval behaviour of
//! batch norm and dropout, GPU against CPU for a net using every layer, and the frozen
//! discriminator of the combined model.

mod common;

use common::{fresh_rng, gpu, rel_l2};
use ganlab::nn::{
    Activation, AvgPool2d, BatchNorm, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    Ctx, Dropout, Embedding, Flatten, FrozenNorm, Layer, Linear, MinibatchStdDev, Module,
    PixelNorm, Reshape, Sequential, Upsample, WeightConfig, ZeroPad2d,
};
use ganlab::optim::{Adam, Optimizer};
use ganlab::{grad, Device, Rng, Tensor};

fn names(list: &[(String, Tensor)]) -> Vec<&str> {
    list.iter().map(|(n, _)| n.as_str()).collect()
}

/// Every layer kind in one net, [N, 6] -> [N, 1]; built from `seed` so two devices get the
/// same values.
fn every_layer(seed: u64, device: &Device) -> Sequential {
    let mut rng = Rng::seed(seed);
    let same = Conv2dConfig::default().same();
    let block = Sequential::new()
        .named("up", Upsample(2))
        .named(
            "conv",
            Conv2d::new(8, 6, 3, same, &mut rng, device).unwrap(),
        )
        .named("bn", BatchNorm::new(6, device).unwrap().momentum(0.8))
        .named("act", Activation::Relu);
    Sequential::new()
        .named(
            "dense",
            Linear::new(6, 8 * 3 * 3, &mut rng, device).unwrap(),
        )
        .named("reshape", Reshape::new(&[8, 3, 3]))
        .named("block1", block) // 6x6
        .named("pad", ZeroPad2d::new(0, 1, 0, 1)) // 7x7
        .named(
            "down",
            Conv2d::new(6, 4, 3, same.stride(2), &mut rng, device).unwrap(),
        ) // 4x4
        .named("pool", AvgPool2d(2)) // 2x2
        .named("pixnorm", PixelNorm)
        .named("mbstd", MinibatchStdDev { group: 2 }) // 5 channels
        .named(
            "deconv",
            ConvTranspose2d::new(
                5,
                3,
                4,
                ConvTranspose2dConfig::default().stride(2).padding(1, 0),
                &mut rng,
                device,
            )
            .unwrap(),
        ) // 4x4
        .named("act", Activation::LeakyRelu(0.2))
        .named("flat", Flatten)
        .named("bn1d", BatchNorm::new(48, device).unwrap())
        .named("drop", Dropout::new(0.3).unwrap())
        .named("tanh", Activation::Tanh)
        .named("out", Linear::new(48, 1, &mut rng, device).unwrap())
        .named("sigmoid", Activation::Sigmoid)
}

#[test]
fn parameters_and_buffers_have_stable_dotted_names() {
    let net = every_layer(1, &Device::Cpu);
    let params = net.named_parameters("generator");
    assert_eq!(
        names(&params),
        [
            "generator.dense.weight",
            "generator.dense.bias",
            "generator.block1.conv.weight",
            "generator.block1.conv.bias",
            "generator.block1.bn.weight",
            "generator.block1.bn.bias",
            "generator.down.weight",
            "generator.down.bias",
            "generator.deconv.weight",
            "generator.deconv.bias",
            "generator.bn1d.weight",
            "generator.bn1d.bias",
            "generator.out.weight",
            "generator.out.bias",
        ]
    );
    let shapes: Vec<&[usize]> = params.iter().map(|(_, t)| t.shape()).collect();
    assert_eq!(shapes[0], [72, 6]); // PyTorch's [out, in]
    assert_eq!(shapes[2], [6, 8, 3, 3]);
    assert_eq!(shapes[8], [5, 3, 4, 4]); // transposed: [in, out, k, k]
    assert!(params.iter().all(|(_, t)| t.requires_grad()));
    let buffers = net.named_buffers("generator");
    assert_eq!(
        names(&buffers),
        [
            "generator.block1.bn.running_mean",
            "generator.block1.bn.running_var",
            "generator.bn1d.running_mean",
            "generator.bn1d.running_var",
        ]
    );
    assert!(buffers.iter().all(|(_, t)| !t.requires_grad()));
    // Unnamed layers are numbered, and a layer without bias has none.
    let mut rng = Rng::seed(2);
    let no_bias = WeightConfig::default().bias(false);
    let plain = Sequential::new()
        .layer(Linear::with_config(3, 4, no_bias, &mut rng, &Device::Cpu).unwrap())
        .layer(Activation::Relu)
        .layer(Linear::new(4, 2, &mut rng, &Device::Cpu).unwrap());
    assert_eq!(
        names(&plain.named_parameters("")),
        ["0.weight", "2.weight", "2.bias"]
    );
    assert_eq!(plain.parameters().len(), 3);
}

#[test]
fn forward_shapes_follow_keras() {
    let mut ctx = Ctx::new(0);
    let net = every_layer(3, &Device::Cpu);
    let x = Tensor::randn(&[4, 6], 0.0, 1.0, &mut Rng::seed(4), &Device::Cpu).unwrap();
    assert_eq!(net.forward(&x, &mut ctx).unwrap().shape(), [4, 1]);

    // Keras "same" with stride 2: 28 -> 14 -> 7; ZeroPadding (0,1),(0,1): 7 -> 8.
    let mut rng = Rng::seed(5);
    let cpu = Device::Cpu;
    let s2 = Conv2dConfig::default().same().stride(2);
    let d = Sequential::new()
        .layer(Conv2d::new(1, 2, 3, s2, &mut rng, &cpu).unwrap())
        .layer(Conv2d::new(2, 2, 3, s2, &mut rng, &cpu).unwrap())
        .layer(ZeroPad2d::new(0, 1, 0, 1));
    let img = Tensor::zeros(&[2, 1, 28, 28], &cpu).unwrap();
    assert_eq!(d.forward(&img, &mut ctx).unwrap().shape(), [2, 2, 8, 8]);

    let bad = Tensor::zeros(&[2, 5], &cpu).unwrap();
    let err = Linear::new(6, 3, &mut rng, &cpu)
        .unwrap()
        .forward(&bad, &mut ctx)
        .unwrap_err();
    assert!(err.to_string().contains("[.., 6]"), "{err}");
    assert!(Dropout::new(1.0).is_err() && Dropout::new(-0.1).is_err());
}

#[test]
fn batch_norm_trains_on_batch_statistics_and_infers_on_running_ones() {
    let cpu = Device::Cpu;
    let bn = BatchNorm::new(2, &cpu).unwrap().momentum(0.8);
    let mut ctx = Ctx::new(0);
    // Channel 0: 1, 2, 3, 6 (mean 3, biased var 3.5); channel 1: all 4 (var 0).
    let x = Tensor::from_vec(vec![1., 4., 2., 4., 3., 4., 6., 4.], &[4, 2], &cpu).unwrap();
    let y = bn.forward(&x, &mut ctx).unwrap().to_vec().unwrap();
    let inv = 1.0 / (3.5f32 + 1e-3).sqrt();
    let want = [-2.0 * inv, 0., -inv, 0., 0., 0., 3.0 * inv, 0.];
    for (g, w) in y.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "training output {y:?} vs {want:?}");
    }
    // 2-D input: the running variance takes the biased batch variance (Keras).
    let rm = bn.running_mean().to_vec().unwrap();
    let rv = bn.running_var().to_vec().unwrap();
    assert!(
        (rm[0] - 0.6).abs() < 1e-6 && (rm[1] - 0.8).abs() < 1e-6,
        "{rm:?}"
    );
    assert!(
        (rv[0] - 1.5).abs() < 1e-6 && (rv[1] - 0.8).abs() < 1e-6,
        "{rv:?}"
    );

    bn.set_training(false);
    let y = bn.forward(&x, &mut ctx).unwrap().to_vec().unwrap();
    for (i, g) in y.iter().enumerate() {
        let c = i % 2;
        let xv = x.to_vec().unwrap()[i];
        let want = (xv - rm[c]) / (rv[c] + 1e-3).sqrt();
        assert!(
            (g - want).abs() < 1e-5,
            "inference output {i}: {g} vs {want}"
        );
    }
    assert_eq!(
        bn.running_mean().to_vec().unwrap(),
        rm,
        "inference updated stats"
    );

    // 4-D input: the running variance takes the unbiased batch variance.
    let bn = BatchNorm::new(1, &cpu).unwrap().momentum(0.5);
    let x = Tensor::from_vec(vec![0., 2., 4., 6.], &[1, 1, 2, 2], &cpu).unwrap();
    bn.forward(&x, &mut ctx).unwrap();
    let unbiased = 20.0 / 3.0;
    let rv = bn.running_var().to_vec().unwrap()[0];
    assert!((rv - (0.5 + 0.5 * unbiased)).abs() < 1e-5, "{rv}");
}

#[test]
fn dropout_masks_in_training_and_is_the_identity_in_inference() {
    let cpu = Device::Cpu;
    let drop = Dropout::new(0.5).unwrap();
    let x = Tensor::ones(&[40, 100], &cpu).unwrap();
    let mut ctx = Ctx::new(9);
    let a = drop.forward(&x, &mut ctx).unwrap().to_vec().unwrap();
    assert!(
        a.iter().all(|&v| v == 0.0 || v == 2.0),
        "inverted dropout scales by 1/keep"
    );
    let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / a.len() as f64;
    assert!((dropped - 0.5).abs() < 0.05, "dropped {dropped}");
    // Each call draws a new mask; the same (seed, calls) draws the same one.
    let b = drop.forward(&x, &mut ctx).unwrap().to_vec().unwrap();
    assert_ne!(a, b);
    let again = drop
        .forward(&x, &mut Ctx::new(9))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(a, again);
    assert_eq!(ctx.state(), [9, 2]);

    drop.set_training(false);
    let c = drop.forward(&x, &mut ctx).unwrap().to_vec().unwrap();
    assert!(c.iter().all(|&v| v == 1.0));
    assert_eq!(ctx.state(), [9, 2], "inference draws no mask");
}

#[test]
fn embedding_looks_up_rows_and_scatters_gradients() {
    let mut rng = Rng::seed(11);
    let emb = Embedding::new(4, 3, &mut rng, &Device::Cpu).unwrap();
    let table = emb.weight().to_vec().unwrap();
    let rows = emb.lookup(&[2, 0, 2]).unwrap();
    assert_eq!(rows.shape(), [3, 3]);
    let r = rows.to_vec().unwrap();
    assert_eq!(&r[0..3], &table[6..9]);
    assert_eq!(&r[3..6], &table[0..3]);
    rows.sum_all().unwrap().backward().unwrap();
    let g = emb.weight().grad().unwrap().to_vec().unwrap();
    assert_eq!(g, [1., 1., 1., 0., 0., 0., 2., 2., 2., 0., 0., 0.]);
    assert!(emb.lookup(&[4]).is_err());
    assert_eq!(
        names(&emb.named_parameters("cgan.label")),
        ["cgan.label.weight"]
    );
}

#[test]
fn every_layer_on_the_gpu_matches_the_cpu_forward_and_backward() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("every_layer_on_the_gpu_matches_the_cpu_forward_and_backward");
    let x = Tensor::randn(&[4, 6], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
    let w = Tensor::randn(&[4, 1], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
    let run = |device: &Device| {
        let net = every_layer(7, device);
        let out = net
            .forward(&x.to_device(device).unwrap(), &mut Ctx::new(3))
            .unwrap();
        let loss = out
            .mul(&w.to_device(device).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        loss.backward().unwrap();
        let mut values = vec![("output".to_string(), out.to_vec().unwrap())];
        for (name, p) in net.named_parameters("") {
            values.push((format!("grad {name}"), p.grad().unwrap().to_vec().unwrap()));
        }
        for (name, b) in net.named_buffers("") {
            values.push((name, b.to_vec().unwrap()));
        }
        values
    };
    let (on_cpu, on_gpu) = (run(&Device::Cpu), run(&gpu));
    assert_eq!(on_cpu.len(), 19);
    // A bias right before a batch norm has a zero gradient in exact arithmetic (the norm
    // removes any per-channel constant): both devices hold rounding noise there.
    for ((name, c), (_, g)) in on_cpu.iter().zip(&on_gpu) {
        if name == "grad block1.conv.bias" {
            let max = c.iter().chain(g).fold(0f32, |m, v| m.max(v.abs()));
            assert!(max < 1e-5, "{name}: {max} is not rounding noise");
            continue;
        }
        let err = rel_l2(g, c);
        assert!(err <= 1e-4, "{name}: relative L2 error {err:e}");
    }
}

/// A small discriminator with batch norm and dropout.
fn bn_discriminator(rng: &mut Rng) -> Sequential {
    let cpu = Device::Cpu;
    Sequential::new()
        .layer(Linear::new(4, 8, rng, &cpu).unwrap())
        .layer(BatchNorm::new(8, &cpu).unwrap().momentum(0.8))
        .layer(Activation::LeakyRelu(0.2))
        .layer(Dropout::new(0.5).unwrap())
        .layer(Linear::new(8, 1, rng, &cpu).unwrap())
        .layer(Activation::Sigmoid)
}

/// Every parameter and buffer of `m`, in order.
fn state_of(m: &Sequential) -> Vec<Vec<f32>> {
    m.named_parameters("")
        .iter()
        .chain(&m.named_buffers(""))
        .map(|(_, t)| t.to_vec().unwrap())
        .collect()
}

/// The combined model's G step as Keras 2.3 on TF1 ran it: D frozen, but its batch norm
/// normalises with the batch (the learning phase of `train_on_batch`); nothing of D changes.
#[test]
fn a_tf1_frozen_discriminator_normalises_with_the_batch_and_keeps_its_state() {
    let cpu = Device::Cpu;
    let mut rng = Rng::seed(22);
    let d = bn_discriminator(&mut rng);
    let mut ctx = Ctx::new(5);
    d.forward(
        &Tensor::randn(&[6, 4], 1.0, 2.0, &mut rng, &cpu).unwrap(),
        &mut ctx,
    )
    .unwrap();
    let before = state_of(&d);
    let x = Tensor::randn(&[6, 4], 0.0, 1.0, &mut rng, &cpu)
        .unwrap()
        .with_grad();
    let (x1, x2) = (
        Tensor::randn(&[1, 4], 0.0, 1.0, &mut rng, &cpu).unwrap(),
        Tensor::randn(&[1, 4], 5.0, 1.0, &mut rng, &cpu).unwrap(),
    );
    {
        let _frozen = d.freeze_with(FrozenNorm::Batch);
        let out = d.forward(&x, &mut ctx).unwrap().sum_all().unwrap();
        let gx = grad(&[out], None, std::slice::from_ref(&x), false).unwrap()[0].clone();
        assert!(gx.is_some(), "no gradient reached the input");
        assert!(d.parameters().iter().all(|p| p.grad().is_none()));
        // A sample's output depends on the rest of its batch (same dropout stream for both).
        let first = |other: &Tensor, ctx: &mut Ctx| {
            let batch = Tensor::concat(&[&x.detach().narrow(0, 0, 1).unwrap(), other], 0).unwrap();
            d.forward(&batch, ctx).unwrap().to_vec().unwrap()[0]
        };
        assert_ne!(first(&x1, &mut ctx.clone()), first(&x2, &mut ctx.clone()));
    }
    assert_eq!(state_of(&d), before, "the frozen forward changed D");
    assert!(d.parameters().iter().all(Tensor::requires_grad));
}

/// The combined model's G step: D frozen as Keras' `trainable = False` leaves it.
#[test]
fn a_frozen_discriminator_passes_gradients_to_g_and_keeps_its_state() {
    let cpu = Device::Cpu;
    let mut rng = Rng::seed(21);
    let d = bn_discriminator(&mut rng);
    let g = Sequential::new()
        .layer(Linear::new(3, 4, &mut rng, &cpu).unwrap())
        .layer(Activation::Tanh);
    let mut ctx = Ctx::new(5);
    // A D step first, so the running statistics are not their defaults.
    let real = Tensor::randn(&[6, 4], 1.0, 2.0, &mut rng, &cpu).unwrap();
    d.forward(&real, &mut ctx).unwrap();
    let d_before = state_of(&d);
    let g_before = state_of(&g);
    let mut opt_g = Optimizer::new(Adam::default(), 0.01, g.named_parameters("g")).unwrap();

    let z = Tensor::randn(&[6, 3], 0.0, 1.0, &mut rng, &cpu).unwrap();
    {
        let _frozen = d.freeze();
        let fake = g.forward(&z, &mut ctx).unwrap();
        let out = d.forward(&fake, &mut ctx).unwrap();
        let loss = out.bce(&out.ones_like().unwrap()).unwrap();
        opt_g.zero_grad();
        loss.backward().unwrap();
        assert!(
            d.parameters().iter().all(|p| p.grad().is_none()),
            "D got gradients"
        );
        for p in g.parameters() {
            let gv = p
                .grad()
                .expect("G got no gradient through D")
                .to_vec()
                .unwrap();
            assert!(gv.iter().any(|&v| v != 0.0));
        }
        opt_g.step().unwrap();

        // Frozen batch norm normalises with the running statistics: a sample's output does not
        // depend on the rest of its batch (same dropout stream for both calls).
        let (x0, x1, x2) = (
            Tensor::randn(&[1, 4], 0.0, 1.0, &mut rng, &cpu).unwrap(),
            Tensor::randn(&[1, 4], 0.0, 1.0, &mut rng, &cpu).unwrap(),
            Tensor::randn(&[1, 4], 5.0, 1.0, &mut rng, &cpu).unwrap(),
        );
        let first = |other: &Tensor, ctx: &mut Ctx| {
            let batch = Tensor::concat(&[&x0, other], 0).unwrap();
            d.forward(&batch, ctx).unwrap().to_vec().unwrap()[0]
        };
        assert_eq!(first(&x1, &mut ctx.clone()), first(&x2, &mut ctx.clone()));
        // Dropout stays on: the next call draws another mask.
        let twice: Vec<f32> = (0..2).map(|_| first(&x1, &mut ctx)).collect();
        assert_ne!(twice[0], twice[1], "dropout was off in the frozen D");
    }
    assert_eq!(
        state_of(&d),
        d_before,
        "the G step changed D's weights or statistics"
    );
    assert_ne!(state_of(&g), g_before, "the G step did not change G");

    // Unfrozen again: parameters want gradients and batch norm uses batch statistics.
    assert!(d.parameters().iter().all(Tensor::requires_grad));
    let x = Tensor::randn(&[2, 4], 0.0, 1.0, &mut rng, &cpu).unwrap();
    let y = Tensor::randn(&[2, 4], 3.0, 1.0, &mut rng, &cpu).unwrap();
    let row0 = |other: &Tensor| {
        let batch = Tensor::concat(&[&x.narrow(0, 0, 1).unwrap(), other], 0).unwrap();
        d.forward(&batch, &mut Ctx::new(1))
            .unwrap()
            .to_vec()
            .unwrap()[0]
    };
    assert_ne!(
        row0(&x.narrow(0, 1, 1).unwrap()),
        row0(&y.narrow(0, 1, 1).unwrap())
    );
    assert_ne!(
        state_of(&d),
        d_before,
        "training mode stopped updating running stats"
    );
}

#[test]
fn gradients_reach_the_input_through_a_frozen_module() {
    let cpu = Device::Cpu;
    let mut rng = Rng::seed(8);
    let d = Linear::new(3, 1, &mut rng, &cpu).unwrap();
    let x = Tensor::randn(&[2, 3], 0.0, 1.0, &mut rng, &cpu)
        .unwrap()
        .with_grad();
    let _frozen = d.freeze();
    let out = d.forward(&x, &mut Ctx::new(0)).unwrap().sum_all().unwrap();
    let gx = grad(&[out], None, std::slice::from_ref(&x), false).unwrap()[0]
        .clone()
        .unwrap()
        .to_vec()
        .unwrap();
    let w = d.weight().to_vec().unwrap();
    assert_eq!(gx, [w.clone(), w].concat(), "d sum(x W^T) / dx = W per row");
    // Freezes nest: the inner guard restores the outer frozen state.
    drop(d.freeze());
    assert!(!d.weight().requires_grad());
}

#[test]
fn zero_grad_clears_every_parameter() {
    let mut rng = Rng::seed(1);
    let net = every_layer(1, &Device::Cpu);
    let x = Tensor::randn(&[4, 6], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
    net.forward(&x, &mut Ctx::new(0))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(net.parameters().iter().all(|p| p.grad().is_some()));
    net.zero_grad();
    assert!(net.parameters().iter().all(|p| p.grad().is_none()));
}
