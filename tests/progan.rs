//! Progressive GAN: the fade/stabilise schedule, training through resolution changes, exact
//! resume mid-fade, the Adam reset at each new resolution, and the EMA generator.

mod common;

use common::fresh_rng;
use ganlab::models::progan::{self, schedule, ProGan, ProGanConfig};
use ganlab::models::{RunState, Trainable};
use ganlab::nn::Module;
use ganlab::{Device, Rng, Tensor};

/// Width 8, z of 16, 8 images per phase: at batch 4 each phase is two steps.
fn tiny() -> ProGanConfig {
    ProGanConfig {
        phase_images: 8,
        width: 8,
        z_dim: 16,
        ..ProGanConfig::default()
    }
}

const BATCH: usize = 4;

fn real_batch(b: usize, rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform(&[b, 1, 28, 28], -1.0, 1.0, rng, &Device::Cpu).unwrap()
}

/// Every piece of state a checkpoint holds, by name: G, D, EMA G and both optimisers.
fn snapshot(m: &ProGan) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (prefix, net) in [
        ("generator", &m.generator as &dyn Module),
        ("discriminator", &m.discriminator),
        ("generator_ema", &m.generator_ema),
    ] {
        net.visit_state(prefix, &mut |name, _, t| {
            out.push((name, t.to_vec().unwrap()))
        });
    }
    for (prefix, opt) in [("opt_g", &m.opt_g), ("opt_d", &m.opt_d)] {
        for (name, t) in opt.named_state(prefix).unwrap() {
            out.push((name, t.to_vec().unwrap()));
        }
    }
    out
}

fn named(m: &dyn Module, prefix: &str) -> Vec<(String, Vec<f32>)> {
    m.named_parameters(prefix)
        .into_iter()
        .map(|(n, t)| (n, t.to_vec().unwrap()))
        .collect()
}

#[test]
fn the_schedule_fades_in_each_resolution_then_stabilises_it() {
    let p = 100;
    // (images shown, resolution, alpha, phase), worked out by hand from the spec: 4x4
    // stabilise [0, 100); fade 8 [100, 200); stabilise 8 [200, 300); fade 16 [300, 400); ...
    let expected = [
        (0, 4, 1.0, 0),
        (99, 4, 1.0, 0),
        (100, 8, 0.0, 1),
        (125, 8, 0.25, 1),
        (150, 8, 0.5, 1),
        (199, 8, 0.99, 1),
        (200, 8, 1.0, 2),
        (299, 8, 1.0, 2),
        (300, 16, 0.0, 3),
        (375, 16, 0.75, 3),
        (400, 16, 1.0, 4),
        (500, 32, 0.0, 5),
        (510, 32, 0.1, 5),
        (600, 32, 1.0, 6),
        (699, 32, 1.0, 6),
        (700, 32, 1.0, 6),
        (1_000_000, 32, 1.0, 6),
    ];
    for (shown, res, alpha, index) in expected {
        let s = schedule(shown, p);
        assert_eq!(s.resolution, res, "resolution at {shown}");
        assert_eq!(s.index, index, "phase at {shown}");
        assert!(
            (s.alpha - alpha).abs() < 1e-6,
            "alpha at {shown}: {} vs {alpha}",
            s.alpha
        );
    }
    let cfg = ProGanConfig {
        phase_images: p,
        ..ProGanConfig::default()
    };
    assert_eq!(cfg.total_images(), 700);
    assert_eq!(ProGanConfig::default().total_images(), 7 * 20_000);
}

