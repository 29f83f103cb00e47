//! The real data at hand: the shared MNIST 10k subset, Debian's Fashion-MNIST, the committed
//! fixtures. Each test skips, saying why, only when its data is absent from this machine.

mod data_support;

use std::path::{Path, PathBuf};

use ganlab::data::download::sha256_file;
use ganlab::data::idx::parse_idx;
use ganlab::data::registry;
use ganlab::data::{load, Dataset, LoadOptions, Rule};

fn present(dir: &Path) -> bool {
    if dir.is_dir() {
        return true;
    }
    eprintln!("skipped: {} is absent on this machine", dir.display());
    false
}

fn check_images(ds: &Dataset) {
    for split in [&ds.train, &ds.test] {
        let values = split.all_values();
        assert_eq!(values.len(), split.n * 28 * 28);
        assert_eq!(split.labels.len(), split.n);
        let (min, max) = values
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert_eq!((min, max), (-1.0, 1.0));
    }
}

#[test]
fn shared_mnist_10k_loads_with_its_counts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist-10k");
    if !present(&dir) {
        return;
    }
    let opts = LoadOptions {
        data_dir: Some(dir),
        ..LoadOptions::default()
    };
    let ds = load("mnist", &opts).unwrap();
    assert_eq!(ds.source.rule, Rule::DataDir);
    assert_eq!((ds.train.n, ds.test.n), (9_000, 1_000));
    let counts = ds.train.class_counts(10);
    assert!(counts.iter().all(|&c| c > 700), "{counts:?}");
    check_images(&ds);
}

#[test]
fn debian_fashion_mnist_loads_with_its_counts() {
    let root = PathBuf::from("/usr/share/datasets");
    if !present(&root.join("fashion-mnist")) {
        return;
    }
    let opts = LoadOptions {
        debian_root: Some(root),
        ..LoadOptions::default()
    };
    let ds = load("fashion-mnist", &opts).unwrap();
    assert_eq!(ds.source.rule, Rule::Debian);
    assert_eq!((ds.train.n, ds.test.n), (60_000, 10_000));
    assert_eq!(ds.train.class_counts(10), vec![6_000; 10]);
    assert_eq!(ds.test.class_counts(10), vec![1_000; 10]);
    check_images(&ds);
}

#[test]
fn shipped_mnist_10k_matches_its_registered_checksums() {
    let fallback = registry::mnist().fallback.unwrap();
    let dir = data_support::fixtures().join(&fallback.subdir);
    for f in &fallback.files {
        let path = dir.join(&f.name);
        assert_eq!(sha256_file(&path).unwrap(), f.sha256, "{}", f.name);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            f.size,
            "{}",
            f.name
        );
    }
    assert!(dir.join("PROVENANCE.md").is_file());
}

#[test]
fn committed_tiny_fixtures_match_their_generator() {
    for file in data_support::tiny::tiny_idx_files() {
        let plain = std::fs::read(data_support::tiny_plain_dir().join(file.name)).unwrap();
        assert_eq!(plain, file.encode(false), "{}", file.name);
        // Compare gzip files by content: compressor versions may change the bytes.
        let gz = data_support::tiny_bytes(&format!("{}.gz", file.name));
        let decoded = parse_idx(&gz, file.kind).unwrap();
        assert_eq!(
            (decoded.dims, decoded.data),
            (file.dims.clone(), file.data.clone())
        );
    }
}
