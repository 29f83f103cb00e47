//! Optimisers against hand-computed references (f64, the textbook form of Keras' formulas)
//! over several steps, on the CPU and on the GPU, with hyperparameters chosen so that a wrong
//! rule shows: a large eps tells where eps sits, a learning-rate change tells Keras' momentum
//! from PyTorch's. Plus parameter groups, zero-grad, skipped parameters and weight clipping.

mod common;

use common::{fresh_rng, gpu, rel_l2};
use ganlab::optim::{Adam, Optimizer, RmsProp, Sgd, UpdateRule};
use ganlab::{Device, Rng, Tensor};

const P0: [f32; 7] = [0.5, -1.25, 2.0, 0.0, -0.03, 1.0, 3.5];
/// One gradient per step: signs flip, magnitudes span 0.01..2.
const GRADS: [[f32; 7]; 4] = [
    [0.1, -0.5, 2.0, 0.01, -1.0, 0.3, -0.02],
    [-0.2, -0.4, 1.5, -0.05, 0.7, 0.3, 0.5],
    [0.3, 0.6, -1.8, 0.02, -0.3, -0.1, 0.01],
    [0.05, -0.9, 0.4, -0.01, 1.2, 0.2, -0.6],
];

/// Sets `p`'s gradient to exactly `g` through autograd: d/dp sum(p * g) = g.
fn set_grad(p: &Tensor, g: &[f32]) {
    let c = Tensor::from_vec(g.to_vec(), p.shape(), &p.device()).unwrap();
    p.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
}

/// Runs `steps` updates from P0 with GRADS; returns the parameter and each state slot after
/// every step. `lr_at(t)` is the learning rate of step t (1-based).
fn trajectory<R: UpdateRule>(
    rule: R,
    lr_at: impl Fn(u64) -> f32,
    device: &Device,
) -> Vec<(Vec<f32>, Vec<Vec<f32>>)> {
    let p = Tensor::from_vec(P0.to_vec(), &[7], device)
        .unwrap()
        .with_grad();
    let mut opt = Optimizer::new(rule, lr_at(1), vec![("p".into(), p.clone())]).unwrap();
    let mut out = Vec::new();
    for (t, g) in GRADS.iter().enumerate() {
        opt.set_lr(0, lr_at(t as u64 + 1)).unwrap();
        opt.zero_grad();
        set_grad(&p, g);
        opt.step().unwrap();
        let state = opt
            .named_state("")
            .unwrap()
            .iter()
            .map(|(_, s)| s.to_vec().unwrap())
            .collect();
        out.push((p.to_vec().unwrap(), state));
    }
    assert_eq!(opt.steps(), GRADS.len() as u64);
    out
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = 2e-6 * w.abs() + 1e-8;
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "{what}[{i}]: {g} vs reference {w} (diff {:e})",
            (f64::from(g) - w).abs()
        );
    }
}

/// `reference(t, p, g, state)` is one f64 step; checks every step's parameter and state.
fn check<R: UpdateRule + Copy>(
    name: &str,
    rule: R,
    lr_at: impl Fn(u64) -> f32 + Copy,
    reference: impl Fn(u64, f64, f64, &mut [f64]) -> f64,
) {
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let got = trajectory(rule, lr_at, device);
        let mut p: Vec<f64> = P0.iter().map(|&v| f64::from(v)).collect();
        let mut state = vec![vec![0f64; R::SLOTS.len()]; 7];
        for (t, g) in GRADS.iter().enumerate() {
            for i in 0..7 {
                p[i] = reference(t as u64 + 1, p[i], f64::from(g[i]), &mut state[i]);
            }
            let (gp, gs) = &got[t];
            assert_close(&format!("{name} on {device:?}, step {}: p", t + 1), gp, &p);
            for (k, slot) in R::SLOTS.iter().enumerate() {
                let want: Vec<f64> = state.iter().map(|s| s[k]).collect();
                assert_close(
                    &format!("{name} on {device:?}, step {}: {slot}", t + 1),
                    &gs[k],
                    &want,
                );
            }
        }
    }
}

#[test]
fn defaults_are_keras() {
    assert_eq!(
        Adam::default(),
        Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7
        }
    );
    assert_eq!(
        RmsProp::default(),
        RmsProp {
            rho: 0.9,
            eps: 1e-7
        }
    );
    assert_eq!(Sgd::default(), Sgd { momentum: 0.0 });
}

