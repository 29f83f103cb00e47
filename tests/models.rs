//! The book's GAN and DCGAN: a few steps move every parameter with finite losses; GPU and
//! CPU agree on the first step; the frozen discriminator rule; exact resume; clear errors.

#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads best in tests

mod common;

use common::{fresh_rng, gpu, rel_l2};
use ganlab::models::{self, BookGan};
use ganlab::nn::{named_tensors, Kind};
use ganlab::train::{RunState, Trainable};
use ganlab::{Device, Rng, Tensor};

fn snapshot(model: &BookGan) -> Vec<(String, Vec<f32>)> {
    model
        .checkpoint_tensors()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("optim."))
        .map(|(n, t)| (n, t.to_vec().unwrap()))
        .collect()
}

fn real_batch(b: usize, rng: &mut Rng, device: &Device) -> Tensor {
    // Images in [-1, 1], like the scaled datasets.
    Tensor::rand_uniform(&[b, 1, 28, 28], -1.0, 1.0, rng, device).unwrap()
}

#[test]
fn a_few_steps_change_every_parameter_and_keep_losses_finite() {
    for kind in ["gan", "dcgan"] {
        let mut rng = fresh_rng(kind);
        let mut model = models::build(kind, &mut Rng::seed(1), &Device::Cpu).unwrap();
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
    // One G step alone (what `train_step` does after the D steps): D's weights and batch-norm
    // statistics stay bit-identical, while G's weights move, so gradients flowed through D.
    use ganlab::nn::{Ctx, Mode, Module};
    let mut model = models::build("dcgan", &mut Rng::seed(2), &Device::Cpu).unwrap();
    let d_before: Vec<_> = named_tensors(&model.discriminator, "d")
        .into_iter()
        .map(|(n, t, _)| (n, t.to_vec().unwrap()))
        .collect();
    let g_before: Vec<f32> = model.generator.visit_first_param();
    let z = Tensor::randn(&[4, 100], 0.0, 1.0, &mut Rng::seed(3), &Device::Cpu).unwrap();
    let ones = Tensor::ones(&[4, 1], &Device::Cpu).unwrap();
    let images = model
        .generator
        .forward(&z, &mut Ctx::new(Mode::Train, 1))
        .unwrap();
    let loss = model
        .discriminator
        .forward(&images, &mut Ctx::new(Mode::Frozen, 1))
        .unwrap()
        .bce_with_logits(&ones)
        .unwrap();
    let grads = ganlab::grad(&[loss], None, model.opt_g.params(), false).unwrap();
    assert!(
        grads.iter().all(Option::is_some),
        "every G parameter gets a gradient through D"
    );
    model.opt_g.step(&grads).unwrap();
    for (name, old) in d_before {
        let now = named_tensors(&model.discriminator, "d")
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .unwrap()
            .1;
        assert_eq!(old, now.to_vec().unwrap(), "{name} changed in the G step");
    }
    assert_ne!(g_before, model.generator.visit_first_param());
}

/// Helper: the first parameter's values.
trait FirstParam {
    fn visit_first_param(&self) -> Vec<f32>;
}

impl FirstParam for ganlab::nn::Sequential {
    fn visit_first_param(&self) -> Vec<f32> {
        named_tensors(self, "")
            .into_iter()
            .find(|(_, _, k)| *k == Kind::Parameter)
            .unwrap()
            .1
            .to_vec()
            .unwrap()
    }
}

#[test]
fn gpu_and_cpu_agree_on_the_first_steps() {
    let Some(gpu) = gpu() else { return };
    for kind in ["gan", "dcgan"] {
        // Same seed: same weights (drawn on the host), same batch, same noise, same dropout.
        let run = |device: &Device| -> Vec<f32> {
            let mut model = models::build(kind, &mut Rng::seed(5), device).unwrap();
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
    let mut straight = models::build("dcgan", &mut Rng::seed(7), &Device::Cpu).unwrap();
    let mut rng = Rng::seed(8);
    steps(&mut straight, &mut rng, 0, 4);
    // 2 steps, save, a fresh model (other initial weights) loads it, 2 more.
    let mut first = models::build("dcgan", &mut Rng::seed(7), &Device::Cpu).unwrap();
    let mut rng1 = Rng::seed(8);
    steps(&mut first, &mut rng1, 0, 2);
    first
        .save_checkpoint(
            &path,
            &RunState {
                step: 2,
                rng: rng1.state(),
                wall_s: 1.5,
            },
        )
        .unwrap();
    let mut resumed = models::build("dcgan", &mut Rng::seed(999), &Device::Cpu).unwrap();
    let state = resumed.load_checkpoint(&path).unwrap();
    assert_eq!(state.step, 2);
    assert_eq!(state.wall_s, 1.5);
    let mut rng2 = Rng::from_state(&state.rng);
    steps(&mut resumed, &mut rng2, 2, 4);
    let (a, b) = (straight.checkpoint_tensors(), resumed.checkpoint_tensors());
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(
            x.to_vec().unwrap(),
            y.to_vec().unwrap(),
            "{name} differs after resume"
        );
    }
    assert_eq!(straight.opt_g.t, resumed.opt_g.t);
}

#[test]
fn damaged_or_foreign_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut model = models::build("gan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    model
        .save_checkpoint(
            &path,
            &RunState {
                step: 1,
                rng: Rng::seed(1).state(),
                wall_s: 0.0,
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
    let mut dcgan = models::build("dcgan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    let err = dcgan.load_checkpoint(&path).unwrap_err().to_string();
    assert!(err.contains("gan") && err.contains("dcgan"), "{err}");
    // A missing tensor is reported by name, and nothing is loaded.
    let tensors: Vec<(String, Tensor)> = model
        .checkpoint_tensors()
        .into_iter()
        .filter(|(n, _)| n != "generator.bn1.running_var")
        .collect();
    let meta = ganlab::checkpoint::read_metadata(&path).unwrap();
    ganlab::checkpoint::save(&bad, &tensors, &meta).unwrap();
    let before = snapshot(&model);
    let err = model.load_checkpoint(&bad).unwrap_err().to_string();
    assert!(err.contains("missing generator.bn1.running_var"), "{err}");
    assert_eq!(before, snapshot(&model));
}

#[test]
fn checkpoints_hold_every_parameter_buffer_and_moment() {
    let model = models::build("dcgan", &mut Rng::seed(1), &Device::Cpu).unwrap();
    let names: Vec<String> = model
        .checkpoint_tensors()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for want in [
        "generator.dense.weight",
        "generator.bn2.running_var",
        "discriminator.conv4.weight",
        "discriminator.bn3.running_mean",
        "optim.generator.conv1.weight.m",
        "optim.discriminator.out.bias.v",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let params = named_tensors(&model.generator, "")
        .iter()
        .filter(|(_, _, k)| *k == Kind::Parameter)
        .count();
    assert_eq!(model.opt_g.params().len(), params);
}
