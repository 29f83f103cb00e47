//! A run's settings: the flags `ganlab train` started it with, saved in every checkpoint so
//! that `--resume DIR` continues the same run whatever the command line leaves out.
//!
//! Two kinds: the flags that define the run (data, batch size, seed, sampling, loop, learning
//! rate, ProGAN schedule) are kept, and giving one with a different value is an error, since
//! it would silently make a different run; the flags that only say how long and how often
//! (steps, sample, checkpoint and log intervals) default to the run's and may be changed.

use clap::{Args, ValueEnum};
use ganlab::data::{registry, Entry, ImageOptions, Sampling, ToySpec};
use ganlab::models::progan::ProGanConfig;
use ganlab::models::{saved, LoopStyle};
use ganlab::optim::check_lr;
use ganlab::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

/// Flags a resumed run may change; every other one is fixed for the run's life.
const CHANGEABLE: [&str; 4] = ["steps", "sample-every", "checkpoint-every", "log-every"];

/// The largest batch a run takes: beyond it the tensors of one step outgrow any machine this
/// engine targets (checked before anything is allocated).
pub const MAX_BATCH: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SamplingArg {
    /// Random batches drawn with replacement, as the book does.
    Replacement,
    /// Each epoch visits every image once, in a fresh random order.
    Epoch,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoopArg {
    /// The book's code as Keras 2.3 on TF1 ran it (the default): fakes from G in inference
    /// mode, two D updates, D frozen in the G step and normalising with batch statistics.
    KerasTf1,
    /// The same under TF2: the frozen D's batch norm on its running statistics (the book's
    /// DCGAN is known to collapse under it). `keras`, its name before keras-tf1 became the
    /// default, still means it (so older runs resume as they started).
    #[value(alias = "keras")]
    #[serde(alias = "keras")]
    KerasTf2,
    /// The PyTorch DCGAN example's loop (one D update on summed gradients, batch statistics
    /// everywhere).
    Torch,
}

/// The flags saved with a run. `None`: not given (on the command line) or not saved (by an
/// older version); the caller fills the defaults in.
#[derive(Args, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunFlags {
    /// mnist (default; dcgan64: cifar10) or fashion-mnist; cifar10; folder (every PNG and
    /// JPEG under --data-dir); toy-bimodal or toy-ring (gan, wgan, wgan-gp with small MLPs).
    #[arg(long)]
    pub dataset: Option<String>,
    /// --dataset folder: the side images are centre-cropped and resized to [default: 64].
    #[arg(long)]
    pub image_size: Option<usize>,
    /// --dataset folder: 3 (RGB) or 1 (grey) [default: 3].
    #[arg(long)]
    pub channels: Option<usize>,
    /// dcgan64: G's base width (its last hidden layer's channels) [default: 64].
    #[arg(long)]
    pub ngf: Option<usize>,
    /// dcgan64: D's base width (its first layer's channels) [default: 64].
    #[arg(long)]
    pub ndf: Option<usize>,
    /// Images per batch [default: 32; dcgan64: 128].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seeds the weights, the batch order and the fixed sample noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// How batches are drawn [default: replacement].
    #[arg(long, value_enum)]
    pub sampling: Option<SamplingArg>,
    /// Training-step semantics of gan, dcgan and cgan; for wgan, keras-tf1 or keras-tf2 say
    /// how its frozen critic's batch norm normalises [default: keras-tf1].
    #[arg(long = "loop", value_enum)]
    #[serde(rename = "loop")]
    pub loop_style: Option<LoopArg>,
    /// Learning rate of both networks (default: the model's own: 2e-4 for gan, dcgan and
    /// cgan, 5e-5 wgan, 1e-4 wgan-gp, 1e-3 progan).
    #[arg(long, value_parser = learning_rate)]
    pub lr: Option<f32>,
    /// ProGAN: images shown in each fade-in and each stabilise phase (7 phases: 4x4, then
    /// fade + stabilise for 8x8, 16x16, 32x32); the default run is 7 times this [default:
    /// 20000].
    #[arg(long)]
    pub phase_images: Option<u64>,
    /// ProGAN: channels at every resolution [default: 64].
    #[arg(long)]
    pub width: Option<usize>,
    /// Training iterations, each one generator step (default: the book's, 30000 for gan,
    /// 4000 for dcgan and wgan, 20000 for cgan, 30000 for wgan-gp; progan: its 7 phases;
    /// 3000 on toy data; a resumed run: its own).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Write a 5x5 sample grid every K steps (default: the book's 200 for gan and cgan, 50 for
    /// dcgan and wgan, 100 for wgan-gp, 4 per phase for progan); on toy data, a samples-vs-data
    /// plot with the modes covered every K steps (default 250).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: Option<u64>,
    /// Save a checkpoint every K steps (and at the end, and on Ctrl-C) [default: 1000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Read losses back from the device and log them every K steps [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: Option<u64>,
    /// Not a flag: the identity of the data the run trains on (`Dataset::identity`), saved so
    /// that a resume on other data is refused.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Not a flag: the folder a `--dataset folder` run reads (absolute), so that `--resume`
    /// finds it without `--data-dir`.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<std::path::PathBuf>,
}

