//! Helpers shared by the integration tests. Nothing here reaches past 127.0.0.1.

#![allow(dead_code)]

pub mod server;
pub mod tiny;

use std::fs;
use std::path::{Path, PathBuf};

use ganlab::data::download::sha256_file;
use ganlab::data::registry::{files, FallbackSpec, ImageSetSpec};

/// The crate's `fixtures/` folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The committed tiny IDX fixtures, gzip.
pub fn tiny_gz_dir() -> PathBuf {
    fixtures().join("tiny-idx/gz")
}

pub fn tiny_plain_dir() -> PathBuf {
    fixtures().join("tiny-idx/plain")
}

/// The four standard gzip names, in role order.
pub const GZ_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Copies the tiny gzip fixtures into `dir` (created), returning `dir`.
pub fn put_tiny(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).unwrap();
    for name in GZ_NAMES {
        fs::copy(tiny_gz_dir().join(name), dir.join(name)).unwrap();
    }
    dir.to_owned()
}

pub fn tiny_bytes(name: &str) -> Vec<u8> {
    fs::read(tiny_gz_dir().join(name)).unwrap()
}

/// A dataset spec for the tiny fixtures: their real checksums, the given mirrors, a Debian
/// folder named `tiny` and a shipped fallback in `<fixtures>/tiny-fallback`.
pub fn tiny_spec(mirrors: Vec<String>) -> ImageSetSpec {
    let sums: Vec<(String, u64)> = GZ_NAMES
        .iter()
        .map(|n| {
            let path = tiny_gz_dir().join(n);
            (
                sha256_file(&path).unwrap(),
                fs::metadata(&path).unwrap().len(),
            )
        })
        .collect();
    let specs = files([
        (sums[0].0.as_str(), sums[0].1),
        (sums[1].0.as_str(), sums[1].1),
        (sums[2].0.as_str(), sums[2].1),
        (sums[3].0.as_str(), sums[3].1),
    ]);
    ImageSetSpec {
        name: "tiny".into(),
        title: "tiny test digits".into(),
        files: specs.clone(),
        mirrors,
        classes: (0..10).map(|d| d.to_string()).collect(),
        rows: 28,
        cols: 28,
        debian_subdir: Some("tiny".into()),
        debian_package: Some("dataset-tiny".into()),
        fallback: Some(FallbackSpec {
            subdir: "tiny-fallback".into(),
            files: specs,
            notice: "using the tiny fallback".into(),
            embedded: None,
        }),
    }
}

/// Names in `dir` that start with a dot (partial downloads).
pub fn hidden_files(dir: &Path) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    }
}
