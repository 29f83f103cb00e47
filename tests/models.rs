//! The book's GAN and DCGAN: a few steps move every parameter with finite losses; GPU and
//! CPU agree on the first step; the frozen discriminator rule; exact resume; clear errors.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads best in tests

mod common;

use common::{fresh_rng, gpu, rel_l2};
use ganlab::checkpoint::Checkpoint;
use ganlab::models::{self, BookGan, LoopStyle};
use ganlab::models::{RunState, Trainable};
use ganlab::nn::{Layer, Module};
use ganlab::{Device, Rng, Tensor};

/// Every parameter and buffer of both networks, by name.
fn snapshot(model: &BookGan) -> Vec<(String, Vec<f32>)> {
    let mut out = Vec::new();
    for (prefix, net) in [
        ("generator", &model.generator),
        ("discriminator", &model.discriminator),
    ] {
        net.visit_state(prefix, &mut |name, _, t| {
            out.push((name, t.to_vec().unwrap()))
        });
    }
    out
}

fn state(step: u64, rng: &Rng) -> RunState {
    RunState {
        step,
        rng: rng.state(),
        wall_s: 1.5,
        settings: "{\"seed\":1}".into(),
    }
}

fn real_batch(b: usize, rng: &mut Rng, device: &Device) -> Tensor {
    // Images in [-1, 1], like the scaled datasets.
    Tensor::rand_uniform(&[b, 1, 28, 28], -1.0, 1.0, rng, device).unwrap()
}

#[test]
fn a_few_steps_change_every_parameter_and_keep_losses_finite() {
    for (kind, style) in [
        ("gan", LoopStyle::KerasTf2),
        ("dcgan", LoopStyle::KerasTf2),
        ("dcgan", LoopStyle::Torch),
        ("dcgan", LoopStyle::KerasTf1),
    ] {
        let mut rng = fresh_rng(kind);
        let mut model = models::book(kind, &mut Rng::seed(1), &Device::Cpu).unwrap();
        model.style = style;
        let before = snapshot(&model);
        for _ in 0..3 {
            let real = real_batch(8, &mut rng, &Device::Cpu);
            let metrics = model.train_step(&real, &[0; 8], &mut rng).unwrap();
            for m in &metrics {
                assert!(m.item().unwrap().is_finite(), "{kind}: non-finite metric");
            }
        }
        for ((name, old), (_, new)) in before.iter().zip(snapshot(&model)) {
            assert_ne!(old, &new, "{kind}: {name} did not change");
        }
    }
}

#[test]
fn the_frozen_discriminator_is_not_changed_by_the_generator_step() {
    // One G step as `train_step` runs it: D's weights and batch-norm statistics stay
    // bit-identical, while every G parameter gets a gradient through D and moves.
    let mut model = models::book("dcgan", &mut Rng::seed(2), &Device::Cpu).unwrap();
    let d_before: Vec<_> = snapshot(&model)
        .into_iter()
        .filter(|(n, _)| n.starts_with("discriminator"))
        .collect();
    let g_before: Vec<_> = snapshot(&model)
        .into_iter()
        .filter(|(n, _)| n.starts_with("generator.conv"))
        .collect();
    let z = Tensor::randn(&[4, 100], 0.0, 1.0, &mut Rng::seed(3), &Device::Cpu).unwrap();
    let ones = Tensor::ones(&[4, 1], &Device::Cpu).unwrap();
    model.opt_g.zero_grad();
    {
        let _frozen = model.discriminator.freeze();
        let images = model.generator.forward(&z, &mut model.ctx).unwrap();
        let loss = model
            .discriminator
            .forward(&images, &mut model.ctx)
            .unwrap()
            .bce_with_logits(&ones)
            .unwrap();
        loss.backward().unwrap();
    }
    assert!(
        model
            .generator
            .parameters()
            .iter()
            .all(|p| p.grad().is_some()),
        "every G parameter gets a gradient through D"
    );
    assert!(
        model
            .discriminator
            .parameters()
            .iter()
            .all(|p| p.grad().is_none()),
        "frozen D gets no gradient"
    );
    model.opt_g.step().unwrap();
    let after = snapshot(&model);
    for (name, old) in d_before {
        assert_eq!(
            after.iter().find(|(n, _)| *n == name).unwrap().1,
            old,
            "{name} changed in the G step"
        );
    }
    for (name, old) in g_before {
        assert_ne!(
            after.iter().find(|(n, _)| *n == name).unwrap().1,
            old,
            "{name} did not move"
        );
    }
}

#[test]
fn the_tf1_loop_differs_from_tf2_only_in_the_generator_step() {
    // Same model, batch and noise: the D steps agree bit for bit; the G step through the frozen
    // D does not (batch instead of running statistics in D's batch norm).
    let step = |style| {
        let mut model = models::book("dcgan", &mut Rng::seed(4), &Device::Cpu).unwrap();
        model.style = style;
        let mut rng = Rng::seed(5);
        let real = real_batch(8, &mut rng, &Device::Cpu);
        let metrics = model.train_step(&real, &[0; 8], &mut rng).unwrap();
        let values: Vec<f32> = metrics.iter().map(|m| m.item().unwrap()).collect();
        (values, snapshot(&model))
    };
    let ((tf2, tf2_state), (tf1, tf1_state)) =
        (step(LoopStyle::KerasTf2), step(LoopStyle::KerasTf1));
    assert_eq!(tf2[..2], tf1[..2], "d_loss and d_acc");
    assert_ne!(tf2[2], tf1[2], "g_loss");
    let part = |state: &[(String, Vec<f32>)], prefix: &str| -> Vec<(String, Vec<f32>)> {
        state
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .cloned()
            .collect()
    };
    assert_eq!(
        part(&tf2_state, "discriminator"),
        part(&tf1_state, "discriminator")
    );
    assert_ne!(part(&tf2_state, "generator"), part(&tf1_state, "generator"));
}

