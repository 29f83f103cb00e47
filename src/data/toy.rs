//! The toy distributions of spec section 8, and how many of their modes a sample set covers.
//!
//! - `toy-bimodal`: 1-D, equal mixture of N(5, 2^2) and N(30, 2^2) (the book's two-city
//!   temperatures).
//! - `toy-ring`: 2-D, 8 Gaussians evenly on a circle of radius 2, std 0.02 (the mode-collapse
//!   benchmark of Metz et al.'s unrolled GAN and Srivastava et al.'s VEEGAN).
//!
//! Samples are drawn from a `ChaCha8` stream seeded by the caller, so a seed gives the same data on
//! every machine; labels are the index of the mode a sample was drawn from.

use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::dataset::{Dataset, Rule, Source, Split, Values};
use super::options::ToyOptions;

/// Share of the samples a mode must attract (within 3 std) to count as covered: 20 of the 2,500
/// samples VEEGAN evaluates, so a handful of strays does not make a mode "covered".
pub const COVERED_MIN_SHARE: f64 = 20.0 / 2500.0;

/// One isotropic Gaussian component.
#[derive(Clone, Debug, PartialEq)]
pub struct Mode {
    pub centre: Vec<f64>,
    pub std: f64,
}

/// An equal-weight mixture of isotropic Gaussians.
#[derive(Clone, Debug, PartialEq)]
pub struct ToySpec {
    pub name: String,
    pub dim: usize,
    pub modes: Vec<Mode>,
}

/// How well a sample set covers a [`ToySpec`]'s modes.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeCoverage {
    /// Modes holding at least [`COVERED_MIN_SHARE`] of the samples (and at least one).
    pub modes_covered: usize,
    /// Share of samples within 3 std of their nearest mode ("high quality" in VEEGAN's terms).
    pub high_quality_share: f64,
    /// High-quality samples per mode.
    pub per_mode: Vec<usize>,
    pub samples: usize,
}

pub fn bimodal() -> ToySpec {
    ToySpec {
        name: "toy-bimodal".into(),
        dim: 1,
        modes: [5.0, 30.0]
            .iter()
            .map(|&c| Mode {
                centre: vec![c],
                std: 2.0,
            })
            .collect(),
    }
}

pub fn ring() -> ToySpec {
    const MODES: usize = 8;
    const RADIUS: f64 = 2.0;
    ToySpec {
        name: "toy-ring".into(),
        dim: 2,
        modes: (0..MODES)
            .map(|k| {
                let angle = std::f64::consts::TAU * k as f64 / MODES as f64;
                Mode {
                    centre: vec![RADIUS * angle.cos(), RADIUS * angle.sin()],
                    std: 0.02,
                }
            })
            .collect(),
    }
}

impl ToySpec {
    /// `n` samples, contiguous (`n * dim` values), and the mode each came from.
    pub fn sample<R: Rng>(&self, n: usize, rng: &mut R) -> (Vec<f32>, Vec<u8>) {
        let mut values = Vec::with_capacity(n * self.dim);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let k = rng.random_range(0..self.modes.len());
            let mode = &self.modes[k];
            for &c in &mode.centre {
                let z: f64 = StandardNormal.sample(rng);
                values.push((c + mode.std * z) as f32);
            }
            // The specs have at most 256 modes.
            labels.push(k as u8);
        }
        (values, labels)
    }

    /// A split of `n` samples from `ChaCha8` seeded with `seed`, on its own `stream` so that
    /// train and test are independent and neither depends on the other's size.
    pub fn split(&self, n: usize, seed: u64, stream: u64) -> Split {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let (images, labels) = self.sample(n, &mut rng);
        Split {
            values: Values::Floats(images),
            labels,
            n,
            item_shape: vec![self.dim],
        }
    }

    pub fn dataset(&self, opts: &ToyOptions) -> Dataset {
        Dataset {
            name: self.name.clone(),
            train: self.split(opts.train_size, opts.seed, 0),
            test: self.split(opts.test_size, opts.seed, 1),
            classes: self.modes.iter().map(mode_name).collect(),
            source: Source {
                rule: Rule::Generated { seed: opts.seed },
                dir: None,
                notice: None,
            },
        }
    }

    /// Counts, for `samples` (contiguous, `dim` values each; a trailing partial item is
    /// ignored), the modes covered and the share of high-quality samples, following VEEGAN
    /// (Srivastava et al., 2017): a sample is high quality when it lies within 3 std of its
    /// nearest mode; a mode is covered when at least [`COVERED_MIN_SHARE`] of all samples are
    /// high-quality samples of that mode. Non-finite samples count as low quality.
    pub fn mode_coverage(&self, samples: &[f32]) -> ModeCoverage {
        let mut per_mode = vec![0usize; self.modes.len()];
        let mut n = 0;
        for x in samples.chunks_exact(self.dim) {
            n += 1;
            let nearest = self
                .modes
                .iter()
                .enumerate()
                .map(|(k, m)| (k, distance(x, &m.centre)))
                .filter(|(_, d)| d.is_finite())
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((k, d)) = nearest {
                if d <= 3.0 * self.modes[k].std {
                    per_mode[k] += 1;
                }
            }
        }
        let min_count = ((COVERED_MIN_SHARE * n as f64).ceil() as usize).max(1);
        let high_quality: usize = per_mode.iter().sum();
        ModeCoverage {
            modes_covered: per_mode.iter().filter(|&&c| c >= min_count).count(),
            high_quality_share: if n == 0 {
                0.0
            } else {
                high_quality as f64 / n as f64
            },
            per_mode,
            samples: n,
        }
    }
}

fn distance(x: &[f32], centre: &[f64]) -> f64 {
    x.iter()
        .zip(centre)
        .map(|(&a, &c)| (f64::from(a) - c).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn mode_name(m: &Mode) -> String {
    // Rounded, and +0.0 turns the -0.0 of cos/sin near multiples of pi/2 into 0.
    let centre: Vec<String> = m
        .centre
        .iter()
        .map(|c| format!("{}", (c * 1000.0).round() / 1000.0 + 0.0))
        .collect();
    match centre.as_slice() {
        [c] => format!("N({c}, {}^2)", m.std),
        _ => format!("N(({}), {}^2)", centre.join(", "), m.std),
    }
}
