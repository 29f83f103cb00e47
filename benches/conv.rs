//! `cargo bench --bench conv [-- --filter TEXT --pass fwd|dx|dw --variant NAME --reps N
//! --batch 64,256 --device cpu|gpu --peak-tflops T --simd baseline|avx2|avx512]`
//!
//! Profiles every convolution shape of the DCGAN generator and discriminator, the WGAN
//! critic and generator, the ProGAN blocks and the 64x64 DCGAN (`--filter dcgan64`), layers
//! at the edges of the CPU's few-weights rule (`--filter few-weights`), and the generators'
//! upsampling convolutions as they train (`--filter up`) next to the same
//! convolutions of the stored upsampled image: forward, gradient w.r.t. the input and w.r.t.
//! the weights, in every kernel variant of each device (`--variant` forces one):
//! - GPU: `auto` (the launch plan's choice: the thin kernel for one to four output channels,
//!   64x128 tiles where they fill the device, split-K where the grid is too small), `tiled`
//!   and `wide` (64x64 or 64x128 tiles whatever the shape), `nosplit` (one pass over all of
//!   K), `nosubgroups` (the plan's choice with the plain kernels where the device has
//!   subgroups: the thin kernel's lanes, the split-K reduce, reductions), `im2col` (forward
//!   only: the im2col matrix, then the matmul kernel);
//! - CPU: `auto` (what training runs), `direct`, `gemm` (im2col + blocked GEMM). The direct
//!   kernels run the widest vector build this CPU has; `--simd` forces a narrower one (an
//!   AVX-512 machine measuring what AVX2-only CPUs get).
//!
//! By default every GPU variant runs and the CPU's `auto`; `--variant all` runs every variant
//! of both.
//!
//! Per pass it prints the median time, GFLOP/s (2*N*Cout*Hout*Wout*Cin*K*K per pass) and, with
//! `--peak-tflops`, the share of that peak, then the middle half of the times (the quartiles:
//! how noisy the machine was); for the GPU the kernel, splits, workgroups and K-steps per
//! workgroup of each GEMM it launched. Everything also goes to
//! `target/bench/conv.json`. GPU times come from timestamp queries around the kernels when the
//! adapter has them, else from wall time around a synchronised submit.

mod common;

use common::{describe, peak, GemmVariant, Report, Times, Timing};

use ganlab::cpu::simd::{with_level, Level};
use ganlab::ops::conv::{conv_forward, conv_input_grad, conv_weight_grad, Geometry};
use ganlab::ops::gemm::{record_launches, GemmLaunch};
use ganlab::ops::{set_conv_algo, with_cpu_conv, ConvAlgo, CpuConv, Padding};
use ganlab::{Device, Result, Rng, Tensor};
use serde::Serialize;
use std::time::Instant;

// The allocator the `ganlab` binary trains with: big outputs are reused, not page-faulted.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// PyTorch's `padding=1`.
const P1: Padding = Padding::Explicit {
    top: 1,
    bottom: 1,
    left: 1,
    right: 1,
};

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
        // The 64x64 DCGAN's D; G's transposed convolutions are these layers run backwards
        // (G's forward is a row's dx, its input gradient the row's forward), and G's first
        // layer, z to 512x4x4, is `dcgan64-G z` backwards.
        ("dcgan64-D", "conv1 3->64 k4 s2 64x64", 3, 64, 64, 4, 2, P1),
        (
            "dcgan64-D",
            "conv2 64->128 k4 s2 32x32",
            64,
            128,
            32,
            4,
            2,
            P1,
        ),
        (
            "dcgan64-D",
            "conv3 128->256 k4 s2 16x16",
            128,
            256,
            16,
            4,
            2,
            P1,
        ),
        (
            "dcgan64-D",
            "conv4 256->512 k4 s2 8x8",
            256,
            512,
            8,
            4,
            2,
            P1,
        ),
        (
            "dcgan64-D",
            "conv5 512->1 k4 valid 4x4",
            512,
            1,
            4,
            4,
            1,
            Valid,
        ),
        (
            "dcgan64-G",
            "z 512->100 k4 valid 4x4",
            512,
            100,
            4,
            4,
            1,
            Valid,
        ),
        // Layers no model here has, at the edges of the CPU's few-weights rule (`auto` should
        // match the faster of `direct` and `gemm`): 16 weights strided and not, 1x1 over 3, 4
        // and 16 planes, and 8 and 16 weights, where tap blocks of 8 once ran 8-20x slow.
        ("few-weights", "1->32 k4 s2 28x28", 1, 32, 28, 4, 2, Same),
        ("few-weights", "1->32 k4 28x28", 1, 32, 28, 4, 1, Same),
        ("few-weights", "2->32 k2 s2 28x28", 2, 32, 28, 2, 2, Same),
        ("few-weights", "3->32 1x1 28x28", 3, 32, 28, 1, 1, Valid),
        ("few-weights", "4->32 1x1 28x28", 4, 32, 28, 1, 1, Valid),
        ("few-weights", "16->32 1x1 28x28", 16, 32, 28, 1, 1, Valid),
    ]
}

