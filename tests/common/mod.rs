//! Shared test helpers: the GPU under test, fresh random inputs, error metrics and
//! finite-difference gradient checks.
#![allow(dead_code)]

use ganlab::device::AdapterRequest;
use ganlab::{grad, Device, Result, Rng, Tensor};
use std::time::{SystemTime, UNIX_EPOCH};

/// The GPU the suite checks. A missing adapter fails the test with the engine's own message,
/// unless `GANLAB_ALLOW_NO_GPU=1` says this run is CPU-only on purpose.
pub fn gpu() -> Option<Device> {
    match Device::gpu() {
        Ok(dev) => {
            if let Device::Gpu(ctx) = &dev {
                // Every buffer handed to a kernel starts as NaN: unwritten outputs show up.
                ctx.set_poison(true);
            }
            Some(dev)
        }
        Err(e) if std::env::var("GANLAB_ALLOW_NO_GPU").as_deref() == Ok("1") => {
            eprintln!("skipping the GPU half (GANLAB_ALLOW_NO_GPU=1): {e}");
            None
        }
        Err(e) => panic!("{e}\n(set GANLAB_ALLOW_NO_GPU=1 to run the CPU-only tests)"),
    }
}

/// A context on the suite's adapter whose GEMMs run on cooperative-matrix fragments
/// (`request` as `GANLAB_MATRICES` takes it: `on`, `emulate`, `emulate16-f32`, ...).
pub struct MatrixContext {
    pub gpu: Device,
    /// The relative error its inputs allow (f16 inputs keep 11 bits).
    pub tol: f64,
    /// A and B are f16: only products of activations and weights (the convolutions' forward
    /// passes) take the fragments, never gradients.
    pub half: bool,
}

