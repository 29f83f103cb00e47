//! The training loop every model shares: batches, progress, sample grids from a fixed noise
//! batch, the metrics log, checkpoints (periodic, final, and on Ctrl-C), a loss plot at the
//! end, and a stop with a clear message at the first non-finite loss.

use super::{interrupt, MetricsLog};
use crate::data::{prefetch, Batcher, Sampling, Split};
use crate::models::{RunState, Trainable, CLASSES};
use crate::viz::{save_grid, Chart, GridLayout, Series};
use crate::{Device, Error, Result, Rng, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Scores the generator now and then during training (FID and IS with the evaluation
/// classifier); its values become extra columns of the metrics log and panels of the plot.
pub trait Evaluator {
    fn names(&self) -> Vec<&'static str>;
    /// Scores the generator at `step`.
    fn evaluate(&mut self, model: &mut dyn Trainable, step: u64) -> Result<Vec<f64>>;
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch_size: usize,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    /// Metrics are read back (a GPU sync) and logged every this many steps.
    pub log_every: u64,
    pub seed: u64,
    pub out_dir: PathBuf,
    pub resume: bool,
    pub sampling: Sampling,
    pub progress: bool,
    /// Run the evaluator every this many steps (and at the end); 0: never.
    pub eval_every: u64,
    /// Saved in every checkpoint as it is (the command line's flags, for `--resume`).
    pub settings: String,
}

pub struct Summary {
    pub last_step: u64,
    /// Steps this call ran (from the resumed step, if any).
    pub steps_run: u64,
    pub interrupted: bool,
    pub images_per_s: f64,
    /// Seconds this call spent drawing batches and handing them to the device (the data
    /// loading a step waits on), and in all.
    pub data_s: f64,
    pub wall_s: f64,
    pub last_metrics: Vec<(&'static str, f64)>,
    pub checkpoint: PathBuf,
    pub last_grid: Option<PathBuf>,
}

/// The end of a run in a few lines: where it stopped, its speed and last metrics, data
/// loading's share, and where the checkpoint and the last grid are.
impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let metrics: Vec<String> = self
            .last_metrics
            .iter()
            .map(|(n, v)| format!("{n} {v:.4}"))
            .collect();
        let ended = if self.interrupted {
            "interrupted"
        } else {
            "done"
        };
        writeln!(
            f,
            "{ended} at step {}: {:.1} images/s; {}",
            self.last_step,
            self.images_per_s,
            metrics.join(", ")
        )?;
        if self.steps_run > 0 {
            writeln!(
                f,
                "data loading: {:.2} ms per step, {:.2}% of the run's wall time",
                1e3 * self.data_s / self.steps_run as f64,
                100.0 * self.data_s / self.wall_s.max(1e-9)
            )?;
        }
        write!(f, "checkpoint: {}", self.checkpoint.display())?;
        if let Some(grid) = &self.last_grid {
            write!(f, "\nlast sample grid: {}", grid.display())?;
        }
        Ok(())
    }
}

pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The checkpoint `--resume out_dir` continues from, or why there is none.
pub fn checkpoint_to_resume(out_dir: &Path) -> Result<PathBuf> {
    let path = out_dir.join(CHECKPOINT);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(Error::Invalid(format!(
            "--resume: {} is not a file",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Invalid(format!(
            "--resume: no checkpoint at {} (train without --resume first)",
            path.display()
        ))),
        // A symlink loop, a permission problem: say what it is, not "no checkpoint".
        Err(e) => Err(Error::Io {
            context: format!("--resume: cannot read {}", path.display()),
            source: e,
        }),
    }
}

/// `n` noise vectors drawn from `seed` alone: `ganlab sample --seed S` and `arithmetic
/// --grid-seed S` agree on which z is which grid index.
pub fn seeded_noise(seed: u64, n: usize, z_dim: usize, device: &Device) -> Result<Tensor> {
    Tensor::randn(&[n, z_dim], 0.0, 1.0, &mut Rng::seed(seed), device)
}

/// The training grids' layout: 5x5, or for a conditional model one row per class of 5.
pub fn grid_layout(model: &dyn Trainable) -> GridLayout {
    if model.is_conditional() {
        GridLayout {
            rows: CLASSES,
            ..GridLayout::square(25)
        }
    } else {
        GridLayout::square(25)
    }
}

/// Class labels for a grid of `rows` x `cols` with one class per row.
pub fn row_labels(rows: usize, cols: usize) -> Vec<usize> {
    (0..rows * cols)
        .map(|i| (i / cols.max(1)) % CLASSES)
        .collect()
}

/// The fixed noise (and labels: one class per row) every sample grid of a run is drawn from,
/// laid out as `grid_layout(model)`.
pub fn fixed_inputs(model: &dyn Trainable, seed: u64) -> Result<(Tensor, Option<Vec<usize>>)> {
    let layout = grid_layout(model);
    let n = layout.rows * layout.cols;
    let z = seeded_noise(seed ^ 0x5A4D_504C_4553, n, model.z_dim(), &model.device())?;
    let labels = model
        .is_conditional()
        .then(|| row_labels(layout.rows, layout.cols));
    Ok((z, labels))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        context: format!("{}", path.display()),
        source: e,
    }
}

pub fn train(model: &mut dyn Trainable, data: &Split, cfg: &TrainConfig) -> Result<Summary> {
    train_with_eval(model, data, cfg, None)
}

/// `train`, scoring the generator with `evaluator` every `cfg.eval_every` steps.
pub fn train_with_eval(
    model: &mut dyn Trainable,
    data: &Split,
    cfg: &TrainConfig,
    mut evaluator: Option<&mut dyn Evaluator>,
) -> Result<Summary> {
    let samples_dir = prepare_out_dir(&cfg.out_dir)?;
    let ckpt = cfg.out_dir.join(CHECKPOINT);
    let state = if cfg.resume {
        model.load_checkpoint(&checkpoint_to_resume(&cfg.out_dir)?)?
    } else {
        RunState {
            rng: Rng::seed(cfg.seed).state(),
            ..RunState::default()
        }
    };
    let mut rng = Rng::from_state(state.rng);
    let per_step = cfg.batch_size * model.batches_per_step();
    let mut batcher = Batcher::new(data.n, per_step, cfg.sampling, cfg.seed)?;
    batcher.skip(state.step);
    let names = model.metric_names();
    let eval_names = evaluator.as_ref().map(|e| e.names()).unwrap_or_default();
    let columns: Vec<&str> = names.iter().chain(&eval_names).copied().collect();
    let mut log = MetricsLog::open(&cfg.out_dir.join("metrics.csv"), &columns, state.step)?;
    let (fixed_z, fixed_labels) = fixed_inputs(model, cfg.seed)?;
    let images = data.item_shape.len() == 3;
    let device = model.device();
    interrupt::install();

    let bar = progress_bar(cfg, state.step);

    let start = Instant::now();
    let mut last_metrics = Vec::new();
    let mut last_grid = None;
    let mut step = state.step;
    let mut interrupted = false;
    let mut data_time = std::time::Duration::ZERO;
    let save = |model: &dyn Trainable, step: u64, rng: &Rng| {
        model.save_checkpoint(
            &ckpt,
            &RunState {
                step,
                rng: rng.state(),
                wall_s: state.wall_s + start.elapsed().as_secs_f64(),
                settings: cfg.settings.clone(),
            },
        )
    };
    // Batches are drawn two ahead on their own thread while the step runs.
    prefetch(batcher, data, 2, |batches| -> Result<()> {
        while step < cfg.steps {
            step += 1;
            let loading = Instant::now();
            let batch = batches.next_batch()?;
            let real = batch.to_tensor(&device)?;
            let labels: Vec<usize> = batch.labels.iter().map(|&l| usize::from(l)).collect();
            batches.recycle(batch);
            data_time += loading.elapsed();
            let metrics = model.train_step(&real, &labels, &mut rng)?;

            let checkpoint_now = step % cfg.checkpoint_every.max(1) == 0 || step == cfg.steps;
            let eval_now = evaluator.is_some()
                && cfg.eval_every > 0
                && (step % cfg.eval_every == 0 || step == cfg.steps);
            if step % cfg.log_every.max(1) == 0
                || checkpoint_now
                || eval_now
                || interrupt::requested()
            {
                // The only GPU wait of a step, and only on logging steps.
                let values: Vec<f64> = Tensor::items(&metrics)?
                    .into_iter()
                    .map(f64::from)
                    .collect();
                if let Err(e) = check_finite(&names, &values, step, &ckpt) {
                    bar.abandon();
                    return Err(e);
                }
                let scores = match evaluator.as_deref_mut() {
                    Some(e) if eval_now => e.evaluate(model, step)?,
                    _ => vec![f64::NAN; eval_names.len()],
                };
                let wall = state.wall_s + start.elapsed().as_secs_f64();
                log.row(step, wall, &[values.as_slice(), &scores].concat())?;
                let rate = (step - state.step) as f64 * per_step as f64
                    / start.elapsed().as_secs_f64().max(1e-9);
                let shown: Vec<String> = names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| format!("{n} {v:.4}"))
                    .collect();
                bar.set_message(format!("{rate:.0} img/s  {}", shown.join("  ")));
                last_metrics = names.iter().copied().zip(values).collect();
            }
            bar.set_position(step);
            // Image grids for image data; toy data is plotted by its evaluator.
            if images && (step % cfg.sample_every.max(1) == 0 || step == cfg.steps) {
                let path = samples_dir.join(format!("step_{step:07}.png"));
                write_samples(model, &fixed_z, fixed_labels.as_deref(), &path)?;
                last_grid = Some(path);
            }
            if checkpoint_now {
                save(model, step, &rng)?;
            }
            if interrupt::requested() {
                bar.suspend(|| {
                    eprintln!("interrupted: saving a checkpoint at step {step} and stopping")
                });
                save(model, step, &rng)?;
                interrupted = true;
                break;
            }
        }
        Ok(())
    })?;
    bar.finish();
    plot_metrics(
        &cfg.out_dir.join("metrics.csv"),
        &cfg.out_dir.join("losses.png"),
    )?;
    let trained = step - state.step;
    Ok(Summary {
        last_step: step,
        steps_run: trained,
        interrupted,
        images_per_s: trained as f64 * per_step as f64 / start.elapsed().as_secs_f64().max(1e-9),
        data_s: data_time.as_secs_f64(),
        wall_s: start.elapsed().as_secs_f64(),
        last_metrics,
        checkpoint: ckpt,
        last_grid,
    })
}