/// Upsampling convolutions (the input nearest-upsampled `up` times, then a stride-1
/// convolution, one op): (model, layer, cin, cout, input size before upsampling, kernel, up,
/// padding).
fn upsampling_layers() -> Vec<Layer> {
    use Padding::*;
    vec![
        (
            "dcgan-G",
            "up x2 + conv1 128->128 7x7",
            128,
            128,
            7,
            3,
            2,
            Same,
        ),
        (
            "dcgan-G",
            "up x2 + conv2 128->64 14x14",
            128,
            64,
            14,
            3,
            2,
            Same,
        ),
        (
            "wgan-G",
            "up x2 + conv1 128->128 k4 7x7",
            128,
            128,
            7,
            4,
            2,
            Same,
        ),
        (
            "wgan-G",
            "up x2 + conv2 128->64 k4 14x14",
            128,
            64,
            14,
            4,
            2,
            Same,
        ),
    ]
}

/// A layer's geometry at `batch`; the stride field of an upsampling layer is its factor.
fn geometry(layer: &Layer, upsampling: bool, batch: usize) -> Result<Geometry> {
    let &(_, _, cin, cout, size, k, stride, padding) = layer;
    let (x, w) = ([batch, cin, size, size], [cout, cin, k, k]);
    if upsampling {
        let pad = padding.resolve(size * stride, size * stride, k, k, 1);
        Geometry::upsampled(&x, &w, stride, pad)
    } else {
        Geometry::new(&x, &w, stride, padding.resolve(size, size, k, k, stride))
    }
}

struct Options {
    filter: Option<String>,
    pass: Option<String>,
    variant: Option<String>,
    reps: usize,
    batches: Option<Vec<usize>>,
    device: Option<String>,
    peak_tflops: Option<f64>,
    simd: Option<String>,
}

impl Options {
    fn runs(&self, variant: Variant) -> bool {
        match self.variant.as_deref() {
            Some("all") => true,
            Some(name) => name == variant.name(),
            None => matches!(
                variant,
                Variant::Gpu(_) | Variant::GpuIm2col | Variant::Cpu(CpuConv::Auto)
            ),
        }
    }
}

fn options() -> Options {
    let mut o = Options {
        filter: None,
        pass: None,
        variant: None,
        reps: 0,
        batches: None,
        device: None,
        peak_tflops: None,
        simd: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--filter" => o.filter = args.next(),
            "--pass" => o.pass = args.next(),
            "--variant" => o.variant = args.next(),
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(0),
            "--batch" => {
                o.batches = args
                    .next()
                    .map(|v| v.split(',').filter_map(|b| b.parse().ok()).collect())
            }
            "--device" => o.device = args.next(),
            "--peak-tflops" => o.peak_tflops = args.next().and_then(|v| v.parse().ok()),
            "--simd" => o.simd = args.next(),
            _ => {} // cargo passes --bench
        }
    }
    o
}

#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Forward,
    InputGrad,
    WeightGrad,
}

impl Pass {
    const ALL: [Pass; 3] = [Pass::Forward, Pass::InputGrad, Pass::WeightGrad];

    fn short(self) -> &'static str {
        match self {
            Pass::Forward => "fwd",
            Pass::InputGrad => "dx",
            Pass::WeightGrad => "dw",
        }
    }
}

/// A kernel variant one device can be forced to.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Gpu(GemmVariant),
    GpuIm2col,
    Cpu(CpuConv),
}

