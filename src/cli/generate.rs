//! Verbs that draw from a trained generator: sample grids, interpolation, vector arithmetic.

use super::GpuFlags;
use clap::builder::RangedU64ValueParser;
use clap::Args;
use ganlab::models;
use ganlab::models::{Trainable, CLASSES};
use ganlab::train::trainer::seeded_noise;
use ganlab::viz::{save_grid, GridLayout};
use ganlab::{Device, Error, Result, Rng, Tensor};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct Common {
    /// A checkpoint written by `ganlab train` (its model kind is read from it).
    #[arg(long)]
    checkpoint: PathBuf,
    /// auto, gpu or cpu.
    #[arg(long, default_value = "auto")]
    device: String,
    /// The class to draw, for a conditional model (cgan): e.g. 7 for sevens. Without it a
    /// conditional model's sample grid has one row per class (interpolate and arithmetic
    /// draw class 0).
    #[arg(long)]
    label: Option<usize>,
    #[command(flatten)]
    gpu: GpuFlags,
}

struct Loaded {
    model: Box<dyn Trainable>,
    device: Device,
    label: Option<usize>,
}

impl Common {
    fn load(&self) -> Result<Loaded> {
        let device = self.gpu.device(&self.device)?;
        let model = models::load(&self.checkpoint, &device)?;
        match self.label {
            Some(_) if !model.is_conditional() => {
                return Err(Error::Invalid(
                    "--label needs a conditional model (cgan); this checkpoint's is not".into(),
                ))
            }
            Some(l) if l >= CLASSES => {
                return Err(Error::Invalid(format!(
                    "--label {l}: classes are 0-{}",
                    CLASSES - 1
                )))
            }
            _ => {}
        }
        Ok(Loaded {
            model,
            device,
            label: self.label,
        })
    }
}

impl Loaded {
    /// The labels for `n` images: the chosen class, else `by_row(i)`; none if unconditional.
    fn labels(&self, n: usize, by_row: impl Fn(usize) -> usize) -> Option<Vec<usize>> {
        self.model.is_conditional().then(|| {
            (0..n)
                .map(|i| self.label.unwrap_or_else(|| by_row(i)))
                .collect()
        })
    }

    /// Draws `z` (with `labels`) and writes the images as a rows x cols grid.
    fn write(
        &mut self,
        z: &Tensor,
        labels: Option<&[usize]>,
        (rows, cols): (usize, usize),
        out: &Path,
    ) -> Result<()> {
        let images = self.model.sample(z, labels)?;
        if images.rank() != 4 {
            return Err(Error::Invalid(
                "this model draws points, not images: its samples are plotted during training (samples/toy_*.png)".into(),
            ));
        }
        let layout = GridLayout {
            rows,
            cols,
            gap: 2,
            scale: 2,
        };
        save_grid(out, &images.to_vec()?, images.shape(), layout)?;
        println!("wrote {}", out.display());
        Ok(())
    }
}

#[derive(Args)]
pub struct SampleArgs {
    #[command(flatten)]
    common: Common,
    /// Images in the grid (1 to 10,000).
    #[arg(long, default_value_t = 25, value_parser = RangedU64ValueParser::<usize>::new().range(1..=10_000))]
    n: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "grid.png")]
    out: PathBuf,
}

pub fn sample(args: &SampleArgs) -> Result<()> {
    let mut loaded = args.common.load()?;
    // A conditional model without --label: one row per class.
    let layout = match loaded.model.is_conditional() && loaded.label.is_none() {
        true => GridLayout {
            rows: CLASSES,
            cols: args.n.div_ceil(CLASSES),
            ..GridLayout::square(args.n)
        },
        false => GridLayout::square(args.n),
    };
    let n = layout.rows * layout.cols;
    let z = seeded_noise(args.seed, n, loaded.model.z_dim(), &loaded.device)?;
    let labels = loaded.labels(n, |i| (i / layout.cols) % CLASSES);
    loaded.write(&z, labels.as_deref(), (layout.rows, layout.cols), &args.out)
}

#[derive(Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    common: Common,
    /// Seed of the start noise vector.
    #[arg(long)]
    from: u64,
    /// Seed of the end noise vector.
    #[arg(long)]
    to: u64,
    /// Images along the path, ends included (2 to 1,000).
    #[arg(long, default_value_t = 10, value_parser = RangedU64ValueParser::<usize>::new().range(2..=1_000))]
    steps: usize,
    /// Follow the great circle (slerp) instead of the straight line; Gaussian noise
    /// concentrates near a sphere, so slerp stays where the generator was trained.
    #[arg(long)]
    spherical: bool,
    #[arg(long, default_value = "interpolation.png")]
    out: PathBuf,
}

