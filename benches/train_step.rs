//! `cargo bench --bench train_step [-- --model gan,dcgan,cgan,wgan,wgan-gp,dcgan64 --batch
//! 32,64,128 --device cpu|gpu --reps N --all --json PATH --image-size 64|32]`
//!
//! dcgan64 trains on RGB images of `--image-size` (default 64), the others on 1x28x28.
//!
//! Real images per second of one full training iteration of each model (for the book's
//! models D on real, D on fake, G through the frozen D; for the WGANs n_critic critic steps,
//! each on its own batch, then the G step), per batch size and device: median wall time
//! of `reps` iterations after two warm-up iterations, synchronised at the end of each (a loss
//! read-back, as the trainer does when it logs). On a GPU it also prints what an iteration
//! costs the host, counted exactly: dispatches, compute passes, submits, and wgpu buffers and
//! bind groups created (0 once warm), with the pool's peak bytes.
//!
//! `GANLAB_BACKEND=noop ... --device gpu` runs the GPU path on wgpu's noop backend: every call
//! is validated and tracked but no kernel runs, so ms/iter is the host's floor on any GPU.
//! Writes `target/bench/train_step.json`.

mod common;

use common::median;

use ganlab::data::{Batch, Batcher, Sampling, Split, Values};
use ganlab::device::CounterSnapshot;
use ganlab::models;
use ganlab::ops::gemm::{record_launches, GemmLaunch, Variant};
use ganlab::{Device, Rng, Tensor};
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize)]
struct Row {
    model: String,
    batch: usize,
    device: String,
    median_s: f64,
    images_per_s: f64,
    /// The most tensor storage alive during the timed iterations (parameters, optimiser state
    /// and a step's activations and gradients), on either device.
    peak_tensor_bytes: u64,
    /// Per iteration, over the timed iterations (GPU only).
    per_iter: Option<PerIter>,
    /// Every GEMM one warm iteration launched, as planned (GPU only).
    gemms: Vec<GemmLaunch>,
    /// Median seconds to draw the iteration's batch from stored pixels.
    batch_assembly_s: f64,
}

#[derive(Serialize)]
struct PerIter {
    dispatches: f64,
    compute_passes: f64,
    submits: f64,
    buffers_created: f64,
    bind_groups_created: f64,
    peak_pool_bytes: u64,
}

/// "GEMMs per iter: 24 (thin 4, wide 3, tiled 17, matrix 0; 12 split-K, 9,876 workgroups)".
fn gemm_summary(gemms: &[GemmLaunch]) -> String {
    let count = |v: Variant| gemms.iter().filter(|l| l.variant == v).count();
    format!(
        "GEMMs per iter: {} (thin {}, wide {}, tiled {}, matrix {}; {} split-K, {} workgroups)",
        gemms.len(),
        count(Variant::Thin),
        count(Variant::Wide),
        count(Variant::Tiled),
        count(Variant::Matrix),
        gemms.iter().filter(|l| l.splits > 1).count(),
        gemms.iter().map(|l| l.workgroups).sum::<usize>()
    )
}

impl PerIter {
    fn new(c: &CounterSnapshot, iters: usize) -> Self {
        let n = iters as f64;
        PerIter {
            dispatches: c.dispatches as f64 / n,
            compute_passes: c.compute_passes as f64 / n,
            submits: c.submits as f64 / n,
            buffers_created: c.buffers_created as f64 / n,
            bind_groups_created: c.bind_groups_created as f64 / n,
            peak_pool_bytes: c.peak_pool_bytes,
        }
    }
}