#[test]
fn adam_matches_keras_with_eps_outside_the_bias_correction() {
    let rule = Adam {
        beta1: 0.5,
        beta2: 0.9,
        eps: 0.05,
    };
    check("adam", rule, |_| 0.05, adam_reference(rule, 0.05));
    // Keras' defaults too (eps 1e-7, where eps hardly matters).
    check(
        "adam defaults",
        Adam::default(),
        |_| 1e-3,
        adam_reference(Adam::default(), 1e-3),
    );
}

/// Keras Adam in f64 from the f32 hyperparameters (as Keras holds them).
fn adam_reference(rule: Adam, lr: f32) -> impl Fn(u64, f64, f64, &mut [f64]) -> f64 {
    let (b1, b2, eps, lr) = (
        f64::from(rule.beta1),
        f64::from(rule.beta2),
        f64::from(rule.eps),
        f64::from(lr),
    );
    move |t, p, g, s| {
        s[0] = b1 * s[0] + (1.0 - b1) * g;
        s[1] = b2 * s[1] + (1.0 - b2) * g * g;
        let t = t as i32;
        let lr_t = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
        p - lr_t * s[0] / (s[1].sqrt() + eps)
    }
}

#[test]
fn rmsprop_matches_keras_with_eps_outside_the_square_root() {
    let rule = RmsProp { rho: 0.8, eps: 0.1 };
    check(
        "rmsprop",
        rule,
        |_| 0.01,
        |_, p, g, s| {
            s[0] = 0.8 * s[0] + 0.2 * g * g;
            p - 0.01 * g / (s[0].sqrt() + 0.1)
        },
    );
}

#[test]
fn sgd_momentum_matches_keras_across_a_learning_rate_change() {
    // Keras keeps lr inside the velocity; with lr changing at step 3, PyTorch's form
    // (velocity of gradients, times the current lr) gives other values.
    let lr_at = |t: u64| if t < 3 { 0.1 } else { 0.02 };
    check(
        "sgd momentum",
        Sgd { momentum: 0.9 },
        lr_at,
        |t, p, g, s| {
            s[0] = 0.9 * s[0] - f64::from(lr_at(t)) * g;
            p + s[0]
        },
    );
    check(
        "sgd",
        Sgd::default(),
        |_| 0.1,
        |_, p, g, s| {
            s[0] = -0.1 * g;
            p + s[0]
        },
    );
}

#[test]
fn large_tensors_update_the_same_on_gpu_and_cpu() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("large_tensors_update_the_same_on_gpu_and_cpu");
    // Many workgroups, and not a multiple of the workgroup size.
    let n = 70_001;
    let p0 = Tensor::randn(&[n], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap();
    let grads: Vec<Tensor> = (0..3)
        .map(|_| Tensor::randn(&[n], 0.0, 1.0, &mut rng, &Device::Cpu).unwrap())
        .collect();
    let run = |device: &Device| {
        let p = p0.to_device(device).unwrap().with_grad();
        let mut opt = Optimizer::new(Adam::default(), 0.01, vec![("p".into(), p.clone())]).unwrap();
        for g in &grads {
            opt.zero_grad();
            set_grad(&p, &g.to_vec().unwrap());
            opt.step().unwrap();
        }
        let mut all = p.to_vec().unwrap();
        for (_, s) in opt.named_state("").unwrap() {
            all.extend(s.to_vec().unwrap());
        }
        all
    };
    let err = rel_l2(&run(&gpu), &run(&Device::Cpu));
    assert!(err <= 1e-6, "relative L2 error {err:e}");
}

#[test]
fn parameter_groups_use_their_own_learning_rates() {
    let cpu = Device::Cpu;
    let a = Tensor::from_vec(vec![1.0, 2.0], &[2], &cpu)
        .unwrap()
        .with_grad();
    let b = Tensor::from_vec(vec![1.0, 2.0], &[2], &cpu)
        .unwrap()
        .with_grad();
    let mut opt = Optimizer::new(Sgd::default(), 0.5, vec![("a".into(), a.clone())]).unwrap();
    let group = opt.add_group(0.25, vec![("b".into(), b.clone())]).unwrap();
    assert_eq!((group, opt.lr(0), opt.lr(1)), (1, Some(0.5), Some(0.25)));
    set_grad(&a, &[1.0, -2.0]);
    set_grad(&b, &[1.0, -2.0]);
    opt.step().unwrap();
    assert_eq!(a.to_vec().unwrap(), [0.5, 3.0]);
    assert_eq!(b.to_vec().unwrap(), [0.75, 2.5]);
    opt.set_lr(1, 1.0).unwrap();
    opt.step().unwrap(); // the gradients are still there
    assert_eq!(b.to_vec().unwrap(), [-0.25, 4.5]);
    assert!(opt.set_lr(2, 0.1).is_err() && opt.set_lr(0, f32::NAN).is_err());
    // A parameter can be in one group only.
    assert!(opt
        .add_group(0.1, vec![("again".into(), a.clone())])
        .is_err());
    assert!(opt
        .add_group(0.1, vec![("a".into(), Tensor::zeros(&[1], &cpu).unwrap())])
        .is_err());
}

