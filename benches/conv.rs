//! `cargo bench --bench conv [-- --filter TEXT --pass fwd|dx|dw --reps N --batch 64,256 --device cpu|gpu]`
//!
//! Profiles every convolution shape of the DCGAN generator and discriminator, the WGAN
//! critic and generator, and the ProGAN blocks: forward (each GPU variant), gradient w.r.t.
//! the input and w.r.t. the weights, on the GPU and the CPU. Prints a table per shape (median
//! ms, GFLOP/s counting 2*N*Cout*Hout*Wout*Cin*K*K per pass, the best forward variant) and
//! writes `target/bench/conv.json`. GPU times come from timestamp queries around the kernels
//! when the adapter has them, else from wall time around a synchronised submit.

mod common;

use common::median;

use ganlab::ops::conv::{conv_forward, conv_input_grad, conv_weight_grad, Geometry};
use ganlab::ops::{set_conv_algo, ConvAlgo, Padding};
use ganlab::{Device, Result, Rng, Tensor};
use std::time::Instant;

/// (model, layer, cin, cout, input size, kernel, stride, padding)
type Layer = (
    &'static str,
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    Padding,
);

fn layers() -> Vec<Layer> {
    use Padding::*;
    vec![
        ("dcgan-G", "conv1 128->128 14x14", 128, 128, 14, 3, 1, Same),
        ("dcgan-G", "conv2 128->64 28x28", 128, 64, 28, 3, 1, Same),
        ("dcgan-G", "conv3 64->1 28x28", 64, 1, 28, 3, 1, Same),
        ("dcgan-D", "conv1 1->32 s2 28x28", 1, 32, 28, 3, 2, Same),
        ("dcgan-D", "conv2 32->64 s2 14x14", 32, 64, 14, 3, 2, Same),
        ("dcgan-D", "conv3 64->128 s2 8x8", 64, 128, 8, 3, 2, Same),
        ("dcgan-D", "conv4 128->256 4x4", 128, 256, 4, 3, 1, Same),
        ("wgan-C", "conv1 1->16 s2 28x28", 1, 16, 28, 3, 2, Same),
        ("wgan-C", "conv2 16->32 s2 14x14", 16, 32, 14, 3, 2, Same),
        ("wgan-C", "conv3 32->64 s2 8x8", 32, 64, 8, 3, 2, Same),
        ("wgan-C", "conv4 64->128 4x4", 64, 128, 4, 3, 1, Same),
        (
            "wgan-G",
            "conv1 128->128 k4 14x14",
            128,
            128,
            14,
            4,
            1,
            Same,
        ),
        ("wgan-G", "conv2 128->64 k4 28x28", 128, 64, 28, 4, 1, Same),
        ("wgan-G", "conv3 64->1 k4 28x28", 64, 1, 28, 4, 1, Same),
        ("progan", "G 4x4 64->64", 64, 64, 4, 3, 1, Same),
        ("progan", "G/D 8x8 64->64", 64, 64, 8, 3, 1, Same),
        ("progan", "G/D 16x16 64->64", 64, 64, 16, 3, 1, Same),
        ("progan", "G/D 32x32 64->64", 64, 64, 32, 3, 1, Same),
        ("progan", "toRGB 1x1 64->1 32x32", 64, 1, 32, 1, 1, Valid),
        ("progan", "fromRGB 1x1 1->64 32x32", 1, 64, 32, 1, 1, Valid),
        ("progan", "D last 65->64 4x4", 65, 64, 4, 3, 1, Same),
        ("progan", "D last 64->64 k4 valid", 64, 64, 4, 4, 1, Valid),
    ]
}

struct Options {
    filter: Option<String>,
    pass: Option<String>,
    reps: usize,
    batches: Option<Vec<usize>>,
    device: Option<String>,
}

fn options() -> Options {
    let mut o = Options {
        filter: None,
        pass: None,
        reps: 0,
        batches: None,
        device: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--filter" => o.filter = args.next(),
            "--pass" => o.pass = args.next(),
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--batch" => {
                o.batches = args
                    .next()
                    .map(|v| v.split(',').filter_map(|b| b.parse().ok()).collect())
            }
            "--device" => o.device = args.next(),
            _ => {} // cargo passes --bench
        }
    }
    o
}

#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Forward(ConvAlgo),
    InputGrad,
    WeightGrad,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Forward(ConvAlgo::ImplicitGemm) => "fwd implicit-gemm",
            Pass::Forward(ConvAlgo::Im2col) => "fwd im2col+matmul",
            Pass::InputGrad => "grad-input",
            Pass::WeightGrad => "grad-weight",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Pass::Forward(_) => "fwd",
            Pass::InputGrad => "dx",
            Pass::WeightGrad => "dw",
        }
    }
}