#[test]
fn training_grows_the_output_and_moves_the_parameters() {
    let mut rng = fresh_rng("progan_grow");
    let mut model = progan::build(&tiny(), &mut Rng::seed(1), &Device::Cpu).unwrap();
    let before = named(&model.generator, "g")
        .into_iter()
        .chain(named(&model.discriminator, "d"))
        .collect::<Vec<_>>();
    let z = Tensor::randn(&[4, 16], 0.0, 1.0, &mut Rng::seed(9), &Device::Cpu).unwrap();
    // Step k (from 0) shows images 4k..4k+4: phases of 8 images are two steps each.
    let resolutions = [4, 4, 8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32];
    let alphas = [
        1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0,
    ];
    for (step, (&res, &alpha)) in resolutions.iter().zip(&alphas).enumerate() {
        assert_eq!(model.images_shown(), (step * BATCH) as u64);
        assert_eq!(model.resolution(), res, "resolution before step {step}");
        assert_eq!(model.alpha(), alpha, "alpha before step {step}");
        let out = model.generate(&z, false).unwrap();
        assert_eq!(out.shape(), &[4, 1, res, res], "G output at step {step}");
        let metrics = model
            .train_step(&real_batch(BATCH, &mut rng), &[0; BATCH], &mut rng)
            .unwrap();
        let names = model.metric_names();
        assert_eq!(metrics.len(), names.len());
        for (n, m) in names.iter().zip(&metrics) {
            assert!(m.item().unwrap().is_finite(), "{n} at step {step}");
        }
        assert!(
            metrics[1].item().unwrap() > 0.0,
            "no gradient penalty at step {step}"
        );
        assert_eq!(metrics[4].item().unwrap(), res as f32, "resolution metric");
        assert_eq!(metrics[5].item().unwrap(), alpha, "alpha metric");
        // Samples are always 32x32, nearest-upscaled from the phase's resolution.
        let s = model.sample(&z, None).unwrap();
        assert_eq!(s.shape(), &[4, 1, 32, 32]);
    }
    // Every parameter of both networks has been used by now and has moved.
    let after = named(&model.generator, "g")
        .into_iter()
        .chain(named(&model.discriminator, "d"));
    for ((name, old), (_, new)) in before.iter().zip(after) {
        assert_ne!(old, &new, "{name} did not change");
    }
}

#[test]
fn samples_are_nearest_upscaled_from_the_current_resolution() {
    let mut model = progan::build(&tiny(), &mut Rng::seed(2), &Device::Cpu).unwrap();
    let z = Tensor::randn(&[2, 16], 0.0, 1.0, &mut Rng::seed(3), &Device::Cpu).unwrap();
    let s = model.sample(&z, None).unwrap();
    let v = s.to_vec().unwrap();
    // At 4x4 every 8x8 block of the 32x32 sample is one value; not all blocks are equal.
    for n in 0..2 {
        for y in 0..32 {
            for x in 0..32 {
                let corner = v[n * 1024 + (y / 8 * 8) * 32 + x / 8 * 8];
                assert_eq!(v[n * 1024 + y * 32 + x], corner, "({n}, {y}, {x})");
            }
        }
    }
    assert!(v[..1024].iter().any(|&a| a != v[0]), "a constant sample");
    // And it is the EMA generator's 4x4 output.
    let small = model.generate(&z, true).unwrap().to_vec().unwrap();
    for (i, &a) in small.iter().enumerate() {
        let (n, y, x) = (i / 16, i / 4 % 4, i % 4);
        assert_eq!(v[n * 1024 + y * 8 * 32 + x * 8], a);
    }
}

