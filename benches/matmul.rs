//! `cargo bench --bench matmul [-- [--reps N] [--filter TEXT] [--variant NAME] [--all]
//! [--peak-tflops T]]`
//!
//! Per shape: median time, GFLOP/s (2*m*n*k per product) and the middle half of the times
//! (quartiles) of the WGSL kernels in each variant (`auto`: the launch plan's choice, `tiled`,
//! `wide`, `nosplit`, `nosubgroups`; see the conv bench), with the kernel, splits, workgroups
//! and K-steps per workgroup each launched, and of the blocked CPU kernel and a naive triple
//! loop (`blocked`, `naive`); with `--peak-tflops`, the share of that peak. GPU times come
//! from timestamp queries around the kernel when the adapter has them, else from wall time
//! around a synchronised submit (the header says which). Writes
//! `target/bench/matmul.json`.

mod common;

use common::{describe, peak, GemmVariant, Report, Times, Timing};
use ganlab::ops::gemm::{record_launches, GemmLaunch};
use serde::Serialize;

use ganlab::cpu::gemm::{gemm_f32, gemm_naive_f32, Gemm, MatRef};
use ganlab::{Device, Rng, Tensor};
use std::time::Instant;

struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "square-256",
        m: 256,
        k: 256,
        n: 256,
    },
    Shape {
        name: "square-512",
        m: 512,
        k: 512,
        n: 512,
    },
    Shape {
        name: "square-1024",
        m: 1024,
        k: 1024,
        n: 1024,
    },
    Shape {
        name: "square-2048",
        m: 2048,
        k: 2048,
        n: 2048,
    },
    // Dense layers of the book's GANs at batch 64: (batch, fan_in) @ (fan_in, fan_out).
    Shape {
        name: "gan-G-100x256",
        m: 64,
        k: 100,
        n: 256,
    },
    Shape {
        name: "gan-G-1024x784",
        m: 64,
        k: 1024,
        n: 784,
    },
    Shape {
        name: "gan-D-784x512",
        m: 64,
        k: 784,
        n: 512,
    },
    Shape {
        name: "gan-D-512x256",
        m: 64,
        k: 512,
        n: 256,
    },
    Shape {
        name: "dcgan-G-100x6272",
        m: 64,
        k: 100,
        n: 6272,
    },
    Shape {
        name: "dcgan-D-4096x1",
        m: 64,
        k: 4096,
        n: 1,
    },
];

struct Options {
    reps: usize,
    filter: Option<String>,
    variant: Option<String>,
    all: bool,
    peak_tflops: Option<f64>,
}

fn options() -> Options {
    let mut o = Options {
        reps: 5,
        filter: None,
        variant: None,
        all: false,
        peak_tflops: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(5).max(1),
            "--filter" => o.filter = args.next(),
            "--variant" => o.variant = args.next(),
            "--all" => o.all = true,
            "--peak-tflops" => o.peak_tflops = args.next().and_then(|v| v.parse().ok()),
            _ => {} // cargo passes --bench; ignore what is not ours
        }
    }
    o
}

fn gflops(s: &Shape, secs: f64) -> f64 {
    2.0 * (s.m * s.n * s.k) as f64 / secs / 1e9
}

/// Median seconds of one GPU matmul in `variant`, whether timestamps measured it, and the
/// GEMM it launched.
fn time_gpu(
    gpu: &Device,
    s: &Shape,
    variant: GemmVariant,
    reps: usize,
    rng: &mut Rng,
) -> ganlab::Result<(Times, bool, Vec<GemmLaunch>)> {
    let Device::Gpu(ctx) = gpu else {
        unreachable!()
    };
    let a = Tensor::randn(&[s.m, s.k], 0.0, 1.0, rng, gpu)?;
    let b = Tensor::randn(&[s.k, s.n], 0.0, 1.0, rng, gpu)?;
    let run = || variant.force(|| a.matmul(&b));
    // Compiles the pipeline, warms the pool, and records the launch.
    let (c, launches) = record_launches(run);
    drop(c?);
    gpu.synchronize()?;
    let mut times = Vec::new();
    let mut stamped = false;
    for _ in 0..reps {
        if ctx.start_timing(2) {
            let c = run()?;
            times.push(ctx.finish_timing()?.unwrap_or(0.0));
            drop(c);
            stamped = true;
        } else {
            let t = Instant::now();
            let c = run()?;
            gpu.synchronize()?;
            times.push(t.elapsed().as_secs_f64());
            drop(c);
        }
    }
    Ok((Times::of(times), stamped, launches))
}