impl Variant {
    fn of(device: &Device) -> Vec<Variant> {
        match device {
            Device::Gpu(_) => GemmVariant::ALL
                .into_iter()
                .map(Variant::Gpu)
                .chain([Variant::GpuIm2col])
                .collect(),
            Device::Cpu => [CpuConv::Auto, CpuConv::Direct, CpuConv::Gemm]
                .map(Variant::Cpu)
                .into(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Gpu(v) => v.name(),
            Variant::GpuIm2col => "im2col",
            Variant::Cpu(CpuConv::Auto) => "auto",
            Variant::Cpu(CpuConv::Direct) => "direct",
            Variant::Cpu(CpuConv::Gemm) => "gemm",
        }
    }

    /// Runs `f` with this variant forced.
    fn force<T>(self, pass: Pass, f: impl FnOnce() -> T) -> T {
        let algo = match (self, pass) {
            (Variant::GpuIm2col, Pass::Forward) => ConvAlgo::Im2col,
            _ => ConvAlgo::ImplicitGemm,
        };
        set_conv_algo(algo);
        match self {
            Variant::Gpu(v) => v.force(f),
            Variant::GpuIm2col => f(),
            Variant::Cpu(algo) => with_cpu_conv(algo, f),
        }
    }

    /// im2col only changes the forward pass.
    fn applies(self, pass: Pass) -> bool {
        self != Variant::GpuIm2col || pass == Pass::Forward
    }
}

/// One timed pass, as the JSON has it.
#[derive(Serialize)]
struct Row {
    model: &'static str,
    layer: &'static str,
    batch: usize,
    pass: &'static str,
    #[serde(flatten)]
    timing: Timing,
}

/// The times of one pass, whether GPU timestamps measured them, and the GEMMs it launched.
fn time_pass(
    dev: &Device,
    g: Geometry,
    pass: Pass,
    variant: Variant,
    reps: usize,
    rng: &mut Rng,
) -> Result<(Times, bool, Vec<GemmLaunch>)> {
    let (h, w) = (g.h / g.up, g.w / g.up);
    let x = Tensor::randn(&[g.batch, g.cin, h, w], 0.0, 1.0, rng, dev)?;
    let w = Tensor::randn(&[g.cout, g.cin, g.kh, g.kw], 0.0, 0.1, rng, dev)?;
    let gy = Tensor::randn(&[g.batch, g.cout, g.oh, g.ow], 0.0, 1.0, rng, dev)?;
    let run = || -> Result<Tensor> {
        variant.force(pass, || match pass {
            Pass::Forward => conv_forward(&x, &w, g),
            Pass::InputGrad => conv_input_grad(&gy, &w, g),
            Pass::WeightGrad => conv_weight_grad(&x, &gy, g),
        })
    };
    // Compiles pipelines, warms the pool, and records the launches.
    let (out, launches) = record_launches(run);
    drop(out?);
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
    Ok((Times::of(times), stamped, launches))
}

fn main() {
    ganlab::cpu::alloc::keep_freed_memory();
    let opts = options();
    let Some(name) = opts.simd.clone() else {
        return bench(opts);
    };
    let level = Level::ALL
        .into_iter()
        .find(|l| format!("{l:?}").eq_ignore_ascii_case(&name));
    match level {
        Some(level) if level.is_supported() => with_level(level, || bench(opts)),
        Some(level) => eprintln!("--simd {name}: this CPU has no {level:?}"),
        None => eprintln!("--simd {name}: expected baseline, avx2 or avx512"),
    }
}

fn bench(opts: Options) {
    let mut rng = Rng::seed(3);
    let mut devices: Vec<(&'static str, Device)> = Vec::new();
    let mut software = false;
    let mut adapter = None;
    if opts.device.as_deref() != Some("cpu") {
        match Device::gpu() {
            Ok(dev) => {
                if let Device::Gpu(ctx) = &dev {
                    software = ctx.is_software();
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
                            "wall time around a synchronised submit (no timestamp queries)"
                        }
                    );
                }
                devices.push(("gpu", dev));
            }
            Err(e) => println!("GPU: none ({e})"),
        }
    }
    if opts.device.as_deref() != Some("gpu") {
        devices.push(("cpu", Device::Cpu));
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
        "CPU threads: {}; direct kernels' vector build: {:?}; reps: {reps} (median, and the middle half of the times); \
         batches: {batches:?}\n",
        rayon::current_num_threads(),
        ganlab::cpu::simd::level(),
    );

    let mut rows = Vec::new();
    let all = layers().into_iter().map(|l| (l, false));
    for (spec, upsampling) in all.chain(upsampling_layers().into_iter().map(|l| (l, true))) {
        let (model, layer) = (spec.0, spec.1);
        let name = format!("{model} {layer}");
        if opts
            .filter
            .as_ref()
            .is_some_and(|f| !name.contains(f.as_str()))
        {
            continue;
        }
        for &batch in &batches {
            let Ok(g) = geometry(&spec, upsampling, batch) else {
                continue;
            };
            println!(
                "{name}  batch {batch}  ({:.2} GFLOP per pass)",
                g.flops() / 1e9
            );
            for (dev_name, dev) in &devices {
                for pass in Pass::ALL {
                    if opts.pass.as_ref().is_some_and(|p| p != pass.short()) {
                        continue;
                    }
                    for variant in Variant::of(dev) {
                        if !variant.applies(pass) || !opts.runs(variant) {
                            continue;
                        }
                        let label = format!("{} {}", pass.short(), variant.name());
                        match time_pass(dev, g, pass, variant, reps, &mut rng) {
                            Ok((times, stamped, launches)) => {
                                let gflops = g.flops() / times.median_s / 1e9;
                                let (peak_fraction, peak) = peak(gflops, opts.peak_tflops);
                                println!(
                                    "  {dev_name:<4} {label:<16} {:>9.3} ms {gflops:>8.1} GFLOP/s{peak}  {}  {}",
                                    times.median_s * 1e3,
                                    times.middle_half(),
                                    describe(&launches)
                                );
                                rows.push(Row {
                                    model,
                                    layer,
                                    batch,
                                    pass: pass.short(),
                                    timing: Timing {
                                        device: dev_name,
                                        variant: variant.name(),
                                        times,
                                        gflops,
                                        peak_fraction,
                                        gpu_timestamps: stamped && *dev_name == "gpu",
                                        launches,
                                    },
                                });
                            }
                            Err(e) => println!("  {dev_name:<4} {label:<16} skipped: {e}"),
                        }
                    }
                }
            }
            println!();
        }
    }
    let report = Report {
        bench: "conv",
        adapter,
        reps,
        peak_tflops: opts.peak_tflops,
        rows,
    };
    report.write();
}