#[test]
fn reals_are_padded_with_the_background_pooled_and_cross_faded() {
    // A batch of ones: after padding with -1 to 32x32, the 4x4 average of the corner block
    // covers 6x6 ones and 28 background pixels: (36 - 28) / 64.
    let ones = Tensor::ones(&[1, 1, 28, 28], &Device::Cpu).unwrap();
    let at4 = progan::prepare_reals(&ones, &schedule(0, 10)).unwrap();
    assert_eq!(at4.shape(), &[1, 1, 4, 4]);
    let v = at4.to_vec().unwrap();
    assert!((v[0] - 8.0 / 64.0).abs() < 1e-6, "corner {}", v[0]);
    assert!((v[5] - 1.0).abs() < 1e-6, "interior {}", v[5]);
    // Mid-fade to 8x8 (alpha 0.5): the 8x8 corner pixel (2x2 ones of 16: (4-12)/16 = -0.5)
    // blended with its 4x4 block's value 0.125.
    let at8 = progan::prepare_reals(&ones, &schedule(15, 10)).unwrap();
    assert_eq!(at8.shape(), &[1, 1, 8, 8]);
    let v = at8.to_vec().unwrap();
    assert!((v[0] - 0.5 * (-0.5 + 0.125)).abs() < 1e-6, "faded {}", v[0]);
    // A quarter into the fade the new resolution weighs 0.25 (a swapped blend gives 0.75).
    let v = progan::prepare_reals(&ones, &schedule(25, 20))
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(
        (v[0] - (0.25 * -0.5 + 0.75 * 0.125)).abs() < 1e-6,
        "faded {}",
        v[0]
    );
    let full = progan::prepare_reals(&ones, &schedule(70, 10)).unwrap();
    let v = full.to_vec().unwrap();
    assert_eq!(
        (v[0], v[2 * 32 + 2], v[29 * 32 + 29], v[30 * 32 + 30]),
        (-1.0, 1.0, 1.0, -1.0)
    );
}

#[test]
fn resume_mid_fade_is_exact() {
    let cfg = tiny();
    let mut data_rng = fresh_rng("progan_resume");
    let batches: Vec<Tensor> = (0..7).map(|_| real_batch(BATCH, &mut data_rng)).collect();
    let train = |model: &mut ProGan, rng: &mut Rng, range: std::ops::Range<usize>| {
        for i in range {
            model.train_step(&batches[i], &[0; BATCH], rng).unwrap();
        }
    };

    let mut straight = progan::build(&cfg, &mut Rng::seed(5), &Device::Cpu).unwrap();
    let mut rng = Rng::seed(6);
    train(&mut straight, &mut rng, 0..7);

    let mut first = progan::build(&cfg, &mut Rng::seed(5), &Device::Cpu).unwrap();
    let mut rng = Rng::seed(6);
    train(&mut first, &mut rng, 0..3);
    // Three steps of four: the next step is halfway through the 8x8 fade.
    assert_eq!((first.resolution(), first.alpha()), (8, 0.5));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let state = RunState {
        step: 3,
        rng: rng.state(),
        ..RunState::default()
    };
    first.save_checkpoint(&path, &state).unwrap();
    drop(first);

    let mut resumed = progan::build(&cfg, &mut Rng::seed(77), &Device::Cpu).unwrap();
    let fresh = snapshot(&resumed);
    let loaded = resumed.load_checkpoint(&path).unwrap();
    assert_eq!(loaded.step, 3);
    assert_eq!(resumed.images_shown(), 12);
    assert_eq!(resumed.alpha(), 0.5);
    assert_eq!(resumed.opt_g.steps(), 1, "one step since the reset at 8x8");
    let mut rng = Rng::from_state(loaded.rng);
    // Steps 4..7 go through the rest of the fade, the 8x8 stabilisation and into 16x16.
    train(&mut resumed, &mut rng, 3..7);

    assert_eq!(resumed.images_shown(), straight.images_shown());
    assert_eq!(resumed.alpha(), straight.alpha());
    assert_eq!(resumed.resolution(), 16);
    assert_eq!(resumed.opt_d.steps(), straight.opt_d.steps());
    let (a, b) = (snapshot(&straight), snapshot(&resumed));
    assert_eq!(a.len(), b.len());
    for (((name, x), (_, y)), (_, f)) in a.iter().zip(&b).zip(&fresh) {
        assert_eq!(x, y, "{name} differs after resuming");
        if !name.contains(".bias") && !name.ends_with(".m") && !name.ends_with(".v") {
            assert_ne!(x, f, "{name}: the fresh model already had these values");
        }
    }
}

