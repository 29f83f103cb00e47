//! The command line: verbs and their flags. Thin by design: every verb calls the library.

mod demo;
mod eval;
mod generate;
mod settings;
mod train;

use clap::{Args, Parser, Subcommand};
use ganlab::device::{list_adapters, AdapterRequest};
use ganlab::{Device, Result};

#[derive(Parser)]
#[command(
    name = "ganlab",
    version,
    about = "A from-scratch GAN training engine (wgpu + CPU)"
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// List every GPU adapter found and the one ganlab would pick.
    Devices(GpuFlags),
    /// Fit a small MLP to y = sin(x) with autograd: a quick check that the engine trains on
    /// your device.
    Demo(demo::DemoArgs),
    /// Train a GAN: `ganlab train dcgan` (the book's DCGAN on MNIST), `ganlab train dcgan64
    /// --dataset folder --data-dir PHOTOS` (the DCGAN paper's 64x64 model on your images).
    Train(Box<train::TrainArgs>),
    /// A grid of samples from a checkpoint.
    Sample(generate::SampleArgs),
    /// A row of images along the path between two seeds' noise vectors.
    Interpolate(generate::InterpolateArgs),
    /// DCGAN latent vector arithmetic: mean(A) - mean(B) + mean(C).
    Arithmetic(generate::ArithmeticArgs),
    /// Train the classifier `eval` scores generators with.
    TrainClassifier(eval::TrainClassifierArgs),
    /// Inception Score, Frechet distance and class coverage of a generator's samples.
    Eval(eval::EvalArgs),
    /// Datasets: `data info NAME [--data-dir D]`, `data fetch NAME [--data-dir D]`, `data
    /// shapes DIR` (a generated folder of coloured shapes).
    Data {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// How to pick the GPU: flags override `GANLAB_BACKEND` / `GANLAB_ADAPTER`.
#[derive(Args, Clone, Default)]
pub struct GpuFlags {
    /// GPU backend: vulkan, metal or dx12; or noop (validates every call, runs no kernel:
    /// measures host overhead only, and never picked by --device auto).
    #[arg(long)]
    backend: Option<String>,
    /// Use the adapter whose name contains this text (case-insensitive).
    #[arg(long)]
    adapter: Option<String>,
    /// Most MiB of GPU memory the buffer pool keeps (default: GANLAB_POOL_MB, else 3/4 of the
    /// adapter's memory where the backend reports it, else 4096).
    #[arg(long, value_name = "MIB")]
    pool_mb: Option<u64>,
}

impl GpuFlags {
    fn request(&self) -> AdapterRequest {
        let env = AdapterRequest::from_env();
        AdapterRequest {
            backend: self.backend.clone().or(env.backend),
            name: self.adapter.clone().or(env.name),
            pool_bytes: self.pool_mb.map(|mb| mb << 20).or(env.pool_bytes),
            ..env
        }
    }

    /// `cpu`; `gpu` on the adapter these flags select (software adapters included); or
    /// `auto`: a hardware GPU when there is one, else the CPU, saying so.
    pub fn device(&self, name: &str) -> Result<Device> {
        match name {
            "gpu" => Device::gpu_with(&self.request()),
            "auto" => match Device::gpu_with(&self.request()) {
                Ok(Device::Gpu(ctx)) if !ctx.is_software() && !ctx.is_noop() => {
                    Ok(Device::Gpu(ctx))
                }
                Ok(Device::Gpu(ctx)) if ctx.is_noop() => {
                    println!(
                        "the noop backend runs no kernel: using the CPU path (pass --device gpu to measure host overhead)"
                    );
                    Ok(Device::Cpu)
                }
                Ok(Device::Gpu(ctx)) => {
                    println!(
                        "only a software GPU adapter ({}) is present: using the CPU path, which is faster here (pass --device gpu to use it anyway)",
                        ctx.info().name
                    );
                    Ok(Device::Cpu)
                }
                Ok(dev) => Ok(dev),
                Err(e) => {
                    println!("no GPU adapter ({e}); using the CPU path");
                    Ok(Device::Cpu)
                }
            },
            other => Device::from_name(other),
        }
    }
}

pub fn run() -> Result<()> {
    match Cli::parse().verb {
        Verb::Devices(flags) => devices(&flags),
        Verb::Demo(args) => demo::run(&args),
        Verb::Train(args) => train::run(&args),
        Verb::Sample(args) => generate::sample(&args),
        Verb::Interpolate(args) => generate::interpolate(&args),
        Verb::Arithmetic(args) => generate::arithmetic(&args),
        Verb::TrainClassifier(args) => eval::train_classifier(&args),
        Verb::Eval(args) => eval::eval(&args),
        Verb::Data { args } => Ok(ganlab::data::cli::data_command(&args)?),
    }
}

fn devices(flags: &GpuFlags) -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found (the CPU path still works: --device cpu)");
    }
    for info in &adapters {
        println!(
            "{:<40} {:<14} {:<8} driver: {} {}",
            info.name,
            format!("{:?}", info.device_type),
            format!("{:?}", info.backend),
            info.driver,
            info.driver_info
        );
    }
    match Device::gpu_with(&flags.request()) {
        Ok(Device::Gpu(ctx)) => {
            let l = ctx.limits();
            println!("\nselected: {}", ctx.describe());
            println!(
                "limits: storage binding {} MiB, buffer {} MiB, workgroup storage {} KiB",
                l.max_storage_buffer_binding_size >> 20,
                l.max_buffer_size >> 20,
                l.max_compute_workgroup_storage_size >> 10,
            );
            println!("capabilities: {}", ctx.capabilities());
            Ok(())
        }
        Ok(Device::Cpu) => Ok(()),
        Err(e) => {
            println!("\nselected: none ({e})");
            Ok(())
        }
    }
}