/// Median seconds of one pass; `stamped` says whether GPU timestamps measured it.
fn time_pass(
    dev: &Device,
    g: Geometry,
    pass: Pass,
    reps: usize,
    rng: &mut Rng,
) -> Result<(f64, bool)> {
    let x = Tensor::randn(&[g.batch, g.cin, g.h, g.w], 0.0, 1.0, rng, dev)?;
    let w = Tensor::randn(&[g.cout, g.cin, g.kh, g.kw], 0.0, 0.1, rng, dev)?;
    let gy = Tensor::randn(&[g.batch, g.cout, g.oh, g.ow], 0.0, 1.0, rng, dev)?;
    let run = || -> Result<Tensor> {
        match pass {
            Pass::Forward(algo) => {
                set_conv_algo(algo);
                conv_forward(&x, &w, g)
            }
            Pass::InputGrad => conv_input_grad(&gy, &w, g),
            Pass::WeightGrad => conv_weight_grad(&x, &gy, g),
        }
    };
    run()?; // compile pipelines, warm the pool
    dev.synchronize()?;
    let mut times = Vec::with_capacity(reps);
    let mut stamped = false;
    for _ in 0..reps {
        match dev {
            Device::Gpu(ctx) if ctx.start_timing(8) => {
                drop(run()?);
                times.push(ctx.finish_timing()?.unwrap_or(0.0));
                stamped = true;
            }
            _ => {
                let t = Instant::now();
                let out = run()?;
                dev.synchronize()?;
                times.push(t.elapsed().as_secs_f64());
                drop(out);
            }
        }
    }
    Ok((median(times), stamped))
}

fn main() {
    let opts = options();
    let mut rng = Rng::seed(3);
    let mut devices: Vec<(String, Device)> = Vec::new();
    let mut software = false;
    if opts.device.as_deref() != Some("cpu") {
        match Device::gpu() {
            Ok(dev) => {
                if let Device::Gpu(ctx) = &dev {
                    software = ctx.is_software();
                    println!("GPU: {}", ctx.describe());
                    if ctx.is_noop() {
                        println!("noop: host overhead only, no kernel runs");
                    }
                    println!(
                        "GPU timing: {}",
                        if ctx.has_timestamps() {
                            "timestamp queries around the kernels"
                        } else {
                            "wall time around a synchronised submit (no timestamp queries)"
                        }
                    );
                }
                devices.push(("gpu".into(), dev));
            }
            Err(e) => println!("GPU: none ({e})"),
        }
    }
    if opts.device.as_deref() != Some("gpu") {
        devices.push(("cpu".into(), Device::Cpu));
    }
    // A software adapter is ~100x slower than a GPU: fewer reps and batch 64 unless asked.
    let reps = if opts.reps > 0 {
        opts.reps
    } else if software {
        3
    } else {
        10
    };
    let batches = opts
        .batches
        .clone()
        .unwrap_or(if software { vec![64] } else { vec![64, 256] });
    println!(
        "CPU threads: {}; reps: {reps} (median); batches: {batches:?}\n",
        rayon::current_num_threads()
    );

    let passes = [
        Pass::Forward(ConvAlgo::ImplicitGemm),
        Pass::Forward(ConvAlgo::Im2col),
        Pass::InputGrad,
        Pass::WeightGrad,
    ];
    let mut json = Vec::new();
    for (model, layer, cin, cout, size, k, stride, padding) in layers() {
        let name = format!("{model} {layer}");
        if opts
            .filter
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            continue;
        }
        for &batch in &batches {
            let pad = padding.resolve(size, size, k, k, stride);
            let Ok(g) = Geometry::new(&[batch, cin, size, size], &[cout, cin, k, k], stride, pad)
            else {
                continue;
            };
            println!(
                "{name}  batch {batch}  ({:.2} GFLOP per pass)",
                g.flops() / 1e9
            );
            for (dev_name, dev) in &devices {
                let mut best: Option<(f64, &str)> = None;
                for &pass in &passes {
                    if opts.pass.as_ref().is_some_and(|p| p != pass.short()) {
                        continue;
                    }
                    // The CPU has one forward path; its im2col row would repeat it.
                    if dev_name == "cpu" && pass == Pass::Forward(ConvAlgo::Im2col) {
                        continue;
                    }
                    // The CPU forward is always im2col + blocked GEMM.
                    let label = if dev_name == "cpu" && matches!(pass, Pass::Forward(_)) {
                        "fwd im2col+gemm"
                    } else {
                        pass.name()
                    };
                    match time_pass(dev, g, pass, reps, &mut rng) {
                        Ok((secs, stamped)) => {
                            let gflops = g.flops() / secs / 1e9;
                            println!(
                                "  {dev_name:<4} {label:<20} {:>9.3} ms {:>8.1} GFLOP/s",
                                secs * 1e3,
                                gflops
                            );
                            if matches!(pass, Pass::Forward(_))
                                && best.is_none_or(|(b, _)| secs < b)
                            {
                                best = Some((secs, pass.name()));
                            }
                            json.push(format!(
                                "{{\"model\":\"{model}\",\"layer\":\"{layer}\",\"batch\":{batch},\"device\":\"{dev_name}\",\"pass\":\"{}\",\"median_s\":{secs:.6e},\"gflops\":{gflops:.3},\"gpu_timestamps\":{}}}",
                                label,
                                stamped && dev_name == "gpu"
                            ));
                        }
                        Err(e) => println!("  {dev_name:<4} {label:<20} skipped: {e}"),
                    }
                }
                if let (Some((_, b)), "gpu") = (best, dev_name.as_str()) {
                    println!("  gpu  best forward: {b}");
                }
            }
            println!();
        }
    }
    let adapter = devices
        .iter()
        .find_map(|(_, d)| match d {
            Device::Gpu(c) => Some(format!("\"{}\"", c.describe().replace('"', "'"))),
            _ => None,
        })
        .unwrap_or_else(|| "null".into());
    let out = format!(
        "{{\"bench\":\"conv\",\"adapter\":{adapter},\"reps\":{reps},\"rows\":[{}]}}\n",
        json.join(",")
    );
    common::write_json("conv", &out);
}