/// Creates the run folder and its samples folder (returned), sweeping the temporary files a
/// run killed while saving left behind.
fn prepare_out_dir(out_dir: &Path) -> Result<PathBuf> {
    let samples_dir = out_dir.join("samples");
    std::fs::create_dir_all(&samples_dir).map_err(io(&samples_dir))?;
    let swept: usize = [out_dir, &samples_dir]
        .iter()
        .map(|d| crate::files::remove_stale_temporaries(d))
        .sum();
    if swept > 0 {
        eprintln!(
            "note: removed {swept} temporary file(s) a killed run left in {}",
            out_dir.display()
        );
    }
    Ok(samples_dir)
}

/// The run's progress bar (hidden without `cfg.progress`), at `step`.
fn progress_bar(cfg: &TrainConfig, step: u64) -> ProgressBar {
    let bar = if cfg.progress {
        ProgressBar::new(cfg.steps)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(step);
    bar
}

/// Stops the run at the first non-finite metric, naming the last good checkpoint.
fn check_finite(names: &[&str], values: &[f64], step: u64, ckpt: &Path) -> Result<()> {
    let Some((name, v)) = names.iter().zip(values).find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    let last_good = if ckpt.exists() {
        format!(
            "The last good checkpoint is {} (step <= {})",
            ckpt.display(),
            step - 1
        )
    } else {
        "No checkpoint was written before it".into()
    };
    Err(Error::Invalid(format!(
        "{name} became {v} at step {step}; stopping. {last_good}; try a lower learning rate or another seed"
    )))
}

/// A grid (`grid_layout(model)`) of the generator's output for `z` (and labels).
pub fn write_samples(
    model: &mut dyn Trainable,
    z: &Tensor,
    labels: Option<&[usize]>,
    path: &Path,
) -> Result<()> {
    let layout = grid_layout(model);
    let images = model.sample(z, labels)?;
    save_grid(path, &images.to_vec()?, images.shape(), layout)
}

/// The metrics log as a chart: losses in one panel, accuracies in another, anything else
/// (FID, IS, critic estimates) in its own.
pub fn plot_metrics(log: &Path, out: &Path) -> Result<()> {
    let (names, steps, cols) = MetricsLog::read(log)?;
    let series = |pick: &dyn Fn(&str) -> bool| -> Vec<Series> {
        names
            .iter()
            .zip(&cols)
            .filter(|(n, _)| pick(n))
            .map(|(n, c)| {
                Series::line(
                    n,
                    steps
                        .iter()
                        .copied()
                        .zip(c.iter().copied())
                        .filter(|p| p.1.is_finite())
                        .collect(),
                )
            })
            .collect()
    };
    let mut chart = Chart::new(900, 300).panel("losses", "step", series(&|n| n.contains("loss")));
    let acc = series(&|n| n.contains("acc"));
    if !acc.is_empty() {
        chart = chart.panel("accuracy", "step", acc);
    }
    for other in names
        .iter()
        .filter(|n| !n.contains("loss") && !n.contains("acc"))
    {
        chart = chart.panel(other, "step", series(&|n| n == other));
    }
    chart.save(out)
}
