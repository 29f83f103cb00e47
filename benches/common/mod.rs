//! Helpers every bench shares.
#![allow(dead_code)]

/// The median of a non-empty sample.
pub fn median(v: Vec<f64>) -> f64 {
    Times::of(v).median_s
}

/// A non-empty sample of timings, by its quartiles: the median, and the middle half around
/// it, which says how noisy the machine was (two medians inside each other's middle halves
/// are not a difference).
#[derive(Clone, Copy, serde::Serialize)]
pub struct Times {
    pub median_s: f64,
    pub p25_s: f64,
    pub p75_s: f64,
}

impl Times {
    pub fn of(mut v: Vec<f64>) -> Times {
        v.sort_by(f64::total_cmp);
        let at = |q: usize| v[(v.len() - 1) * q / 4];
        Times {
            median_s: v[v.len() / 2],
            p25_s: at(1),
            p75_s: at(3),
        }
    }

    /// "(middle half 0.122-0.136 ms)", for the tables.
    pub fn middle_half(&self) -> String {
        format!(
            "(middle half {:.3}-{:.3} ms)",
            self.p25_s * 1e3,
            self.p75_s * 1e3
        )
    }
}

/// Writes a bench's JSON document to `target/bench/<name>.json` and says where (or why not).
pub fn write_json(name: &str, json: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    let path = dir.join(format!("{name}.json"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, json)) {
        Ok(()) => println!("\nwrote {}", path.display()),
        Err(e) => println!("\ncould not write {}: {e}", path.display()),
    }
}

use ganlab::device::with_subgroups;
use ganlab::ops::gemm::{with_splits, with_variant, GemmLaunch, Variant};

/// How a GPU GEMM can be forced (`--variant`): the launch plan's choice (`auto`), the 64x64
/// tiles (`tiled`) or the 64x128 ones (`wide`) whatever the shape, or one pass over all of K
/// (`nosplit`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum GemmVariant {
    Auto,
    Tiled,
    Wide,
    NoSplit,
    /// The plan's choice without subgroup operations (the thin kernel's lanes, the split-K
    /// reduce and the reductions in their plain kernels).
    NoSubgroups,
}

impl GemmVariant {
    pub const ALL: [GemmVariant; 5] = [
        GemmVariant::Auto,
        GemmVariant::Tiled,
        GemmVariant::Wide,
        GemmVariant::NoSplit,
        GemmVariant::NoSubgroups,
    ];

    pub fn name(self) -> &'static str {
        match self {
            GemmVariant::Auto => "auto",
            GemmVariant::Tiled => "tiled",
            GemmVariant::Wide => "wide",
            GemmVariant::NoSplit => "nosplit",
            GemmVariant::NoSubgroups => "nosubgroups",
        }
    }

    /// Runs `f` with this variant forced on this thread's GEMMs.
    pub fn force<T>(self, f: impl FnOnce() -> T) -> T {
        match self {
            GemmVariant::Auto => f(),
            GemmVariant::Tiled => with_variant(Variant::Tiled, f),
            GemmVariant::Wide => with_variant(Variant::Wide, f),
            GemmVariant::NoSplit => with_splits(1, f),
            GemmVariant::NoSubgroups => with_subgroups(false, f),
        }
    }
}

/// "kernel (thin): 2 splits, 288 wg, 209 K-steps" for each GEMM a pass launched.
pub fn describe(launches: &[GemmLaunch]) -> String {
    launches
        .iter()
        .map(|l| {
            format!(
                "{} ({:?}{}): {} split{}, {} wg, {} K-steps",
                l.kernel,
                l.variant,
                if l.subgroups { ", subgroups" } else { "" },
                l.splits,
                if l.splits == 1 { "" } else { "s" },
                l.workgroups,
                l.k_steps
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// GFLOP/s as a share of `--peak-tflops`, and how the tables print it.
pub fn peak(gflops: f64, peak_tflops: Option<f64>) -> (Option<f64>, String) {
    let fraction = peak_tflops.map(|p| gflops / (p * 1e3));
    let text = fraction
        .map(|f| format!(" {:>5.1}% of peak", f * 100.0))
        .unwrap_or_default();
    (fraction, text)
}

/// What every GEMM-shaped bench row records of one timed pass (flattened into its row).
#[derive(serde::Serialize)]
pub struct Timing {
    pub device: &'static str,
    pub variant: &'static str,
    #[serde(flatten)]
    pub times: Times,
    /// At the median.
    pub gflops: f64,
    /// Of `--peak-tflops`, when given.
    pub peak_fraction: Option<f64>,
    pub gpu_timestamps: bool,
    /// The GEMMs the pass launched (GPU).
    pub launches: Vec<GemmLaunch>,
}

/// A bench's JSON document.
#[derive(serde::Serialize)]
pub struct Report<R> {
    pub bench: &'static str,
    pub adapter: Option<String>,
    pub reps: usize,
    pub peak_tflops: Option<f64>,
    pub rows: Vec<R>,
}

impl<R: serde::Serialize> Report<R> {
    /// Writes the document to `target/bench/<bench>.json`.
    pub fn write(&self) {
        match serde_json::to_string(self) {
            Ok(json) => write_json(self.bench, &json),
            Err(e) => println!("could not encode the report: {e}"),
        }
    }
}