#[test]
fn gpu_and_cpu_agree_on_the_first_steps() {
    let Some(gpu) = gpu() else { return };
    for kind in ["gan", "dcgan"] {
        // Same seed: same weights (drawn on the host), same batch, same noise, same dropout.
        let run = |device: &Device| -> Vec<f32> {
            let mut model = models::book(kind, &mut Rng::seed(5), device).unwrap();
            let mut rng = Rng::seed(6);
            let mut out = Vec::new();
            for _ in 0..2 {
                let real = real_batch(8, &mut rng, device);
                for m in model.train_step(&real, &[0; 8], &mut rng).unwrap() {
                    out.push(m.item().unwrap());
                }
            }
            out
        };
        let (c, g) = (run(&Device::Cpu), run(&gpu));
        // Losses and accuracies of the first step, then after one update of each network.
        let err = rel_l2(&g, &c);
        assert!(err < 1e-3, "{kind}: GPU {g:?} vs CPU {c:?} (rel {err:e})");
    }
}

#[test]
fn resuming_from_a_checkpoint_is_bit_exact_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let data_rng = |s| Rng::seed(100 + s);
    let steps = |model: &mut BookGan, rng: &mut Rng, from: u64, to: u64| {
        for s in from..to {
            let real = real_batch(4, &mut data_rng(s), &Device::Cpu);
            model.train_step(&real, &[0; 4], rng).unwrap();
        }
    };
    // Straight through: 4 steps.
    let mut straight = models::book("dcgan", &mut Rng::seed(7), &Device::Cpu).unwrap();
    let mut rng = Rng::seed(8);
    steps(&mut straight, &mut rng, 0, 4);
    // 2 steps, save, a fresh model (other initial weights) loads it, 2 more.
    let mut first = models::book("dcgan", &mut Rng::seed(7), &Device::Cpu).unwrap();
    let mut rng1 = Rng::seed(8);
    steps(&mut first, &mut rng1, 0, 2);
    let saved = RunState {
        step: 2,
        rng: rng1.state(),
        wall_s: 1.5,
        settings: "{\"seed\":1}".into(),
    };
    first.save_checkpoint(&path, &saved).unwrap();
    let mut resumed = models::book("dcgan", &mut Rng::seed(999), &Device::Cpu).unwrap();
    let state = resumed.load_checkpoint(&path).unwrap();
    assert_eq!(state, saved);
    let mut rng2 = Rng::from_state(state.rng);
    steps(&mut resumed, &mut rng2, 2, 4);
    let (a, b) = (snapshot(&straight), snapshot(&resumed));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x, y, "{name} differs after resume");
    }
    let moments = |m: &BookGan| {
        m.opt_g
            .named_state("")
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, t.to_vec().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(moments(&straight), moments(&resumed));
    assert_eq!(straight.opt_g.steps(), resumed.opt_g.steps());
    assert_eq!(straight.ctx, resumed.ctx);
}

#[test]
fn damaged_or_foreign_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut model = models::book("gan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    model
        .save_checkpoint(
            &path,
            &RunState {
                step: 1,
                rng: Rng::seed(1).state(),
                ..RunState::default()
            },
        )
        .unwrap();
    let good = std::fs::read(&path).unwrap();
    let bad = dir.path().join("bad.safetensors");
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("png", b"\x89PNG\r\n\x1a\n0000000000000000".to_vec()),
        (
            "huge header length",
            [u64::MAX.to_le_bytes().to_vec(), good[8..].to_vec()].concat(),
        ),
        ("flipped header byte", {
            let mut b = good.clone();
            b[20] ^= 0x5a;
            b
        }),
    ];
    for cut in [4, 9, 200, good.len() / 2, good.len() - 1] {
        cases.push(("truncated", good[..cut].to_vec()));
    }
    for (what, bytes) in cases {
        std::fs::write(&bad, &bytes).unwrap();
        let err = model.load_checkpoint(&bad).expect_err(what).to_string();
        assert!(err.contains("bad.safetensors"), "{what}: {err}");
    }
    // A checkpoint of another model names the mismatch.
    let mut dcgan = models::book("dcgan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    let err = dcgan.load_checkpoint(&path).unwrap_err().to_string();
    assert!(err.contains("gan") && err.contains("dcgan"), "{err}");
    // A missing tensor is reported by name, and nothing is loaded.
    let mut ck = Checkpoint::load(&path).unwrap();
    assert!(ck.remove("generator.bn1.running_var"));
    ck.save(&bad).unwrap();
    let before = snapshot(&model);
    let err = model.load_checkpoint(&bad).unwrap_err().to_string();
    assert!(err.contains("missing generator.bn1.running_var"), "{err}");
    assert_eq!(before, snapshot(&model));
}

#[test]
fn checkpoints_hold_every_parameter_buffer_moment_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let model = models::book("dcgan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    model
        .save_checkpoint(&path, &state(0, &Rng::seed(1)))
        .unwrap();
    let ck = Checkpoint::load(&path).unwrap();
    let names = ck.names();
    for want in [
        "generator.dense.weight",
        "generator.bn2.running_var",
        "discriminator.conv4.weight",
        "discriminator.bn3.running_mean",
        "optim.generator.conv1.weight.m",
        "optim.discriminator.out.bias.v",
        "dropout",
        "run.rng",
        "run.step",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert_eq!(ck.metadata("model"), Some("dcgan"));
    assert!(ck
        .metadata("config")
        .is_some_and(|c| c.contains("\"beta1\":0.5")));
}
