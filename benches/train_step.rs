//! `cargo bench --bench train_step [-- --model gan,dcgan,cgan,wgan,wgan-gp --batch 32,64,128
//! --device cpu|gpu --reps N --all]`
//!
//! Real images per second of one full training iteration of each model (for the book's
//! models D on real, D on fake, G through the frozen D; for the WGANs n_critic critic steps,
//! each on its own batch, then the G step), per batch size and device: median wall time
//! of `reps` iterations after two warm-up iterations, synchronised at the end of each (a loss
//! read-back, as the trainer does when it logs). Writes `target/bench/train_step.json`.

mod common;

use common::median;

use ganlab::models;
use ganlab::{Device, Rng, Tensor};
use std::time::Instant;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Options {
    models: Vec<String>,
    batches: Vec<usize>,
    device: Option<String>,
    reps: usize,
    all: bool,
}

fn options() -> Options {
    let mut o = Options {
        models: vec!["gan".into(), "dcgan".into()],
        batches: vec![32, 64, 128],
        device: None,
        reps: 5,
        all: false,
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
    if opts.device.as_deref() != Some("cpu") {
        match Device::gpu() {
            Ok(d) => {
                if let Device::Gpu(ctx) = &d {
                    println!("GPU: {}", ctx.describe());
                    software = ctx.is_software();
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
        "{:<7} {:>6} {:<34} {:>10} {:>10}",
        "model", "batch", "device", "ms/iter", "images/s"
    );
    let mut json = Vec::new();
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
                let model_opts = models::Options::default();
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
                let real = Tensor::rand_uniform(&[images, 1, 28, 28], -1.0, 1.0, &mut rng, device)
                    .expect("batch");
                let labels: Vec<usize> = (0..images).map(|i| i % 10).collect();
                let mut step = || -> ganlab::Result<f64> {
                    let t = Instant::now();
                    let metrics = model.train_step(&real, &labels, &mut rng)?;
                    metrics[0].item()?;
                    Ok(t.elapsed().as_secs_f64())
                };
                let result = (|| -> ganlab::Result<f64> {
                    step()?;
                    step()?;
                    Ok(median(
                        (0..opts.reps)
                            .map(|_| step())
                            .collect::<ganlab::Result<Vec<_>>>()?,
                    ))
                })();
                let name = format!("{device:?}");
                match result {
                    Ok(secs) => {
                        println!(
                            "{model_name:<7} {batch:>6} {name:<34} {:>10.1} {:>10.0}",
                            secs * 1e3,
                            images as f64 / secs
                        );
                        json.push(format!(
                            "{{\"model\":\"{model_name}\",\"batch\":{batch},\"device\":\"{}\",\"median_s\":{secs:.6e},\"images_per_s\":{:.2}}}",
                            name.replace('"', "'"),
                            images as f64 / secs
                        ));
                    }
                    Err(e) => println!("{model_name:<7} {batch:>6} {name:<34} failed: {e}"),
                }
            }
        }
    }
    let out = format!(
        "{{\"bench\":\"train_step\",\"reps\":{},\"rows\":[{}]}}\n",
        opts.reps,
        json.join(",")
    );
    common::write_json("train_step", &out);
}