#[test]
fn zero_grad_and_parameters_without_gradients() {
    let cpu = Device::Cpu;
    let a = Tensor::from_vec(vec![1.0], &[1], &cpu).unwrap().with_grad();
    let idle = Tensor::from_vec(vec![7.0], &[1], &cpu).unwrap().with_grad();
    let params = vec![("a".into(), a.clone()), ("idle".into(), idle.clone())];
    let mut opt = Optimizer::new(Adam::default(), 0.1, params).unwrap();
    set_grad(&a, &[1.0]);
    opt.step().unwrap();
    assert_eq!(
        idle.to_vec().unwrap(),
        [7.0],
        "a parameter without gradient moved"
    );
    assert_eq!(opt.steps(), 1);
    let after_one = a.to_vec().unwrap()[0];
    assert!(
        (after_one - 0.9).abs() < 1e-6,
        "first Adam step is lr * sign(g): {after_one}"
    );
    opt.zero_grad();
    assert!(a.grad().is_none() && idle.grad().is_none());
    opt.step().unwrap();
    assert_eq!(
        a.to_vec().unwrap()[0],
        after_one,
        "stepped without a gradient"
    );
    assert_eq!(opt.steps(), 2);

    opt.reset_state().unwrap();
    assert_eq!(opt.steps(), 0);
    assert!(opt
        .named_state("")
        .unwrap()
        .iter()
        .all(|(_, s)| s.to_vec().unwrap() == [0.0]));
}

#[test]
fn weight_clipping_bounds_every_updated_value_in_the_same_pass() {
    let values = vec![-1.0, -0.011, -0.01, 0.0, 0.005, 0.01, 0.02, 3.0];
    let want = [-0.01, -0.01, -0.01, 0.0, 0.005, 0.01, 0.01, 0.01];
    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    let mut rng = Rng::seed(3);
    for device in &devices {
        // SGD at lr 0 leaves the values as they are: what moves them is the clip alone.
        let t = Tensor::from_vec(values.clone(), &[2, 4], device)
            .unwrap()
            .with_grad();
        let view = t.reshape(&[8]).unwrap();
        let big = Tensor::randn(&[70_001], 0.0, 0.02, &mut rng, device)
            .unwrap()
            .with_grad();
        let before = big.to_vec().unwrap();
        let params = vec![("t".into(), t.clone()), ("big".into(), big.clone())];
        let mut opt = Optimizer::new(Sgd::default(), 0.0, params).unwrap();
        opt.set_clip(Some(0.01)).unwrap();
        set_grad(&t, &[1.0; 8]);
        set_grad(&big, &vec![1.0; 70_001]);
        opt.step().unwrap();
        assert_eq!(
            view.to_vec().unwrap(),
            want,
            "{device:?}: not clipped in place"
        );
        for (b, a) in before.iter().zip(big.to_vec().unwrap()) {
            assert_eq!(a, b.clamp(-0.01, 0.01), "{device:?}");
        }
        assert!(opt.set_clip(Some(-1.0)).is_err() && opt.set_clip(Some(f32::NAN)).is_err());
    }
}

