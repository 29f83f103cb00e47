//! CIFAR-10, binary version: 50,000 train and 10,000 test 32x32 RGB images in 10 classes.
//!
//! Read straight from the published `cifar-10-binary.tar.gz` (no unpacking needed) or from its
//! unpacked `cifar-10-batches-bin/` folder. Each record is a label byte then 3,072 pixel bytes,
//! the red, green and blue planes of 32x32: already the engine's CHW order.
//!
//! Where it comes from, in order: `--data-dir DIR` (only that place), `$GANLAB_DATA/cifar10/`,
//! the user cache `<cache>/cifar10/`, then a download of the archive into the cache, checked
//! against its published size and SHA-256.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::dataset::{Dataset, Rule, Source, Split, Values};
use super::download::Downloader;
use super::options::LoadOptions;
use super::registry::{FileRole, FileSpec};
use super::resolve::fetch_destination;
use super::{DataError, Result};

/// Side of an image.
pub const SIDE: usize = 32;
const RECORD: usize = 1 + 3 * SIDE * SIDE;
/// The folder the archive unpacks into.
pub const UNPACKED: &str = "cifar-10-batches-bin";
const TRAIN_BATCHES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const TEST_BATCH: &str = "test_batch.bin";

/// A dataset published as one archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSetSpec {
    pub name: String,
    pub title: String,
    pub archive: FileSpec,
    /// Base URLs, tried in order.
    pub mirrors: Vec<String>,
    pub classes: Vec<String>,
}