#[test]
fn adam_state_is_reset_when_a_resolution_is_added() {
    let mut rng = fresh_rng("progan_adam_reset");
    let mut model = progan::build(&tiny(), &mut Rng::seed(8), &Device::Cpu).unwrap();
    let moments = |m: &ProGan, name: &str| -> Vec<f32> {
        m.opt_d
            .named_state("")
            .unwrap()
            .into_iter()
            .filter(|(n, _)| n.starts_with(name))
            .flat_map(|(_, t)| t.to_vec().unwrap())
            .collect()
    };
    let mut step = |m: &mut ProGan| {
        m.train_step(&real_batch(BATCH, &mut rng), &[0; BATCH], &mut rng)
            .unwrap();
    };
    // Images per phase 8, batch 4: steps 1-2 at 4x4, 3-4 fade 8, 5-6 stabilise 8, 7 fade 16.
    let mut counts = Vec::new();
    for _ in 0..7 {
        step(&mut model);
        counts.push((model.opt_g.steps(), model.opt_d.steps()));
        if counts.len() == 2 {
            // fromRGB at 4x4 has been trained: its moments are not zero.
            assert!(moments(&model, "from_rgb0.").iter().any(|&v| v != 0.0));
        }
        if counts.len() == 6 {
            // Still used in no way at 8x8 stabilise, its moments are kept (no reset there).
            assert!(moments(&model, "from_rgb0.").iter().any(|&v| v != 0.0));
        }
    }
    let expected: Vec<(u64, u64)> = [1, 2, 1, 2, 3, 4, 1].iter().map(|&s| (s, s)).collect();
    assert_eq!(counts, expected, "optimiser step counters");
    // After the reset at 16x16, fromRGB at 4x4 (not part of the 16x16 network) has zero moments.
    let m = moments(&model, "from_rgb0.");
    assert!(!m.is_empty());
    assert!(m.iter().all(|&v| v == 0.0), "moments survived the reset");
    // ...while fromRGB at 8x8 (the fade's old path) has fresh, nonzero ones.
    assert!(moments(&model, "from_rgb1.").iter().any(|&v| v != 0.0));
}

#[test]
fn the_ema_generator_averages_the_generator_weights() {
    let mut rng = fresh_rng("progan_ema");
    // The spec's fixed decay (no warm-up), so the rule below is 0.999 * old + 0.001 * new.
    let cfg = ProGanConfig {
        ema_rampup: 0.0,
        ..tiny()
    };
    let mut model = progan::build(&cfg, &mut Rng::seed(4), &Device::Cpu).unwrap();
    // Built as a copy of G.
    assert_eq!(named(&model.generator, ""), named(&model.generator_ema, ""));
    for _ in 0..3 {
        let ema_old = named(&model.generator_ema, "");
        model
            .train_step(&real_batch(BATCH, &mut rng), &[0; BATCH], &mut rng)
            .unwrap();
        let g_new = named(&model.generator, "");
        let ema_new = named(&model.generator_ema, "");
        let mut moved = 0;
        for (((name, old), (_, g)), (_, e)) in ema_old.iter().zip(&g_new).zip(&ema_new) {
            for ((&o, &g), &e) in old.iter().zip(g).zip(e) {
                let want = 0.999 * f64::from(o) + 0.001 * f64::from(g);
                let tol = 1e-6 * (1.0 + want.abs());
                assert!(
                    (f64::from(e) - want).abs() <= tol,
                    "{name}: ema {e} vs {want} (old {o}, g {g})"
                );
                if g != o {
                    moved += 1;
                }
            }
        }
        assert!(moved > 0, "G did not move, the check is vacuous");
    }
}

