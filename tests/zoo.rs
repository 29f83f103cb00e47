//! The rest of the zoo: conditional GAN, WGAN, WGAN-GP and the toy runs. Each trains with
//! finite losses and moves its parameters; the conditioning is the book's product; the clip
//! bound holds after every critic step; the gradient penalty's parameter gradient matches
//! finite differences; WGAN-GP covers the toy ring's modes.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads best in tests

mod common;

use common::{fresh_rng, randn64, uniform64};
use ganlab::data::{self, LoadOptions};
use ganlab::eval::toy::ToyEval;
use ganlab::models::wasserstein::{critic_loss, gradient_penalty};
use ganlab::models::{self, wgan, Options};
use ganlab::models::{RunState, Trainable};
use ganlab::nn::{Ctx, Layer, Module};
use ganlab::ops::Padding;
use ganlab::train::trainer::{fixed_inputs, seeded_noise, train_with_eval, Evaluator};
use ganlab::train::TrainConfig;
use ganlab::{grad, Device, Rng, Tensor};

/// Every parameter and buffer of a network, by name.
fn snapshot(prefix: &str, net: &dyn Module) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    net.visit_state(prefix, &mut |name, _, t| {
        out.push((name, t.to_vec().unwrap()))
    });
    out
}

fn images(b: usize, rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(&[b, 1, 28, 28], -1.0, 1.0, rng, &Device::Cpu).unwrap()
}

fn assert_finite(kind: &str, metrics: &[Tensor]) {
    for m in metrics {
        let v = m.item().unwrap();
        assert!(v.is_finite(), "{kind}: non-finite metric {v}");
    }
}

/// Every parameter changed, except WGAN-GP's critic output bias: its one update on
/// E[D(fake)] - E[D(real)] + penalty does not depend on it (it cancels, and the penalty sees
/// only the input gradient). WGAN's separate real and fake updates do move it.
fn assert_all_moved(kind: &str, before: &[(String, Vec<f32>)], after: &[(String, Vec<f32>)]) {
    assert_eq!(before.len(), after.len());
    for ((name, old), (_, new)) in before.iter().zip(after) {
        if kind == "wgan-gp" && name == "critic.out.bias" {
            assert_eq!(old, new, "{kind}: the critic's output bias has no gradient");
            continue;
        }
        assert_ne!(old, new, "{kind}: {name} did not change");
    }
}