/// CIFAR-10 as Krizhevsky publishes it; size and SHA-256 as TensorFlow Datasets records them.
pub fn cifar10() -> ArchiveSetSpec {
    ArchiveSetSpec {
        name: "cifar10".into(),
        title: "CIFAR-10".into(),
        archive: FileSpec {
            role: FileRole::Archive,
            name: "cifar-10-binary.tar.gz".into(),
            sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd".into(),
            size: 170_052_171,
        },
        mirrors: vec!["https://www.cs.toronto.edu/~kriz/".into()],
        classes: [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// Loads `spec` from the first place that has it (see the module documentation).
pub fn load_archive_set(spec: &ArchiveSetSpec, opts: &LoadOptions) -> Result<Dataset> {
    if let Some(dir) = &opts.data_dir {
        return match find(dir, spec) {
            Ok(found) => read(spec, &found, source(Rule::DataDir, dir)),
            Err(why) => Err(DataError::NotFound(format!(
                "{} not found in --data-dir {}: {why}.\nFix: that folder must hold {} or its \
                 unpacked {UNPACKED}/; or leave out --data-dir to use GANLAB_DATA, the user \
                 cache or a download.",
                spec.title,
                dir.display(),
                spec.archive.name
            ))),
        };
    }
    let mut looked = Vec::new();
    let places = [
        (Rule::GanlabData, "GANLAB_DATA", opts.ganlab_data.clone()),
        (Rule::Cache, "user cache", opts.cache_root()),
    ];
    for (rule, label, root) in places {
        let Some(dir) = root.map(|r| r.join(&spec.name)) else {
            looked.push(format!("{label}: not set"));
            continue;
        };
        match find(&dir, spec) {
            Ok(found) => return read(spec, &found, source(rule, &dir)),
            Err(why) => looked.push(format!("{label} {}: {why}", dir.display())),
        }
    }
    match (opts.cache_root(), opts.allow_download) {
        (_, false) => looked.push("download: disabled".into()),
        (None, true) => looked.push("download: no cache folder to download into".into()),
        (Some(root), true) => {
            let dir = root.join(&spec.name);
            match fetch_archive_set(spec, opts) {
                Ok(dataset) => return Ok(dataset),
                Err(e) => looked.push(format!("download into {}: {e}", dir.display())),
            }
        }
    }
    let places: String = looked
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  {}. {p}\n", i + 1))
        .collect();
    Err(DataError::NotFound(format!(
        "{} ({}) not found. Looked in:\n{places}Fix: pass --data-dir DIR with {} (or its \
         unpacked {UNPACKED}/), put it in $GANLAB_DATA/{}/, or run with network access to \
         download it ({} MB).",
        spec.title,
        spec.name,
        spec.archive.name,
        spec.name,
        spec.archive.size / 1_000_000
    )))
}

/// `ganlab data fetch cifar10`: downloads the archive into `--data-dir` or the user cache
/// (keeping a verified copy already there), then loads it.
pub fn fetch_archive_set(spec: &ArchiveSetSpec, opts: &LoadOptions) -> Result<Dataset> {
    let (dir, rule) = fetch_destination(&spec.name, opts)?;
    let mirrors = opts.mirrors.as_ref().unwrap_or(&spec.mirrors);
    Downloader::new(&opts.download, !opts.quiet).fetch_set(
        mirrors,
        std::slice::from_ref(&spec.archive),
        &dir,
    )?;
    let found = Found::Archive(dir.join(&spec.archive.name));
    read(spec, &found, source(rule, &dir))
}

/// Where a folder keeps the set.
enum Found {
    Archive(PathBuf),
    Unpacked(PathBuf),
}

fn find(dir: &Path, spec: &ArchiveSetSpec) -> std::result::Result<Found, String> {
    if !dir.is_dir() {
        return Err("no such folder".into());
    }
    let archive = dir.join(&spec.archive.name);
    if archive.is_file() {
        return Ok(Found::Archive(archive));
    }
    for unpacked in [dir.join(UNPACKED), dir.to_owned()] {
        if unpacked.join(TEST_BATCH).is_file() {
            return Ok(Found::Unpacked(unpacked));
        }
    }
    Err(format!("no {} and no {UNPACKED}/", spec.archive.name))
}

fn read(spec: &ArchiveSetSpec, found: &Found, source: Source) -> Result<Dataset> {
    let batches = match found {
        Found::Archive(path) => read_archive(path)?,
        Found::Unpacked(dir) => {
            let mut batches = Vec::new();
            for name in TRAIN_BATCHES.iter().chain([&TEST_BATCH]) {
                let path = dir.join(name);
                let bytes = std::fs::read(&path).map_err(|e| DataError::io(&path, e))?;
                batches.push((path, bytes));
            }
            batches
        }
    };
    let place = match found {
        Found::Archive(p) | Found::Unpacked(p) => p.clone(),
    };
    let part = |name: &str| {
        batches
            .iter()
            .find(|(p, _)| p.file_name().is_some_and(|f| f == name))
            .ok_or_else(|| DataError::BadContent {
                path: place.clone(),
                what: format!("has no {name}"),
            })
    };
    let mut train = Vec::new();
    for name in TRAIN_BATCHES {
        let (path, bytes) = part(name)?;
        check_records(path, bytes, spec.classes.len())?;
        train.push(bytes.as_slice());
    }
    let (test_path, test) = part(TEST_BATCH)?;
    check_records(test_path, test, spec.classes.len())?;
    Ok(Dataset {
        name: spec.name.clone(),
        train: split(&train),
        test: split(&[test]),
        classes: spec.classes.clone(),
        source,
    })
}

/// The batch files inside the archive (named by their path in it), read in one pass.
fn read_archive(path: &Path) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let bad = |e: std::io::Error| DataError::BadContent {
        path: path.to_owned(),
        what: format!("not a readable .tar.gz: {e}"),
    };
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut archive = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(file)));
    let mut batches = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let wanted = name
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f == TEST_BATCH || TRAIN_BATCHES.contains(&f));
        if wanted {
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes).map_err(bad)?;
            batches.push((path.join(name), bytes));
        }
    }
    Ok(batches)
}

/// A batch file must be whole records, at least one, each label a class.
fn check_records(path: &Path, bytes: &[u8], classes: usize) -> Result<()> {
    let bad = |what: String| DataError::BadContent {
        path: path.to_owned(),
        what,
    };
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(bad(format!(
            "{} bytes is not a whole number of {RECORD}-byte records (truncated?)",
            bytes.len()
        )));
    }
    if let Some(i) = bytes
        .chunks_exact(RECORD)
        .position(|r| usize::from(r[0]) >= classes)
    {
        return Err(bad(format!(
            "record {i} has label {}, not a class (0-{})",
            bytes[i * RECORD],
            classes - 1
        )));
    }
    Ok(())
}

/// Batches of records (checked) as one split: labels apart, pixels as they are (CHW).
fn split(batches: &[&[u8]]) -> Split {
    let n = batches.iter().map(|b| b.len() / RECORD).sum();
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    for r in batches.iter().flat_map(|b| b.chunks_exact(RECORD)) {
        labels.push(r[0]);
        pixels.extend_from_slice(&r[1..]);
    }
    Split {
        values: Values::Pixels(pixels),
        labels,
        n,
        item_shape: vec![3, SIDE, SIDE],
    }
}

fn source(rule: Rule, dir: &Path) -> Source {
    Source {
        rule,
        dir: Some(dir.to_owned()),
        notice: None,
    }
}