impl MatrixContext {
    /// A context for each of `requests` that the suite's adapter can open: none without an
    /// adapter (as `gpu()` allows) or without subgroups, which the fragments need, and no `on`
    /// where the adapter offers no hardware fragments.
    pub fn open_all(requests: &[&'static str]) -> Vec<(&'static str, Self)> {
        match gpu() {
            Some(Device::Gpu(ctx)) if ctx.has_subgroups() => requests
                .iter()
                .filter_map(|&r| Some((r, Self::open(r)?)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `None` where hardware fragments were asked for and the adapter offers none.
    pub fn open(request: &str) -> Option<Self> {
        let req = AdapterRequest {
            matrices: Some(request.into()),
            ..AdapterRequest::from_env()
        };
        match Device::gpu_with(&req) {
            Ok(gpu) => {
                let Device::Gpu(ctx) = &gpu else {
                    unreachable!("a GPU context")
                };
                ctx.set_poison(true);
                let half = ctx.matrices().expect("opened with matrices").half;
                eprintln!("matrices {request}: {}", ctx.capabilities());
                let tol = if half { 2e-3 } else { 1e-4 };
                Some(MatrixContext { gpu, tol, half })
            }
            Err(e) if request == "on" && e.to_string().contains("GANLAB_MATRICES=on, but") => {
                eprintln!("skipping hardware matrices: {e}");
                None
            }
            Err(e) => panic!("GANLAB_MATRICES={request}: {e}"),
        }
    }

    /// Whether `launch` had to run on the fragments: every product wider than the thin
    /// kernel's, but on f16 fragments only the forward passes.
    pub fn expects_fragments(&self, launch: &ganlab::ops::gemm::GemmLaunch) -> bool {
        use ganlab::ops::gemm::THIN;
        launch.m.min(launch.n) > THIN && (!self.half || launch.kernel.ends_with("forward"))
    }

    /// Asserts that the launches ran where they should; returns how many ran on fragments.
    pub fn assert_placed(
        &self,
        request: &str,
        launches: &[ganlab::ops::gemm::GemmLaunch],
    ) -> usize {
        use ganlab::ops::gemm::Variant;
        for l in launches {
            let matrix = l.variant == Variant::Matrix;
            assert_eq!(matrix, self.expects_fragments(l), "{request}: {l:?}");
            assert_eq!(matrix, l.fragment > 0, "{request}: {l:?}");
        }
        launches
            .iter()
            .filter(|l| self.expects_fragments(l))
            .count()
    }
}

/// A generator seeded freshly each run (printed so a failure can be replayed with
/// `GANLAB_TEST_SEED`).
pub fn fresh_rng(test: &str) -> Rng {
    let seed = std::env::var("GANLAB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    eprintln!("{test}: GANLAB_TEST_SEED={seed}");
    Rng::seed(seed)
}

/// ||a - b|| / ||b||, computed in f64 (NaN anywhere gives NaN, which fails every bound).
pub fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let (mut num, mut den) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        if x.is_nan() != y.is_nan() {
            return f64::NAN;
        }
        if x.is_nan() || (x.is_infinite() && x == y) {
            continue;
        }
        num += (f64::from(x) - f64::from(y)).powi(2);
        den += f64::from(y).powi(2);
    }
    if den == 0.0 {
        num.sqrt()
    } else {
        (num / den).sqrt()
    }
}

/// Runs `f` on CPU tensors and on GPU copies of them; (GPU output, CPU output), after checking
/// that both have one shape and the GPU's stayed on the GPU.
pub fn gpu_and_cpu(
    what: &str,
    gpu: &Device,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> (Vec<f32>, Vec<f32>) {
    let cpu_out = f(inputs).unwrap_or_else(|e| panic!("{what} (cpu): {e}"));
    let gpu_inputs: Vec<Tensor> = inputs.iter().map(|t| t.to_device(gpu).unwrap()).collect();
    let gpu_out = f(&gpu_inputs).unwrap_or_else(|e| panic!("{what} (gpu): {e}"));
    assert_eq!(gpu_out.shape(), cpu_out.shape(), "{what}: shapes differ");
    assert!(gpu_out.device().is_gpu(), "{what}: result left the GPU");
    (gpu_out.to_vec().unwrap(), cpu_out.to_vec().unwrap())
}

/// Asserts that each GPU output `g[i]` lies within `tol * scale[i]` of the CPU's `c[i]`, where
/// `scale[i]` is the magnitude of the terms output i is computed from: the bound rounding
/// error obeys however much the terms cancel, where an error relative to the result is
/// unbounded (NaN fails).
pub fn assert_within_terms(what: &str, g: &[f32], c: &[f32], scale: &[f64], tol: f64) {
    assert!(
        g.len() == c.len() && c.len() == scale.len(),
        "{what}: lengths differ"
    );
    for (i, ((g, c), s)) in g.iter().zip(c).zip(scale).enumerate() {
        let err = f64::from((g - c).abs());
        assert!(
            err <= tol * s,
            "{what}: output {i} is {g}, not {c} (error {err:e}, terms' magnitudes {s})"
        );
    }
}

/// Runs `f` on CPU tensors and on GPU copies of them and asserts the relative L2 error.
pub fn assert_gpu_matches_cpu(
    what: &str,
    gpu: &Device,
    inputs: &[Tensor],
    tol: f64,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    let (g, c) = gpu_and_cpu(what, gpu, inputs, f);
    let err = rel_l2(&g, &c);
    assert!(err <= tol, "{what}: relative L2 error {err:e} > {tol:e}");
}

/// Central-difference check of every input's gradient for f64 CPU inputs. The (possibly
/// non-scalar) output is contracted with fixed random weights so every output element counts.
pub fn gradcheck(
    what: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    rng: &mut Rng,
) {
    let out = f(inputs).unwrap();
    let w = Tensor::randn_f64(out.shape(), 0.0, 1.0, rng).unwrap();
    let loss = |xs: &[Tensor]| -> f64 {
        f(xs)
            .unwrap()
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_vec_f64()
            .unwrap()[0]
    };
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().with_grad()).collect();
    let l = f(&leaves).unwrap().mul(&w).unwrap().sum_all().unwrap();
    let analytic = grad(&[l], None, &leaves, false).unwrap();
    compare_with_fd(what, inputs, &analytic, &loss, 1e-6, 1e-6);
}

/// Second-order check: the gradient of h(x) = <grad_x <f(x), v>, u> (computed with
/// `create_graph`) against central differences of h, which itself uses first-order autograd.
pub fn gradgradcheck(
    what: &str,
    inputs: &[Tensor],
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    rng: &mut Rng,
) {
    let out = f(inputs).unwrap();
    let v = Tensor::randn_f64(out.shape(), 0.0, 1.0, rng).unwrap();
    let us: Vec<Tensor> = inputs
        .iter()
        .map(|t| Tensor::randn_f64(t.shape(), 0.0, 1.0, rng).unwrap())
        .collect();
    let h = |xs: &[Tensor], create_graph: bool| -> Tensor {
        let out = f(xs).unwrap().mul(&v).unwrap().sum_all().unwrap();
        let gs = grad(&[out], None, xs, true).unwrap();
        let mut total = Tensor::from_vec_f64(vec![0.0], &[]).unwrap();
        for (g, u) in gs.into_iter().zip(&us) {
            if let Some(g) = g {
                total = total.add(&g.mul(u).unwrap().sum_all().unwrap()).unwrap();
            }
        }
        if create_graph {
            total
        } else {
            total.detach()
        }
    };
    let leaves: Vec<Tensor> = inputs.iter().map(|t| t.detach().with_grad()).collect();
    let hv = h(&leaves, true);
    let analytic = if hv.requires_grad() {
        grad(&[hv], None, &leaves, false).unwrap()
    } else {
        vec![None; leaves.len()]
    };
    let loss = |xs: &[Tensor]| -> f64 {
        let leaves: Vec<Tensor> = xs.iter().map(|t| t.detach().with_grad()).collect();
        h(&leaves, false).to_vec_f64().unwrap()[0]
    };
    compare_with_fd(what, inputs, &analytic, &loss, 1e-5, 1e-5);
}

/// Asserts `analytic[i]` (None: zero) against central differences of `loss` in each input.
pub fn compare_with_fd(
    what: &str,
    inputs: &[Tensor],
    analytic: &[Option<Tensor>],
    loss: &dyn Fn(&[Tensor]) -> f64,
    eps: f64,
    tol: f64,
) {
    for (i, input) in inputs.iter().enumerate() {
        let base = input.to_vec_f64().unwrap();
        let mut numeric = vec![0.0; base.len()];
        for j in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut xs: Vec<Tensor> = inputs.to_vec();
                xs[i] = Tensor::from_vec_f64(v, input.shape()).unwrap();
                loss(&xs)
            };
            numeric[j] = (eval(eps) - eval(-eps)) / (2.0 * eps);
        }
        let got = match &analytic[i] {
            Some(g) => g.to_vec_f64().unwrap(),
            None => vec![0.0; base.len()],
        };
        let scale = numeric
            .iter()
            .chain(&got)
            .fold(1.0f64, |m, v| m.max(v.abs()));
        for j in 0..base.len() {
            let diff = (got[j] - numeric[j]).abs();
            assert!(
                diff <= tol * scale,
                "{what}: d/d input{i}[{j}]: autograd {} vs finite differences {} (diff {diff:e})",
                got[j],
                numeric[j]
            );
        }
    }
}

/// Random f32 CPU tensor ~ N(0, 1).
pub fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, rng, &Device::Cpu).unwrap()
}

/// Random f64 CPU tensor ~ N(0, 1).
pub fn randn64(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn_f64(shape, 0.0, 1.0, rng).unwrap()
}

/// Random f64 CPU tensor ~ U(lo, hi).
pub fn uniform64(shape: &[usize], lo: f64, hi: f64, rng: &mut Rng) -> Tensor {
    Tensor::rand_uniform_f64(shape, lo, hi, rng).unwrap()
}

/// The tiny IDX fixtures (32 train, 16 test images) the CLI tests train on.
pub const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tiny-idx/gz");

/// Runs the `ganlab` binary; (success, stdout and stderr).
pub fn ganlab(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ganlab"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run ganlab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Mean and (population) variance of `v`, in f64.
pub fn mean_var(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}