/// A run's settings with every default filled in.
pub struct Settings {
    pub dataset: String,
    /// What a folder's images become (other datasets have their own size).
    pub images: ImageOptions,
    /// dcgan64's (ngf, ndf).
    pub widths: (usize, usize),
    /// The toy distribution, when `dataset` is one.
    pub toy: Option<ToySpec>,
    pub batch_size: usize,
    pub seed: u64,
    pub sampling: Sampling,
    pub style: LoopStyle,
    /// `None`: the model's own.
    pub lr: Option<f32>,
    pub progan: ProGanConfig,
    pub steps: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    pub log_every: u64,
}

impl RunFlags {
    /// The settings to continue the run whose checkpoint is `path` with: its saved ones, with
    /// the changeable flags given here in place of its own. A defining flag given with another
    /// value than the run's is an error. Checkpoints from before settings were saved resume
    /// with the flags as given.
    pub fn resumed(&self, path: &Path) -> Result<RunFlags> {
        let Some(text) = saved::settings(path)? else {
            println!(
                "{}: no saved run settings (an older checkpoint): resuming with the flags as given",
                path.display()
            );
            return Ok(self.clone());
        };
        let bad =
            |why: String| Error::Checkpoint(format!("{}: run settings {why}", path.display()));
        let mut merged: Map<String, Value> =
            serde_json::from_str(&text).map_err(|e| bad(format!("unreadable ({e}): {text}")))?;
        // Through text, as the saved side was: an f32 then compares equal to its printed form.
        let mut given: Map<String, Value> =
            serde_json::from_str(&self.to_json()).expect("flags are plain data");
        given.retain(|_, v| !v.is_null());
        for (flag, value) in given {
            match merged.get(&flag) {
                Some(run) if *run != value && !CHANGEABLE.contains(&flag.as_str()) => {
                    return Err(Error::Invalid(format!(
                        "--{flag} {}: this run was started with --{flag} {} (saved in {}); \
                         a resumed run keeps it: drop the flag, or start a new run with another --out",
                        shown(&value),
                        shown(run),
                        path.display()
                    )));
                }
                _ => merged.insert(flag, value),
            };
        }
        serde_json::from_value(Value::Object(merged)).map_err(|e| bad(e.to_string()))
    }

    /// Fills every unset flag with its default for `model`, so the saved settings are
    /// complete, and returns them typed.
    pub fn settle(&mut self, model: &str) -> Result<Settings> {
        let dataset = self
            .dataset
            .get_or_insert_with(|| default_dataset(model).into())
            .clone();
        let entry = registry::lookup(&dataset)?;
        let toy = match &entry {
            Entry::Toy(spec) => Some(spec.clone()),
            _ => None,
        };
        let images = match entry {
            Entry::Folder => {
                let defaults = ImageOptions::default();
                let images = ImageOptions {
                    size: *self.image_size.get_or_insert(defaults.size),
                    channels: *self.channels.get_or_insert(defaults.channels),
                };
                images.validate()?;
                images
            }
            _ if self.image_size.is_some() || self.channels.is_some() => {
                return Err(Error::Invalid(format!(
                    "--image-size and --channels shape the images of --dataset folder;                      {dataset} has its own size"
                )))
            }
            _ => ImageOptions::default(),
        };
        let widths = if model == "dcgan64" {
            (*self.ngf.get_or_insert(64), *self.ndf.get_or_insert(64))
        } else if self.ngf.is_some() || self.ndf.is_some() {
            return Err(Error::Invalid(
                "--ngf and --ndf are dcgan64's widths (progan takes --width)".into(),
            ));
        } else {
            (64, 64)
        };
        let default_batch = if model == "dcgan64" { 128 } else { 32 };
        let batch_size = *self.batch_size.get_or_insert(default_batch);
        if !(1..=MAX_BATCH).contains(&batch_size) {
            return Err(Error::Invalid(format!(
                "--batch-size {batch_size} (from the flag or the run's saved settings) must be 1 to {MAX_BATCH}"
            )));
        }
        let default = ProGanConfig::default();
        let progan = ProGanConfig {
            phase_images: *self.phase_images.get_or_insert(default.phase_images),
            width: *self.width.get_or_insert(default.width),
            ..default
        };
        progan.validate("--width / --phase-images, from the flags or the run's saved settings")?;
        let phase_steps = progan.phase_images.div_ceil(batch_size as u64).max(1);
        let (steps, sample_every) = match model {
            _ if toy.is_some() => (3_000, 250),
            "progan" => (progan.total_steps(batch_size), (phase_steps / 4).max(1)),
            "gan" => (30_000, 200),
            "cgan" => (20_000, 200),
            "wgan-gp" => (30_000, 100),
            _ => (4_000, 50),
        };
        Ok(Settings {
            dataset,
            images,
            widths,
            toy,
            batch_size,
            seed: *self.seed.get_or_insert(0),
            sampling: match self.sampling.get_or_insert(SamplingArg::Replacement) {
                SamplingArg::Replacement => Sampling::WithReplacement,
                SamplingArg::Epoch => Sampling::EpochShuffle,
            },
            style: match self.loop_style.get_or_insert(LoopArg::KerasTf1) {
                LoopArg::KerasTf1 => LoopStyle::KerasTf1,
                LoopArg::KerasTf2 => LoopStyle::KerasTf2,
                LoopArg::Torch => LoopStyle::Torch,
            },
            lr: self.lr,
            progan,
            steps: *self.steps.get_or_insert(steps),
            sample_every: *self.sample_every.get_or_insert(sample_every),
            checkpoint_every: *self.checkpoint_every.get_or_insert(1000),
            log_every: *self.log_every.get_or_insert(10),
        })
    }