/// Ragged parameters in two groups, some without a gradient, Adam with the clip on: the
/// multi-tensor step must update each exactly as an optimiser holding it alone would.
#[test]
fn a_multi_tensor_step_equals_one_optimiser_per_parameter_on_every_device() {
    let mut rng = fresh_rng("a_multi_tensor_step_equals_one_optimiser_per_parameter");
    let sizes = [1usize, 300, 70_001, 5, 256, 257, 3];
    let idle = [false, false, false, true, false, false, false];
    let groups = [0usize, 0, 0, 0, 1, 1, 1];
    let lrs = [0.01f32, 0.003];
    let init: Vec<Vec<f32>> = sizes
        .iter()
        .map(|&n| {
            Tensor::randn(&[n], 0.0, 0.05, &mut rng, &Device::Cpu)
                .unwrap()
                .to_vec()
                .unwrap()
        })
        .collect();
    let grads: Vec<Vec<Vec<f32>>> = (0..3)
        .map(|_| {
            sizes
                .iter()
                .map(|&n| {
                    Tensor::randn(&[n], 0.0, 1.0, &mut rng, &Device::Cpu)
                        .unwrap()
                        .to_vec()
                        .unwrap()
                })
                .collect()
        })
        .collect();
    let leaf = |v: &Vec<f32>, device: &Device| {
        Tensor::from_vec(v.clone(), &[v.len()], device)
            .unwrap()
            .with_grad()
    };
    let step_all = |params: &[Tensor], opts: &mut [Optimizer<Adam>], step: usize| {
        for (i, p) in params.iter().enumerate() {
            p.zero_grad();
            if !idle[i] {
                set_grad(p, &grads[step][i]);
            }
        }
        opts.iter_mut().for_each(|o| o.step().unwrap());
    };
    // The reference: one optimiser per parameter, on the CPU.
    let alone: Vec<Tensor> = init.iter().map(|v| leaf(v, &Device::Cpu)).collect();
    let mut singles: Vec<Optimizer<Adam>> = alone
        .iter()
        .zip(groups)
        .map(|(p, g)| {
            let mut o =
                Optimizer::new(Adam::default(), lrs[g], vec![("p".into(), p.clone())]).unwrap();
            o.set_clip(Some(0.06)).unwrap();
            o
        })
        .collect();
    for step in 0..3 {
        step_all(&alone, &mut singles, step);
    }
    let want: Vec<Vec<f32>> = alone.iter().map(|p| p.to_vec().unwrap()).collect();

    let mut devices = vec![Device::Cpu];
    devices.extend(gpu());
    for device in &devices {
        let params: Vec<Tensor> = init.iter().map(|v| leaf(v, device)).collect();
        let named = |range: std::ops::Range<usize>| {
            range
                .map(|i| (format!("p{i}"), params[i].clone()))
                .collect()
        };
        let mut opt = Optimizer::new(Adam::default(), lrs[0], named(0..4)).unwrap();
        opt.add_group(lrs[1], named(4..7)).unwrap();
        opt.set_clip(Some(0.06)).unwrap();
        for step in 0..3 {
            step_all(&params, std::slice::from_mut(&mut opt), step);
        }
        for (i, p) in params.iter().enumerate() {
            let got = p.to_vec().unwrap();
            if matches!(device, Device::Cpu) {
                assert_eq!(got, want[i], "p{i} on the CPU");
            } else {
                let err = rel_l2(&got, &want[i]);
                assert!(err <= 1e-6, "p{i} on {device:?}: relative L2 error {err:e}");
            }
        }
        assert_eq!(
            params[3].to_vec().unwrap(),
            init[3],
            "a parameter without gradient moved"
        );
    }
}

#[test]
fn the_parallel_cpu_update_of_a_large_tensor_equals_the_update_of_its_pieces() {
    let mut rng =
        fresh_rng("the_parallel_cpu_update_of_a_large_tensor_equals_the_update_of_its_pieces");
    // 50,000 values: several of the CPU pass's parallel chunks, the last one ragged.
    let (n, pieces) = (50_000, 10);
    let values = Tensor::randn(&[n], 0.0, 1.0, &mut rng, &Device::Cpu)
        .unwrap()
        .to_vec()
        .unwrap();
    let grads: Vec<Vec<f32>> = (0..3)
        .map(|_| {
            Tensor::randn(&[n], 0.0, 1.0, &mut rng, &Device::Cpu)
                .unwrap()
                .to_vec()
                .unwrap()
        })
        .collect();
    let whole = Tensor::from_vec(values.clone(), &[n], &Device::Cpu)
        .unwrap()
        .with_grad();
    let parts: Vec<Tensor> = values
        .chunks(n / pieces)
        .map(|c| {
            Tensor::from_vec(c.to_vec(), &[c.len()], &Device::Cpu)
                .unwrap()
                .with_grad()
        })
        .collect();
    let mut one = Optimizer::new(Adam::default(), 0.01, vec![("w".into(), whole.clone())]).unwrap();
    let named = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("p{i}"), p.clone()))
        .collect();
    let mut many = Optimizer::new(Adam::default(), 0.01, named).unwrap();
    for g in &grads {
        one.zero_grad();
        many.zero_grad();
        set_grad(&whole, g);
        for (p, c) in parts.iter().zip(g.chunks(n / pieces)) {
            set_grad(p, c);
        }
        one.step().unwrap();
        many.step().unwrap();
    }
    let pieces: Vec<f32> = parts.iter().flat_map(|p| p.to_vec().unwrap()).collect();
    assert_eq!(whole.to_vec().unwrap(), pieces);
    assert_ne!(whole.to_vec().unwrap(), values, "the update ran");
}
