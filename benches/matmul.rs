//! `cargo bench --bench matmul [-- [--reps N] [--filter TEXT] [--all]]`
//!
//! Per shape: median time and GFLOP/s (2*m*n*k per product) of the WGSL kernel, the blocked
//! CPU kernel and a naive triple loop, and the blocked/naive ratio. GPU times come from
//! timestamp queries around the kernel when the adapter has them, else from wall time around
//! a synchronised submit (the table says which). Writes `target/bench/matmul.json`.

mod common;

use common::median;

use ganlab::cpu::gemm::{gemm_f32, gemm_naive_f32};
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
    all: bool,
}

fn options() -> Options {
    let mut o = Options {
        reps: 5,
        filter: None,
        all: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(5).max(1),
            "--filter" => o.filter = args.next(),
            "--all" => o.all = true,
            _ => {} // cargo passes --bench; ignore what is not ours
        }
    }
    o
}

fn gflops(s: &Shape, secs: f64) -> f64 {
    2.0 * (s.m * s.n * s.k) as f64 / secs / 1e9
}

/// Median seconds of one GPU matmul and whether timestamps measured it.
fn time_gpu(gpu: &Device, s: &Shape, reps: usize, rng: &mut Rng) -> ganlab::Result<(f64, bool)> {
    let Device::Gpu(ctx) = gpu else {
        unreachable!()
    };
    let a = Tensor::randn(&[s.m, s.k], 0.0, 1.0, rng, gpu)?;
    let b = Tensor::randn(&[s.k, s.n], 0.0, 1.0, rng, gpu)?;
    a.matmul(&b)?; // compile the pipeline, warm the pool
    gpu.synchronize()?;
    let mut times = Vec::new();
    let mut stamped = false;
    for _ in 0..reps {
        if ctx.start_timing(1) {
            let c = a.matmul(&b)?;
            times.push(ctx.finish_timing()?.unwrap_or(0.0));
            drop(c);
            stamped = true;
        } else {
            let t = Instant::now();
            let c = a.matmul(&b)?;
            gpu.synchronize()?;
            times.push(t.elapsed().as_secs_f64());
            drop(c);
        }
    }
    Ok((median(times), stamped))
}

fn time_cpu(s: &Shape, reps: usize, naive: bool, rng: &mut Rng) -> f64 {
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
        if naive {
            gemm_naive_f32(s.m, s.n, s.k, &a, s.k, 1, &b, s.n, 1, &mut c, false);
        } else {
            gemm_f32(s.m, s.n, s.k, &a, s.k, 1, &b, s.n, 1, &mut c, false);
        }
        t.elapsed().as_secs_f64()
    };
    run();
    median((0..reps).map(|_| run()).collect())
}

fn main() {
    let opts = options();
    let mut rng = Rng::seed(1);
    let gpu = match Device::gpu() {
        Ok(d) => Some(d),
        Err(e) => {
            println!("GPU: none ({e}); CPU columns only");
            None
        }
    };
    let software = matches!(&gpu, Some(Device::Gpu(c)) if c.is_software());
    if let Some(Device::Gpu(ctx)) = &gpu {
        println!("GPU: {}", ctx.describe());
        if ctx.is_noop() {
            println!("noop: host overhead only, no kernel runs");
        }
        println!(
            "GPU timing: {}",
            if ctx.has_timestamps() {
                "timestamp queries around the kernel"
            } else {
                "wall time around a synchronised submit"
            }
        );
    }
    println!(
        "CPU threads: {}, reps: {} (median)\n",
        rayon::current_num_threads(),
        opts.reps
    );
    println!(
        "{:<18} {:>16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "shape (m k n)",
        "",
        "gpu ms",
        "gpu GF/s",
        "cpu ms",
        "cpu GF/s",
        "naive ms",
        "naive GF",
        "cpu/naive"
    );
    let mut json = Vec::new();
    for s in SHAPES {
        if opts
            .filter
            .as_ref()
            .is_some_and(|f| !s.name.contains(f.as_str()))
        {
            continue;
        }
        let flops = (s.m * s.n * s.k) as f64;
        // A software adapter runs ~1 GFLOP/s: skip the largest products there unless --all.
        let gpu_res = match &gpu {
            Some(g) if opts.all || !software || flops <= 1.1e9 => {
                time_gpu(g, s, opts.reps, &mut rng).ok()
            }
            _ => None,
        };
        let cpu = time_cpu(s, opts.reps, false, &mut rng);
        let naive =
            (opts.all || flops <= 1.1e9).then(|| time_cpu(s, 1.max(opts.reps / 2), true, &mut rng));
        let fmt =
            |v: Option<f64>, scale: f64| v.map_or("-".to_string(), |v| format!("{:.2}", v * scale));
        println!(
            "{:<18} {:>16} {:>9} {:>9} {:>9.2} {:>9.1} {:>9} {:>9} {:>8}",
            s.name,
            format!("{}x{}x{}", s.m, s.k, s.n),
            fmt(gpu_res.map(|r| r.0), 1e3),
            fmt(gpu_res.map(|r| gflops(s, r.0)), 1.0),
            cpu * 1e3,
            gflops(s, cpu),
            fmt(naive, 1e3),
            fmt(naive.map(|t| gflops(s, t)), 1.0),
            naive.map_or("-".to_string(), |t| format!("{:.1}x", t / cpu)),
        );
        let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.6e}"));
        json.push(format!(
            "{{\"shape\":\"{}\",\"m\":{},\"k\":{},\"n\":{},\"gpu_s\":{},\"gpu_timestamps\":{},\"cpu_s\":{:.6e},\"naive_s\":{}}}",
            s.name, s.m, s.k, s.n,
            num(gpu_res.map(|r| r.0)),
            gpu_res.is_some_and(|r| r.1),
            cpu,
            num(naive)
        ));
    }
    let adapter = match &gpu {
        Some(Device::Gpu(c)) => format!("\"{}\"", c.describe().replace('"', "'")),
        _ => "null".into(),
    };
    let out = format!(
        "{{\"bench\":\"matmul\",\"adapter\":{adapter},\"rows\":[{}]}}\n",
        json.join(",")
    );
    common::write_json("matmul", &out);
}