/// Median seconds to draw a batch of `images` items of `shape` from a split of stored pixels
/// (gather and convert to floats, as the trainer's data thread does).
fn batch_assembly_s(images: usize, shape: [usize; 3]) -> f64 {
    let n = 2048;
    let len: usize = shape.iter().product();
    let pixels: Vec<u8> = (0..n * len).map(|i| (i * 131 % 251) as u8).collect();
    let split = Split {
        values: Values::Pixels(pixels),
        labels: vec![0; n],
        n,
        item_shape: shape.to_vec(),
    };
    let mut batcher = Batcher::new(n, images, Sampling::WithReplacement, 0).expect("batcher");
    let mut batch = Batch::default();
    median(
        (0..21)
            .map(|_| {
                let t = Instant::now();
                batcher.next_batch(&split, &mut batch).expect("batch");
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    models: Vec<String>,
    batches: Vec<usize>,
    device: Option<String>,
    reps: usize,
    all: bool,
    json: Option<String>,
    /// dcgan64's side (64 or 32); its images are RGB.
    image_size: usize,
}

fn options() -> Options {
    let mut o = Options {
        models: vec!["gan".into(), "dcgan".into()],
        batches: vec![32, 64, 128],
        device: None,
        reps: 5,
        all: false,
        json: None,
        image_size: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => {
                o.models = args
                    .next()
                    .map(|v| v.split(',').map(String::from).collect())
                    .unwrap_or(o.models)
            }
            "--batch" => {
                o.batches = args
                    .next()
                    .map(|v| v.split(',').filter_map(|b| b.parse().ok()).collect())
                    .unwrap_or(o.batches)
            }
            "--device" => o.device = args.next(),
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(5).max(1),
            "--all" => o.all = true,
            "--json" => o.json = args.next(),
            "--image-size" => o.image_size = args.next().and_then(|v| v.parse().ok()).unwrap_or(64),
            _ => {}
        }
    }
    o
}

fn main() {
    ganlab::cpu::alloc::keep_freed_memory();
    let opts = options();
    let mut devices = Vec::new();
    if opts.device.as_deref() != Some("gpu") {
        devices.push(Device::Cpu);
    }
    let mut software = false;
    let mut noop = false;
    if opts.device.as_deref() != Some("cpu") {
        match Device::gpu() {
            Ok(d) => {
                if let Device::Gpu(ctx) = &d {
                    println!("GPU: {}", ctx.describe());
                    println!("GPU capabilities: {}", ctx.capabilities());
                    software = ctx.is_software();
                    noop = ctx.is_noop();
                    if noop {
                        println!("noop: host overhead only, no kernel runs");
                    }
                }
                devices.push(d);
            }
            Err(e) => println!("GPU: none ({e})"),
        }
    }
    println!(
        "CPU threads: {}; reps {} (median of wall time per iteration)\n",
        rayon::current_num_threads(),
        opts.reps
    );
    println!(
        "{:<7} {:>6} {:<34} {:>9} {:>9} {:>10} | per iter: {:>6} {:>6} {:>7} {:>7} {:>6} {:>13}",
        "model",
        "batch",
        "device",
        "ms/iter",
        "images/s",
        "tensor MiB",
        "disp",
        "passes",
        "submits",
        "buffers",
        "bgs",
        "pool peak MiB"
    );
    let mut rows = Vec::new();
    for model_name in &opts.models {
        for &batch in &opts.batches {
            for device in &devices {
                // A software adapter runs a DCGAN iteration in tens of seconds: only the
                // vanilla GAN at the smallest batch there, unless --all.
                if device.is_gpu()
                    && software
                    && !opts.all
                    && (model_name != "gan" || batch != opts.batches[0])
                {
                    continue;
                }
                // dcgan64 draws RGB at --image-size; the others MNIST's 1x28x28.
                let model_opts = models::Options {
                    image: if model_name == "dcgan64" {
                        [3, opts.image_size, opts.image_size]
                    } else {
                        models::gan::MNIST
                    },
                    ..models::Options::default()
                };
                let built =
                    models::build(model_name, "mnist", &model_opts, &mut Rng::seed(1), device);
                let mut model = match built {
                    Ok(m) => m,
                    Err(e) => {
                        println!("{model_name}: {e}");
                        continue;
                    }
                };
                let mut rng = Rng::seed(2);
                // WGAN's critic takes one batch per critic step: an iteration sees them all.
                let images = batch * model.batches_per_step();
                let [c, h, w] = model_opts.image;
                let real = Tensor::rand_uniform(&[images, c, h, w], -1.0, 1.0, &mut rng, device)
                    .expect("batch");
                let labels: Vec<usize> = (0..images).map(|i| i % 10).collect();
                let mut step = || -> ganlab::Result<f64> {
                    let t = Instant::now();
                    let metrics = model.train_step(&real, &labels, &mut rng)?;
                    metrics[0].item()?;
                    Ok(t.elapsed().as_secs_f64())
                };
                let counters = || match device {
                    Device::Gpu(ctx) => Some(ctx.counters()),
                    Device::Cpu => None,
                };
                let result = (|| -> ganlab::Result<(f64, u64, Option<CounterSnapshot>, _)> {
                    step()?;
                    let (warm, gemms) = record_launches(&mut step);
                    warm?;
                    device.reset_tensor_peak();
                    let before = counters();
                    let times = (0..opts.reps)
                        .map(|_| step())
                        .collect::<ganlab::Result<Vec<_>>>()?;
                    let counts = counters().zip(before).map(|(a, b)| a.since(&b));
                    Ok((median(times), device.tensor_bytes().1, counts, gemms))
                })();
                let name = format!("{device:?}");
                match result {
                    Ok((secs, peak_tensor_bytes, counts, gemms)) => {
                        let per_iter = counts.map(|c| PerIter::new(&c, opts.reps));
                        let counts_text = per_iter.as_ref().map_or(String::new(), |c| {
                            format!(
                                " | per iter: {:>6.0} {:>6.1} {:>7.1} {:>7.1} {:>6.1} {:>13.1}",
                                c.dispatches,
                                c.compute_passes,
                                c.submits,
                                c.buffers_created,
                                c.bind_groups_created,
                                c.peak_pool_bytes as f64 / (1 << 20) as f64
                            )
                        });
                        println!(
                            "{model_name:<7} {batch:>6} {name:<34} {:>9.2} {:>9.0} {:>10.1}{counts_text}",
                            secs * 1e3,
                            images as f64 / secs,
                            peak_tensor_bytes as f64 / (1 << 20) as f64
                        );
                        if !gemms.is_empty() {
                            println!("{:<15}{}", "", gemm_summary(&gemms));
                        }
                        let loading = batch_assembly_s(images, model_opts.image);
                        println!(
                            "{:<15}data: a batch drawn from stored pixels in {:.2} ms ({:.2}% of \
                             the step; the trainer draws it on its own thread meanwhile)",
                            "",
                            loading * 1e3,
                            100.0 * loading / secs
                        );
                        rows.push(Row {
                            model: model_name.clone(),
                            batch,
                            device: name,
                            median_s: secs,
                            images_per_s: images as f64 / secs,
                            peak_tensor_bytes,
                            per_iter,
                            gemms,
                            batch_assembly_s: loading,
                        });
                    }
                    Err(e) => println!("{model_name:<7} {batch:>6} {name:<34} failed: {e}"),
                }
            }
        }
    }
    let out = serde_json::json!({
        "bench": "train_step",
        "reps": opts.reps,
        "noop": noop,
        "rows": rows,
    });
    let text = format!("{out:#}\n");
    match &opts.json {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                println!("could not write {path}: {e}");
            }
        }
        None => common::write_json("train_step", &text),
    }
}
