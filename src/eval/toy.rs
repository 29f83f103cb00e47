//! Mode coverage of a generator on the toy distributions, scored and plotted during training:
//! modes covered and the high-quality share (VEEGAN's figures) as metrics columns, and a
//! histogram (1-D) or scatter plot (2-D) of samples against the data as PNG.

use crate::data::ToySpec;
use crate::models::Trainable;
use crate::train::trainer::{seeded_noise, Evaluator};
use crate::viz::{Chart, Series};
use crate::{Device, Error, Result};
use std::path::PathBuf;

/// The samples each evaluation draws (VEEGAN counts modes on 2,500).
pub const SAMPLES: usize = 2500;

pub struct ToyEval {
    pub spec: ToySpec,
    /// Data points drawn behind the samples.
    pub data: Vec<f32>,
    /// Where `toy_step_<step>.png` go.
    pub out_dir: PathBuf,
    pub device: Device,
}

impl ToyEval {
    /// The generator's samples for a fixed noise batch (the same every evaluation).
    pub fn samples(&self, model: &mut dyn Trainable) -> Result<Vec<f32>> {
        let z = seeded_noise(0x70E5, SAMPLES, model.z_dim(), &self.device)?;
        model.sample(&z, None)?.to_vec()
    }

    /// Histogram densities (1-D) or the point clouds (2-D) of data and samples.
    pub fn chart(&self, samples: &[f32], title: &str) -> Result<Chart> {
        let series = match self.spec.dim {
            1 => {
                let (lo, hi) = self
                    .data
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                let margin = (hi - lo) * 0.25;
                vec![
                    Series::line("data", histogram(&self.data, lo - margin, hi + margin)),
                    Series::line("samples", histogram(samples, lo - margin, hi + margin)),
                ]
            }
            2 => {
                let points = |v: &[f32]| {
                    v.chunks_exact(2)
                        .map(|p| (f64::from(p[0]), f64::from(p[1])))
                        .collect()
                };
                vec![
                    Series::points("data", points(&self.data)),
                    Series::points("samples", points(samples)),
                ]
            }
            d => {
                return Err(Error::Invalid(format!(
                    "toy plots are 1-D or 2-D, not {d}-D"
                )))
            }
        };
        let x = if self.spec.dim == 1 { "value" } else { "x" };
        Ok(Chart::new(720, 540).panel(title, x, series))
    }
}

/// Share of `values` in each of 60 bins over [lo, hi], as (bin centre, density) points.
fn histogram(values: &[f32], lo: f32, hi: f32) -> Vec<(f64, f64)> {
    const BINS: usize = 60;
    let width = f64::from(hi - lo) / BINS as f64;
    let mut counts = [0usize; BINS];
    for &v in values {
        let b = ((f64::from(v - lo)) / width).floor();
        if (0.0..BINS as f64).contains(&b) {
            counts[b as usize] += 1;
        }
    }
    let n = values.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            (
                f64::from(lo) + (i as f64 + 0.5) * width,
                c as f64 / n / width,
            )
        })
        .collect()
}

impl Evaluator for ToyEval {
    fn names(&self) -> Vec<&'static str> {
        vec!["modes_covered", "high_quality"]
    }

    fn evaluate(&mut self, model: &mut dyn Trainable, step: u64) -> Result<Vec<f64>> {
        let samples = self.samples(model)?;
        let cov = self.spec.mode_coverage(&samples);
        let title = format!(
            "step {step}: {}/{} modes, {:.1}% high quality",
            cov.modes_covered,
            self.spec.modes.len(),
            100.0 * cov.high_quality_share
        );
        self.chart(&samples, &title)?
            .save(&self.out_dir.join(format!("toy_step_{step:07}.png")))?;
        Ok(vec![cov.modes_covered as f64, cov.high_quality_share])
    }
}
