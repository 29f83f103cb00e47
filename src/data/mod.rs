//! Datasets for ganlab: the IDX reader, MNIST / Fashion-MNIST resolution and download,
//! CIFAR-10, folders of PNG and JPEG images, the toy distributions of spec section 8, and
//! batching.
//!
//! Entry point: [`load`] with a [`LoadOptions`] (use [`LoadOptions::from_env`] in the binary; the
//! `Default` options read nothing from the environment, which is what tests want).

pub mod batch;
pub mod cifar;
pub mod cli;
pub mod dataset;
pub mod download;
pub mod folder;
pub mod idx;
pub mod options;
pub mod registry;
pub mod resolve;
pub mod shapes;
pub mod toy;

use std::path::PathBuf;

pub use batch::{prefetch, Batch, Batcher, Prefetch, Sampling};
pub use dataset::{pixel_value, Dataset, Rule, Source, Split, Values};
pub use options::{DownloadConfig, ImageOptions, LoadOptions, ToyOptions};
pub use registry::{Entry, FileRole, FileSpec, ImageSetSpec};
pub use toy::{ModeCoverage, ToySpec};

/// Everything that can go wrong in the data layer. Messages are written for the person running
/// `ganlab`: they say what happened and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid IDX file: {source}", path.display())]
    Idx {
        path: PathBuf,
        #[source]
        source: idx::IdxError,
    },
    #[error(
        "{} holds {images} images but {} holds {labels} labels; the two files must come from the same split",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    #[error("{}: {what}", path.display())]
    BadContent { path: PathBuf, what: String },
    #[error("unknown dataset '{0}'; known datasets: {known}", known = registry::NAMES.join(", "))]
    UnknownDataset(String),
    /// No place held the dataset; the message lists every place tried and how to fix it.
    #[error("{0}")]
    NotFound(String),
    #[error("download of {what} failed: {reason}")]
    Download { what: String, reason: String },
    #[error("{what}: SHA-256 mismatch (expected {expected}, got {actual}); the file was not used")]
    Checksum {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    InvalidArgument(String),
}

pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Loads a dataset by name (one of [`registry::NAMES`]).
///
/// MNIST-style sets are looked for in the order of [`resolve`], CIFAR-10 as [`cifar`] says;
/// `folder` reads `opts.data_dir` (see [`folder`]) and reports what it did on stderr unless
/// quiet (in `source.notice` when quiet); toy sets are generated from `opts.toy.seed`.
pub fn load(name: &str, opts: &LoadOptions) -> Result<Dataset> {
    match registry::lookup(name)? {
        Entry::Images(spec) => resolve::load_image_set(&spec, opts),
        Entry::Archive(spec) => cifar::load_archive_set(&spec, opts),
        Entry::Folder => {
            let dir = opts.data_dir.as_ref().ok_or_else(|| {
                DataError::Usage(
                    "--dataset folder needs --data-dir DIR, the folder of PNG and JPEG images"
                        .into(),
                )
            })?;
            let (mut dataset, report) = folder::load_folder(dir, opts)?;
            let line = report.summary(dir);
            if opts.quiet {
                dataset.source.notice = Some(line);
            } else {
                eprintln!("{line}");
            }
            Ok(dataset)
        }
        Entry::Toy(spec) => Ok(spec.dataset(&opts.toy)),
    }
}