fn time_cpu(s: &Shape, reps: usize, naive: bool, rng: &mut Rng) -> Times {
    let a: Vec<f32> = rng
        .normal_vec(s.m * s.k, 0.0, 1.0)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let b: Vec<f32> = rng
        .normal_vec(s.k * s.n, 0.0, 1.0)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let mut c = vec![0f32; s.m * s.n];
    let mut run = || {
        let t = Instant::now();
        let p = Gemm::new(
            (s.m, s.n, s.k),
            MatRef::rows(&a, s.k),
            MatRef::rows(&b, s.n),
        );
        if naive {
            gemm_naive_f32(p, &mut c);
        } else {
            gemm_f32(p, &mut c);
        }
        t.elapsed().as_secs_f64()
    };
    run();
    Times::of((0..reps).map(|_| run()).collect())
}

/// One timed product, as the JSON has it.
#[derive(Serialize)]
struct Row {
    shape: &'static str,
    m: usize,
    k: usize,
    n: usize,
    #[serde(flatten)]
    timing: Timing,
}

fn main() {
    let opts = options();
    let mut rng = Rng::seed(1);
    let gpu = match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) => {
            println!("GPU: none ({e}); CPU rows only");
            None
        }
    };
    let software = matches!(&gpu, Some(Device::Gpu(c)) if c.is_software());
    let mut adapter = None;
    if let Some(Device::Gpu(ctx)) = &gpu {
        adapter = Some(ctx.describe());
        println!("GPU: {}", ctx.describe());
        println!("GPU capabilities: {}", ctx.capabilities());
        if ctx.is_noop() {
            println!("noop: host overhead only, no kernel runs");
        }
        println!(
            "GPU timing: {}",
            if ctx.has_timestamps() {
                "timestamp queries around the kernels"
            } else {
                "wall time around a synchronised submit"
            }
        );
    }
    println!(
        "CPU threads: {}, reps: {} (median, and the middle half of the times)\n",
        rayon::current_num_threads(),
        opts.reps
    );
    let wanted = |name: &str| opts.variant.as_ref().is_none_or(|v| v == name);
    let mut rows = Vec::new();
    for s in SHAPES {
        if opts
            .filter
            .as_ref()
            .is_some_and(|f| !s.name.contains(f.as_str()))
        {
            continue;
        }
        println!("{}  {}x{}x{} (m k n)", s.name, s.m, s.k, s.n);
        let flops = (s.m * s.n * s.k) as f64;
        let mut report = |device, variant, times: Times, stamped, launches: Vec<GemmLaunch>| {
            let gflops = gflops(s, times.median_s);
            let (peak_fraction, peak) = peak(gflops, opts.peak_tflops);
            println!(
                "  {device:<4} {variant:<8} {:>9.3} ms {gflops:>8.1} GFLOP/s{peak}  {}  {}",
                times.median_s * 1e3,
                times.middle_half(),
                describe(&launches)
            );
            rows.push(Row {
                shape: s.name,
                m: s.m,
                k: s.k,
                n: s.n,
                timing: Timing {
                    device,
                    variant,
                    times,
                    gflops,
                    peak_fraction,
                    gpu_timestamps: stamped,
                    launches,
                },
            });
        };
        // A software adapter runs ~1 GFLOP/s: skip the largest products there unless --all.
        if let Some(g) = gpu
            .as_ref()
            .filter(|_| opts.all || !software || flops <= 1.1e9)
        {
            for variant in GemmVariant::ALL.into_iter().filter(|v| wanted(v.name())) {
                match time_gpu(g, s, variant, opts.reps, &mut rng) {
                    Ok((times, stamped, launches)) => {
                        report("gpu", variant.name(), times, stamped, launches)
                    }
                    Err(e) => println!("  gpu  {:<8} skipped: {e}", variant.name()),
                }
            }
        }
        if wanted("blocked") {
            let times = time_cpu(s, opts.reps, false, &mut rng);
            report("cpu", "blocked", times, false, Vec::new());
        }
        if wanted("naive") && (opts.all || flops <= 1.1e9) {
            let times = time_cpu(s, 1.max(opts.reps / 2), true, &mut rng);
            report("cpu", "naive", times, false, Vec::new());
        }
        println!();
    }
    let report = Report {
        bench: "matmul",
        adapter,
        reps: opts.reps,
        peak_tflops: opts.peak_tflops,
        rows,
    };
    report.write();
}