#[test]
fn cgan_multiplies_the_label_embedding_into_z_and_into_the_flat_image() {
    let mut rng = fresh_rng("cgan_embedding");
    let model = models::book("cgan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    let mut ctx = Ctx::new(0);
    let labels = [3usize, 7, 0];
    for (net, width, input) in [
        (
            &model.generator,
            100,
            Tensor::randn(&[3, 100], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap(),
        ),
        (&model.discriminator, 784, images(3, &mut rng)),
    ] {
        net.set_training(false);
        let got = net
            .forward_labeled(&input, Some(&labels), &mut ctx)
            .unwrap()
            .to_vec()
            .unwrap();
        // By hand: the embedding table's rows for the labels, times the flat input.
        let table = net.embedding.as_ref().unwrap().weight().to_vec().unwrap();
        assert_eq!(table.len(), 10 * width, "Embedding(10, {width})");
        let flat = input.to_vec().unwrap();
        let product: Vec<f32> = (0..3)
            .flat_map(|i| (0..width).map(move |j| (i, j)))
            .map(|(i, j)| flat[i * width + j] * table[labels[i] * width + j])
            .collect();
        let x = Tensor::from_vec(product, &[3, width], &Device::Cpu).unwrap();
        let want = net.body.forward(&x, &mut ctx).unwrap().to_vec().unwrap();
        assert_eq!(got, want);
        // A conditional network refuses to run without labels.
        let err = net.forward(&input, &mut ctx).unwrap_err().to_string();
        assert!(err.contains("label"), "{err}");
    }
}

#[test]
fn cgan_trains_and_its_labels_steer_the_generator() {
    let mut rng = fresh_rng("cgan_trains");
    let mut model = models::book("cgan", &mut Rng::seed(2), &Device::Cpu).unwrap();
    assert!(model.is_conditional());
    let before = [
        snapshot("generator", &model.generator),
        snapshot("discriminator", &model.discriminator),
    ]
    .concat();
    for _ in 0..3 {
        let labels: Vec<usize> = (0..8).map(|_| rng.below(10)).collect();
        let metrics = model
            .train_step(&images(8, &mut rng), &labels, &mut rng)
            .unwrap();
        assert_finite("cgan", &metrics);
    }
    let after = [
        snapshot("generator", &model.generator),
        snapshot("discriminator", &model.discriminator),
    ]
    .concat();
    // Both embeddings included: they are trained like every other weight.
    assert!(after
        .iter()
        .any(|(n, _)| n == "generator.label_embedding.weight"));
    assert_all_moved("cgan", &before, &after);

    // Same noise, different labels: different images; same labels: the same images.
    let z = seeded_noise(5, 2, model.z_dim(), &Device::Cpu).unwrap();
    let a = model.sample(&z, Some(&[1, 1])).unwrap().to_vec().unwrap();
    let b = model.sample(&z, Some(&[1, 8])).unwrap().to_vec().unwrap();
    assert_eq!(a[..784], b[..784]);
    assert_ne!(a[784..], b[784..]);

    // The training grids put one class per row: 10 rows of 5.
    let (z, labels) = fixed_inputs(&model, 0).unwrap();
    let want: Vec<usize> = (0..50).map(|i| i / 5).collect();
    assert_eq!(labels.unwrap(), want);
    assert_eq!(z.shape(), [50, 100]);
}

fn max_abs(params: &[Tensor]) -> f32 {
    params
        .iter()
        .flat_map(|p| p.to_vec().unwrap())
        .fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn wgan_clips_every_critic_weight_after_every_critic_step() {
    let mut rng = fresh_rng("wgan_clip");
    let mut model = wgan::build(&mut Rng::seed(3), &Device::Cpu).unwrap();
    // Glorot initialisation puts most weights outside [-0.01, 0.01].
    assert!(max_abs(&model.critic.parameters()) > 0.05);
    let before = [
        snapshot("generator", &model.generator),
        snapshot("critic", &model.critic),
    ]
    .concat();
    // One critic step per train_step, so the bound is seen after each critic update.
    model.n_critic = 1;
    for _ in 0..3 {
        let metrics = model
            .train_step(&images(4, &mut rng), &[0; 4], &mut rng)
            .unwrap();
        assert_finite("wgan", &metrics);
        let m = max_abs(&model.critic.parameters());
        assert!(m <= 0.01, "a critic weight is {m} after a critic step");
        assert!(
            m > 0.009,
            "clipping leaves weights at the bound, max is {m}"
        );
    }
    // With the book's five critic steps per generator step (five batches stacked), each two
    // updates (real, then fake) as the book's two train_on_batch calls.
    model.n_critic = wgan::N_CRITIC;
    assert_eq!(model.batches_per_step(), 5);
    let updates = model.opt_c.steps();
    let metrics = model
        .train_step(&images(20, &mut rng), &[0; 20], &mut rng)
        .unwrap();
    assert_eq!(model.opt_c.steps() - updates, 10);
    assert_eq!(model.opt_g.steps(), 4);
    assert_eq!(
        model.metric_names(),
        ["critic_loss", "g_loss", "w_distance"]
    );
    assert_finite("wgan", &metrics);
    // The Wasserstein estimate is the critic loss negated.
    assert_eq!(metrics[2].item().unwrap(), -metrics[0].item().unwrap());
    assert!(max_abs(&model.critic.parameters()) <= 0.01);
    let after = [
        snapshot("generator", &model.generator),
        snapshot("critic", &model.critic),
    ]
    .concat();
    assert_all_moved("wgan", &before, &after);
}

#[test]
fn the_critic_loss_is_fake_minus_real() {
    let real = Tensor::from_vec(vec![1.0, 3.0], &[2, 1], &Device::Cpu).unwrap();
    let fake = Tensor::from_vec(vec![-2.0, 0.0, 1.0], &[3, 1], &Device::Cpu).unwrap();
    // mean(y * D) with y = -1 on reals and +1 on fakes: -2 + (-1/3).
    let loss = critic_loss(&real, &fake).unwrap().item().unwrap();
    assert!((loss - (-1.0 / 3.0 - 2.0)).abs() < 1e-6, "{loss}");
}

#[test]
fn wgan_gp_critic_has_no_batch_norm_and_trains() {
    let mut rng = fresh_rng("wgan_gp_trains");
    let mut model = wgan::build_gp(&mut Rng::seed(4), &Device::Cpu).unwrap();
    assert!(
        model.critic.named_buffers("").is_empty(),
        "running statistics in the critic"
    );
    assert!(
        model.generator.named_buffers("").len() >= 4,
        "G keeps its batch norms"
    );
    let before = [
        snapshot("generator", &model.generator),
        snapshot("critic", &model.critic),
    ]
    .concat();
    model.n_critic = 2;
    let metrics = model
        .train_step(&images(8, &mut rng), &[0; 8], &mut rng)
        .unwrap();
    // One update per critic step on the whole loss (the paper's Algorithm 1).
    assert_eq!(model.opt_c.steps(), 2);
    // A batch that does not split into n_critic batches is refused.
    let err = model
        .train_step(&images(7, &mut rng), &[0; 7], &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("n_critic"), "{err}");
    assert_eq!(
        model.metric_names(),
        ["critic_loss", "gp", "g_loss", "w_distance"]
    );
    assert_finite("wgan-gp", &metrics);
    let [loss, gp, _, w] = [0, 1, 2, 3].map(|i| metrics[i].item().unwrap());
    assert!(gp > 0.0, "the penalty is a squared distance");
    // The critic's loss is the penalty plus the Wasserstein loss, -w.
    assert!(
        (loss - (gp - w)).abs() < 1e-5 * (1.0 + loss.abs()),
        "{loss} vs {gp} - {w}"
    );
    let after = [
        snapshot("generator", &model.generator),
        snapshot("critic", &model.critic),
    ]
    .concat();
    assert_all_moved("wgan-gp", &before, &after);
}

#[test]
fn gradient_penalty_of_a_linear_critic_is_exact() {
    // D(x) = <w, x>: its input gradient is w everywhere, so the penalty is lambda *
    // (||w|| - 1)^2 and its gradient 2 lambda (||w|| - 1) w / ||w||, whatever the samples.
    let mut rng = fresh_rng("penalty_linear");
    let (real, fake) = (
        randn64(&[3, 1, 2, 2], &mut rng),
        randn64(&[3, 1, 2, 2], &mut rng),
    );
    let eps = uniform64(&[3, 1, 1, 1], 0.0, 1.0, &mut rng);
    let w = randn64(&[4, 1], &mut rng).with_grad();
    let mut critic = |x: &Tensor| x.flatten(1)?.matmul(&w);
    let gp = gradient_penalty(&mut critic, &real, &fake, &eps, 10.0).unwrap();
    let wv = w.to_vec_f64().unwrap();
    let norm = wv.iter().map(|v| v * v).sum::<f64>().sqrt();
    let value = gp.to_vec_f64().unwrap()[0];
    assert!(
        (value - 10.0 * (norm - 1.0).powi(2)).abs() < 1e-9,
        "{value}"
    );
    let g = grad(&[gp], None, &[w.clone()], false).unwrap()[0]
        .clone()
        .unwrap()
        .to_vec_f64()
        .unwrap();
    for (gi, wi) in g.iter().zip(&wv) {
        let want = 20.0 * (norm - 1.0) * wi / norm;
        assert!((gi - want).abs() < 1e-9, "{gi} vs {want}");
    }
}

#[test]
fn gradient_penalty_parameter_gradient_matches_finite_differences() {
    // A tiny conv critic in f64: conv 3x3 stride 2, LeakyReLU, dense. The penalty's gradient
    // with respect to the critic's weights goes through the input gradient (double backward).
    let mut rng = fresh_rng("penalty_fd");
    let real = randn64(&[3, 1, 5, 5], &mut rng);
    let fake = randn64(&[3, 1, 5, 5], &mut rng);
    let eps = uniform64(&[3, 1, 1, 1], 0.0, 1.0, &mut rng);
    let params = vec![
        randn64(&[2, 1, 3, 3], &mut rng),
        randn64(&[2], &mut rng),
        randn64(&[18, 1], &mut rng),
    ];
    let penalty = |p: &[Tensor]| -> Tensor {
        let mut critic = |x: &Tensor| {
            x.conv2d(&p[0], Some(&p[1]), 2, Padding::Same)?
                .leaky_relu(0.2)?
                .flatten(1)?
                .matmul(&p[2])
        };
        gradient_penalty(&mut critic, &real, &fake, &eps, 10.0).unwrap()
    };
    let leaves: Vec<Tensor> = params.iter().map(|t| t.detach().with_grad()).collect();
    let analytic = grad(&[penalty(&leaves)], None, &leaves, false).unwrap();
    // The conv bias only picks LeakyReLU's slope, so the penalty is flat in it (autograd
    // gives None, checked as zero against the differences below).
    assert!(analytic[0].is_some() && analytic[2].is_some());
    let loss = |ps: &[Tensor]| penalty(ps).to_vec_f64().unwrap()[0];
    common::compare_with_fd(
        "gradient penalty of a conv critic",
        &params,
        &analytic,
        &loss,
        1e-6,
        1e-6,
    );
}

#[test]
fn toy_models_save_and_load_by_kind() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    for name in ["gan", "wgan", "wgan-gp"] {
        let mut model = models::build(
            name,
            "toy-ring",
            &Options::default(),
            &mut Rng::seed(5),
            &dev,
        )
        .unwrap();
        let real = Tensor::randn(
            &[4 * model.batches_per_step(), 2],
            0.0,
            1.0,
            &mut Rng::seed(6),
            &dev,
        )
        .unwrap();
        assert_finite(
            name,
            &model.train_step(&real, &[0; 4], &mut Rng::seed(7)).unwrap(),
        );
        let path = dir.path().join(format!("{name}.safetensors"));
        let state = RunState {
            step: 1,
            rng: Rng::seed(8).state(),
            ..RunState::default()
        };
        model.save_checkpoint(&path, &state).unwrap();
        let mut loaded = models::load(&path, &dev).unwrap();
        let z = seeded_noise(9, 16, model.z_dim(), &dev).unwrap();
        let want = model.sample(&z, None).unwrap();
        assert_eq!(want.shape(), [16, 2]);
        assert_eq!(
            loaded.sample(&z, None).unwrap().to_vec().unwrap(),
            want.to_vec().unwrap(),
            "{name}-toy-ring after load"
        );
    }
    // A conditional checkpoint comes back conditional.
    let model = models::book("cgan", &mut Rng::seed(5), &dev).unwrap();
    let path = dir.path().join("cgan.safetensors");
    let state = RunState {
        step: 0,
        rng: Rng::seed(8).state(),
        ..RunState::default()
    };
    model.save_checkpoint(&path, &state).unwrap();
    assert!(models::load(&path, &dev).unwrap().is_conditional());
}

#[test]
fn the_torch_loop_reaches_the_toy_gan_and_is_refused_where_it_means_nothing() {
    let dev = Device::Cpu;
    let torch = Options {
        style: models::LoopStyle::Torch,
        ..Options::default()
    };
    // The same toy GAN and batch: the Keras loop (two D updates) and the Torch loop (one on
    // the summed loss) leave different discriminators, so the G step's loss differs.
    let g_loss = |opts: &Options| {
        let mut model = models::build("gan", "toy-ring", opts, &mut Rng::seed(3), &dev).unwrap();
        let real = Tensor::randn(&[8, 2], 0.0, 1.0, &mut Rng::seed(4), &dev).unwrap();
        let metrics = model.train_step(&real, &[0; 8], &mut Rng::seed(5)).unwrap();
        metrics.last().unwrap().item().unwrap()
    };
    assert_ne!(g_loss(&Options::default()), g_loss(&torch));
    for (name, data) in [
        ("wgan", "mnist"),
        ("wgan-gp", "toy-ring"),
        ("progan", "mnist"),
    ] {
        let err = models::build(name, data, &torch, &mut Rng::seed(3), &dev)
            .err()
            .unwrap_or_else(|| panic!("{name} on {data} accepted the torch loop"));
        assert!(err.to_string().contains("own training loop"), "{err}");
    }
}

#[test]
fn wgan_gp_covers_the_toy_ring() {
    let data = data::load("toy-ring", &LoadOptions::default()).unwrap();
    let data::Entry::Toy(spec) = data::registry::lookup("toy-ring").unwrap() else {
        panic!("toy-ring is a toy set")
    };
    let dir = tempfile::tempdir().unwrap();
    let mut model = models::build(
        "wgan-gp",
        "toy-ring",
        &Options::default(),
        &mut Rng::seed(0),
        &Device::Cpu,
    )
    .unwrap();
    let steps = STEPS;
    let cfg = TrainConfig {
        steps,
        batch_size: 256,
        sample_every: steps,
        checkpoint_every: steps,
        log_every: 100,
        seed: 0,
        out_dir: dir.path().to_path_buf(),
        resume: false,
        sampling: ganlab::data::Sampling::WithReplacement,
        progress: false,
        eval_every: steps,
        settings: String::new(),
    };
    let mut eval = ToyEval {
        spec: spec.clone(),
        data: data.test.all_values().into_owned(),
        out_dir: dir.path().to_path_buf(),
        device: Device::Cpu,
    };
    let start = std::time::Instant::now();
    train_with_eval(
        &mut *model,
        &data.train,
        &cfg,
        Some(&mut eval as &mut dyn Evaluator),
    )
    .unwrap();
    let cov = spec.mode_coverage(&eval.samples(&mut *model).unwrap());
    println!(
        "{steps} steps in {:.1} s: {} modes, {:.1}% high quality, per mode {:?}",
        start.elapsed().as_secs_f64(),
        cov.modes_covered,
        100.0 * cov.high_quality_share,
        cov.per_mode
    );
    assert!(
        cov.modes_covered >= 6,
        "WGAN-GP covered {} of 8 modes",
        cov.modes_covered
    );
    assert!(dir.path().join(format!("toy_step_{steps:07}.png")).exists());
}

/// Steps of batch 256 (about 50 s on 2 cores): the seeded run covers all 8 modes from step
/// 3,500 on, so the bound of 6 leaves room for another machine's rounding.
const STEPS: u64 = 4000;

#[test]
fn gpu_and_cpu_agree_on_the_first_steps() {
    let Some(gpu) = common::gpu() else { return };
    for kind in ["cgan", "wgan", "wgan-gp"] {
        // Same seed: same weights (drawn on the host), batches, noise, labels and dropout.
        let run = |device: &Device| -> Vec<f32> {
            let mut model = models::build(
                kind,
                "mnist",
                &Options::default(),
                &mut Rng::seed(5),
                device,
            )
            .unwrap();
            let mut rng = Rng::seed(6);
            let b = 4 * model.batches_per_step();
            let mut out = Vec::new();
            for _ in 0..2 {
                let real =
                    Tensor::rand_uniform(&[b, 1, 28, 28], -1.0, 1.0, &mut rng, device).unwrap();
                let labels: Vec<usize> = (0..b).map(|i| i % 10).collect();
                for m in model.train_step(&real, &labels, &mut rng).unwrap() {
                    out.push(m.item().unwrap());
                }
            }
            out
        };
        let (c, g) = (run(&Device::Cpu), run(&gpu));
        let err = common::rel_l2(&g, &c);
        assert!(err < 1e-3, "{kind}: GPU {g:?} vs CPU {c:?} (rel {err:e})");
    }
}

#[test]
fn resuming_cgan_wgan_and_wgan_gp_is_bit_exact() {
    let dev = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    for name in ["cgan", "wgan", "wgan-gp"] {
        let path = dir.path().join(format!("{name}.safetensors"));
        let build = |seed| {
            models::build(
                name,
                "mnist",
                &Options::default(),
                &mut Rng::seed(seed),
                &dev,
            )
            .unwrap()
        };
        // Step s always sees the same batch and labels; the run's rng carries over.
        let step = |model: &mut Box<dyn Trainable>, s: u64, rng: &mut Rng| -> Vec<f32> {
            let b = 4 * model.batches_per_step();
            let real = images(b, &mut Rng::seed(100 + s));
            let labels: Vec<usize> = (0..b).map(|i| (i + s as usize) % 10).collect();
            let metrics = model.train_step(&real, &labels, rng).unwrap();
            metrics.iter().map(|m| m.item().unwrap()).collect()
        };
        let probe = |model: &mut Box<dyn Trainable>| -> Vec<f32> {
            let z = seeded_noise(3, 4, model.z_dim(), &dev).unwrap();
            let labels = model.is_conditional().then_some(&[1, 2, 3, 4][..]);
            model.sample(&z, labels).unwrap().to_vec().unwrap()
        };
        let mut straight = build(7);
        let mut rng = Rng::seed(8);
        let mut want = Vec::new();
        for s in 0..3 {
            want = step(&mut straight, s, &mut rng);
        }
        let mut first = build(7);
        let mut rng1 = Rng::seed(8);
        for s in 0..2 {
            step(&mut first, s, &mut rng1);
        }
        let state = RunState {
            step: 2,
            rng: rng1.state(),
            ..RunState::default()
        };
        first.save_checkpoint(&path, &state).unwrap();
        let mut resumed = build(99);
        let state = resumed.load_checkpoint(&path).unwrap();
        let mut rng2 = Rng::from_state(state.rng);
        let got = step(&mut resumed, 2, &mut rng2);
        assert_eq!(got, want, "{name}: the step after resume");
        assert_eq!(probe(&mut resumed), probe(&mut straight), "{name}: samples");
    }
}

/// One iteration at learning rate 0 leaves every parameter of `model` unchanged.
fn assert_frozen_at_lr_0(name: &str, model: &mut dyn Trainable, params: Vec<Tensor>) {
    let values =
        |ps: &[Tensor]| -> Vec<Vec<f32>> { ps.iter().map(|p| p.to_vec().unwrap()).collect() };
    let before = values(&params);
    model.set_learning_rate(0.0).unwrap();
    let b = 4 * model.batches_per_step();
    let real = images(b, &mut Rng::seed(3));
    let metrics = model
        .train_step(&real, &vec![0; b], &mut Rng::seed(4))
        .unwrap();
    assert_finite(name, &metrics);
    assert!(
        before == values(&params),
        "{name}: a parameter moved at lr 0"
    );
    assert!(model.set_learning_rate(f32::NAN).is_err());
}

#[test]
fn a_zero_learning_rate_freezes_every_model() {
    let dev = Device::Cpu;
    let mut cgan = models::book("cgan", &mut Rng::seed(1), &dev).unwrap();
    let params = [cgan.generator.parameters(), cgan.discriminator.parameters()].concat();
    assert_frozen_at_lr_0("cgan", &mut cgan, params);
    // WGAN's critic is clipped even at lr 0 (its Glorot weights start outside the bound).
    let mut w = wgan::build(&mut Rng::seed(1), &dev).unwrap();
    let params = w.generator.parameters();
    assert_frozen_at_lr_0("wgan", &mut w, params);
    let mut gp = wgan::build_gp(&mut Rng::seed(1), &dev).unwrap();
    let params = [gp.generator.parameters(), gp.critic.parameters()].concat();
    assert_frozen_at_lr_0("wgan-gp", &mut gp, params);
    let cfg = ganlab::models::progan::ProGanConfig {
        width: 8,
        ..Default::default()
    };
    let mut pg = ganlab::models::progan::build(&cfg, &mut Rng::seed(1), &dev).unwrap();
    let params = [pg.generator.parameters(), pg.discriminator.parameters()].concat();
    assert_frozen_at_lr_0("progan", &mut pg, params);
}