/// Points along the line or great circle from `a` to `b` (host vectors), `steps` of them.
pub fn path(a: &[f32], b: &[f32], steps: usize, spherical: bool) -> Vec<f32> {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
    let omega = (dot / (norm(a) * norm(b)).max(1e-12))
        .clamp(-1.0, 1.0)
        .acos();
    (0..steps)
        .flat_map(|i| {
            let t = if steps > 1 {
                i as f64 / (steps - 1) as f64
            } else {
                0.0
            };
            let (wa, wb) = if spherical && omega.sin().abs() > 1e-6 {
                (
                    ((1.0 - t) * omega).sin() / omega.sin(),
                    (t * omega).sin() / omega.sin(),
                )
            } else {
                (1.0 - t, t)
            };
            a.iter()
                .zip(b)
                .map(move |(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        })
        .collect()
}

pub fn interpolate(args: &InterpolateArgs) -> Result<()> {
    let mut loaded = args.common.load()?;
    let d = loaded.model.z_dim();
    let za = seeded_noise(args.from, 1, d, &Device::Cpu)?.to_vec()?;
    let zb = seeded_noise(args.to, 1, d, &Device::Cpu)?.to_vec()?;
    let steps = args.steps.max(2);
    let z = Tensor::from_vec(
        path(&za, &zb, steps, args.spherical),
        &[steps, d],
        &loaded.device,
    )?;
    let labels = loaded.labels(steps, |_| 0);
    loaded.write(&z, labels.as_deref(), (1, steps), &args.out)
}

#[derive(Args)]
pub struct ArithmeticArgs {
    #[command(flatten)]
    common: Common,
    /// The seed of the 25-image grid (as drawn by `ganlab sample --seed S`) the indices refer to.
    #[arg(long)]
    grid_seed: u64,
    /// Three grid indices showing concept A (e.g. smiling woman), comma separated.
    #[arg(long)]
    a: String,
    /// Three indices showing concept B (neutral woman).
    #[arg(long)]
    b: String,
    /// Three indices showing concept C (neutral man).
    #[arg(long)]
    c: String,
    #[arg(long, default_value = "arithmetic.png")]
    out: PathBuf,
}

fn indices(text: &str, n: usize) -> Result<Vec<usize>> {
    let idx: Vec<usize> = text
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| {
            Error::Invalid(format!(
                "\"{text}\": expected comma-separated grid indices like 3,7,12"
            ))
        })?;
    if idx.len() != 3 || idx.iter().any(|&i| i >= n) {
        return Err(Error::Invalid(format!(
            "\"{text}\": give three grid indices, each 0-{}",
            n - 1
        )));
    }
    Ok(idx)
}

/// Rows A, B, C: the chosen images and, last, the decoded mean of their z; bottom row: the
/// decoded mean(A) - mean(B) + mean(C), alone and with three small perturbations (as in the
/// DCGAN paper's figure).
pub fn arithmetic(args: &ArithmeticArgs) -> Result<()> {
    // The indices first: a typo is reported before the checkpoint is read.
    let concepts = [
        indices(&args.a, 25)?,
        indices(&args.b, 25)?,
        indices(&args.c, 25)?,
    ];
    let mut loaded = args.common.load()?;
    let d = loaded.model.z_dim();
    let grid = seeded_noise(args.grid_seed, 25, d, &Device::Cpu)?.to_vec()?;
    let cols = concepts.iter().map(Vec::len).max().unwrap_or(3) + 1;
    let mean = |idx: &[usize]| -> Vec<f32> {
        (0..d)
            .map(|j| idx.iter().map(|&i| grid[i * d + j]).sum::<f32>() / idx.len() as f32)
            .collect()
    };
    let means: Vec<Vec<f32>> = concepts.iter().map(|c| mean(c)).collect();
    let result: Vec<f32> = (0..d)
        .map(|j| means[0][j] - means[1][j] + means[2][j])
        .collect();
    let mut rows = Vec::with_capacity(4 * cols * d);
    for (c, m) in concepts.iter().zip(&means) {
        for k in 0..cols - 1 {
            match c.get(k) {
                Some(&i) => rows.extend_from_slice(&grid[i * d..(i + 1) * d]),
                None => rows.extend_from_slice(m),
            }
        }
        rows.extend_from_slice(m);
    }
    let mut rng = Rng::seed(args.grid_seed ^ 0xA417);
    for k in 0..cols {
        let noise = rng.normal_vec(d, 0.0, 0.25);
        rows.extend(
            result
                .iter()
                .zip(&noise)
                .map(|(r, e)| if k == 0 { *r } else { r + *e as f32 }),
        );
    }
    let z = Tensor::from_vec(rows, &[4 * cols, d], &loaded.device)?;
    let labels = loaded.labels(4 * cols, |_| 0);
    loaded.write(&z, labels.as_deref(), (4, cols), &args.out)?;
    println!("rows: A, B, C (chosen images, then their mean decoded); bottom: mean(A) - mean(B) + mean(C), then with small noise");
    Ok(())
}