    /// Records the identity of the data the run trains on; a resumed run must train on the
    /// same (from whatever folder), and older checkpoints, which did not record it, take it.
    pub fn check_data(&mut self, identity: String, from: &str) -> Result<()> {
        // Checkpoints of the first release keyed the content by Rust's `DefaultHasher`
        // (`content <hex>`), which changes between builds: those compare by everything else.
        let described = |id: &str| id.rsplit_once(", ").map_or(id, |(head, _)| head).to_owned();
        let same = |saved: &str| {
            if saved.contains(", content ") {
                described(saved) == described(&identity)
            } else {
                saved == identity
            }
        };
        match &self.data {
            Some(saved) if !same(saved) => Err(Error::Invalid(format!(
                "this run trained on {saved}; the data found now ({from}) is {identity}: \
                 resume with the run's data (--data-dir), or start a new run"
            ))),
            _ => {
                self.data = Some(identity);
                Ok(())
            }
        }
    }

    /// What the trainer saves in every checkpoint (`TrainConfig::settings`) for `resumed`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("flags are plain data")
    }
}

/// The dataset `model` trains on when `--dataset` is left out.
pub fn default_dataset(model: &str) -> &'static str {
    if model == "dcgan64" {
        "cifar10"
    } else {
        "mnist"
    }
}

/// `--lr`: what the optimisers accept, refused while parsing (JSON would save NaN as null).
fn learning_rate(text: &str) -> std::result::Result<f32, String> {
    let lr: f32 = text.parse().map_err(|e| format!("{e}"))?;
    check_lr(lr).map(|()| lr).map_err(|e| e.to_string())
}

/// A flag's value as typed on the command line (strings without JSON's quotes).
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "left out (the model's default)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{LoopArg, RunFlags};
    use ganlab::models::LoopStyle;

    #[test]
    fn a_batch_size_of_zero_or_past_the_bound_is_refused_naming_the_flag() {
        for bad in [0, super::MAX_BATCH + 1] {
            let mut flags = RunFlags {
                batch_size: Some(bad),
                ..RunFlags::default()
            };
            let Err(err) = flags.settle("dcgan") else {
                panic!("batch size {bad} accepted")
            };
            let err = err.to_string();
            assert!(
                err.contains("--batch-size") && err.contains(&bad.to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn the_book_loop_defaults_to_keras_tf1_and_old_keras_runs_resume_as_tf2() {
        let mut fresh = RunFlags::default();
        assert_eq!(fresh.settle("dcgan").unwrap().style, LoopStyle::KerasTf1);
        assert_eq!(
            fresh.loop_style,
            Some(LoopArg::KerasTf1),
            "saved with the run"
        );
        // A checkpoint written when `keras` was the (TF2) default.
        let mut old: RunFlags = serde_json::from_str(r#"{"loop":"keras"}"#).unwrap();
        assert_eq!(old.settle("dcgan").unwrap().style, LoopStyle::KerasTf2);
        let text = serde_json::to_string(&old).unwrap();
        assert!(text.contains(r#""loop":"keras-tf2""#), "{text}");
    }

    #[test]
    fn a_resume_on_other_data_is_refused_and_old_content_keys_compare_by_the_rest() {
        let now = "mnist: 9000 train + 1000 test items of [1, 28, 28], sha256 00112233aabbccdd";
        let mut flags = RunFlags::default();
        flags.check_data(now.into(), "here").unwrap();
        assert_eq!(flags.data.as_deref(), Some(now), "saved with the run");
        let other = now.replace("00112233", "99999999");
        assert!(flags.check_data(other, "there").is_err());
        // Saved by the first release, whose content hash is not stable across builds.
        let mut old = RunFlags {
            data: Some("mnist: 9000 train + 1000 test items of [1, 28, 28], content 1234".into()),
            ..RunFlags::default()
        };
        old.check_data(now.into(), "here").unwrap();
        assert_eq!(
            old.data.as_deref(),
            Some(now),
            "re-keyed with the stable hash"
        );
        let mut old_other = RunFlags {
            data: Some("mnist: 60000 train + 10000 test items of [1, 28, 28], content 1".into()),
            ..RunFlags::default()
        };
        assert!(old_other.check_data(now.into(), "here").is_err());
    }
}