#[test]
fn fades_blend_the_new_block_with_the_previous_resolution() {
    use progan::Phase;
    let model = progan::build(&tiny(), &mut Rng::seed(10), &Device::Cpu).unwrap();
    let mut rng = Rng::seed(11);
    let z = Tensor::randn(&[4, 16], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
    let phase = |index, resolution, alpha| Phase {
        index,
        resolution,
        alpha,
    };
    let g = |p: Phase| model.generator.forward(&z, &p).unwrap().to_vec().unwrap();
    let close = |a: &[f32], b: &[f32], what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    };
    // G at 16x16: old = the 8x8 output upsampled by 2 (nearest), new = the full 16x16 path.
    let old8 = g(phase(2, 8, 1.0));
    let new16 = g(phase(4, 16, 1.0));
    let up = |v: &[f32]| -> Vec<f32> {
        (0..4 * 256)
            .map(|i| {
                let (n, y, x) = (i / 256, i / 16 % 16, i % 16);
                v[n * 64 + y / 2 * 8 + x / 2]
            })
            .collect()
    };
    let old_up = up(&old8);
    close(&g(phase(3, 16, 0.0)), &old_up, "G at alpha 0");
    let mixed: Vec<f32> = old_up
        .iter()
        .zip(&new16)
        .map(|(o, n)| 0.7 * o + 0.3 * n)
        .collect();
    close(&g(phase(3, 16, 0.3)), &mixed, "G at alpha 0.3");
    assert!(rel(&new16, &old_up) > 1e-3, "the new block changes nothing");

    // D at 8x8 fading in: at alpha 0 it is the 4x4 critic on the 2x-pooled input.
    let x = Tensor::randn(&[4, 1, 8, 8], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
    let d = |x: &Tensor, p: Phase| {
        model
            .discriminator
            .forward(x, &p)
            .unwrap()
            .to_vec()
            .unwrap()
    };
    let d4 = d(&x.avg_pool2d(2).unwrap(), phase(0, 4, 1.0));
    close(&d(&x, phase(1, 8, 0.0)), &d4, "D at alpha 0");
    close(
        &d(&x, phase(1, 8, 1.0)),
        &d(&x, phase(2, 8, 1.0)),
        "D at alpha 1",
    );
    assert!(rel(&d(&x, phase(2, 8, 1.0)), &d4) > 1e-3);
    assert!(rel(&d(&x, phase(1, 8, 0.5)), &d4) > 1e-4);
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    common::rel_l2(a, b)
}

#[test]
fn gpu_and_cpu_agree_through_a_fade() {
    let Some(gpu) = common::gpu() else { return };
    // phase_images 8 at batch 4: steps 1-2 at 4x4, steps 3-4 fade in 8x8 (alpha 0, 0.5).
    let run = |device: &Device| -> Vec<f32> {
        let mut model = progan::build(&tiny(), &mut Rng::seed(12), device).unwrap();
        let mut rng = Rng::seed(13);
        let mut out = Vec::new();
        for _ in 0..4 {
            let real = real_batch(BATCH, &mut rng).to_device(device).unwrap();
            for m in model.train_step(&real, &[0; BATCH], &mut rng).unwrap() {
                out.push(m.item().unwrap());
            }
        }
        let z = Tensor::randn(&[2, 16], 0.0, 1.0, &mut rng, device).unwrap();
        out.extend(model.sample(&z, None).unwrap().to_vec().unwrap());
        out
    };
    let (c, g) = (run(&Device::Cpu), run(&gpu));
    let err = common::rel_l2(&g, &c);
    assert!(err < 1e-3, "GPU vs CPU rel {err:e}:\n{g:?}\n{c:?}");
}

#[test]
fn the_ema_warms_up_then_keeps_the_specified_decay() {
    let cfg = ProGanConfig::default();
    assert_eq!(cfg.ema_decay, 0.999);
    // After 640 images at batch 32 (rampup 0.05): a half-life of 32 images, one step.
    assert!((progan::ema_decay(&cfg, 32, 608) - 0.5).abs() < 1e-12);
    // After 64,000: a half-life of 3,200 images (100 steps), 0.5^(1/100).
    let d = progan::ema_decay(&cfg, 32, 64_000 - 32);
    assert!((d - 0.5f64.powf(0.01)).abs() < 1e-12, "{d}");
    // Long runs reach the cap: 0.999 once 5% of the images shown exceed 693 steps' worth.
    assert_eq!(progan::ema_decay(&cfg, 32, 1_000_000), f64::from(0.999f32));
    let fixed = ProGanConfig {
        ema_rampup: 0.0,
        ..cfg
    };
    assert_eq!(progan::ema_decay(&fixed, 32, 0), f64::from(0.999f32));
}
