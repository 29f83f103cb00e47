//! `ganlab demo`: regression of sin(x) by a 1-64-64-1 tanh MLP with full-batch gradient
//! descent, end to end through tensors, kernels and autograd on the chosen device.

use super::GpuFlags;
use clap::Args;
use ganlab::{grad, no_grad, Result, Rng, Tensor};
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// auto (a hardware GPU if present, else the CPU), gpu or cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    #[arg(long, default_value_t = 0.03)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    gpu: GpuFlags,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let device = args.gpu.device(&args.device)?;
    println!("device: {device:?}");
    let mut rng = Rng::seed(args.seed);
    let n = 256;
    let xs: Vec<f32> = (0..n)
        .map(|i| -3.0 + 6.0 * i as f32 / (n - 1) as f32)
        .collect();
    let ys: Vec<f32> = xs.iter().map(|x| x.sin()).collect();
    let x = Tensor::from_vec(xs, &[n, 1], &device)?;
    let y = Tensor::from_vec(ys, &[n, 1], &device)?;

    // Glorot-uniform weights, zero biases.
    let mut glorot = |fan_in: usize, fan_out: usize| {
        let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
        Tensor::rand_uniform(&[fan_in, fan_out], -limit, limit, &mut rng, &device)
    };
    let mut params = vec![
        glorot(1, 64)?,
        Tensor::zeros(&[64], &device)?,
        glorot(64, 64)?,
        Tensor::zeros(&[64], &device)?,
        glorot(64, 1)?,
        Tensor::zeros(&[1], &device)?,
    ];
    let forward = |p: &[Tensor]| -> Result<Tensor> {
        let h = x.matmul(&p[0])?.add(&p[1])?.tanh()?;
        let h = h.matmul(&p[2])?.add(&p[3])?.tanh()?;
        h.matmul(&p[4])?.add(&p[5])
    };
    let start = Instant::now();
    for step in 0..=args.steps {
        let leaves: Vec<Tensor> = params.iter().map(|p| p.detach().with_grad()).collect();
        let loss = forward(&leaves)?.sub(&y)?.square()?.mean_all()?;
        let grads = grad(std::slice::from_ref(&loss), None, &leaves, false)?;
        params = no_grad(|| -> Result<Vec<Tensor>> {
            leaves
                .iter()
                .zip(grads)
                .map(|(p, g)| match g {
                    Some(g) => p.sub(&g.mul_scalar(args.lr)?),
                    None => Ok(p.clone()),
                })
                .collect()
        })?;
        // Reading the loss waits for the device; do it only when printing.
        if step % (args.steps / 10).max(1) == 0 {
            println!("step {step:>6}  mse {:.6}", loss.item()?);
        }
    }
    println!(
        "{} steps in {:.2} s ({:.2} ms/step)",
        args.steps,
        start.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64() * 1e3 / args.steps.max(1) as f64
    );
    Ok(())
}
