//! CIFAR-10: records parsed into CHW pixels and labels from the archive or its unpacked
//! folder; truncated and mislabelled batches refused; the archive downloaded from a loopback
//! mirror, checked by SHA-256, then found in the cache.

mod data_support;

use std::path::Path;

use data_support::server::{Reply, Server};
use ganlab::data::cifar::{cifar10, load_archive_set, ArchiveSetSpec, UNPACKED};
use ganlab::data::download::sha256_bytes;
use ganlab::data::{pixel_value, LoadOptions, Rule};

const RECORD: usize = 3073;
const BATCHES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];

/// `n` records; record `i` of batch `b` has label (b + i) % 10 and pixel p = (b * 7 + i + p) % 256.
fn batch(b: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * RECORD);
    for i in 0..n {
        out.push(((b + i) % 10) as u8);
        out.extend((0..RECORD - 1).map(|p| ((b * 7 + i + p) % 256) as u8));
    }
    out
}

/// Two records in each train batch, three in the test batch.
fn batches() -> Vec<(&'static str, Vec<u8>)> {
    BATCHES
        .iter()
        .enumerate()
        .map(|(b, &name)| (name, batch(b, if b == 5 { 3 } else { 2 })))
        .collect()
}

fn archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut put = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{UNPACKED}/{name}"), bytes)
            .unwrap();
    };
    put("batches.meta.txt", b"airplane\nautomobile\n");
    for (name, bytes) in files {
        put(name, bytes);
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn spec_for(bytes: &[u8], mirrors: Vec<String>) -> ArchiveSetSpec {
    let mut spec = cifar10();
    spec.archive.sha256 = sha256_bytes(bytes);
    spec.archive.size = bytes.len() as u64;
    spec.mirrors = mirrors;
    spec
}

fn from_dir(dir: &Path) -> LoadOptions {
    LoadOptions {
        data_dir: Some(dir.to_owned()),
        ..LoadOptions::default()
    }
}

fn check(ds: &ganlab::data::Dataset) {
    assert_eq!((ds.train.n, ds.test.n), (10, 3));
    assert_eq!(ds.train.item_shape, [3, 32, 32]);
    assert_eq!(ds.classes.len(), 10);
    assert_eq!(ds.classes[9], "truck");
    // Train record 3 is batch 1 (0-based), record 1: label 2, pixels from 8.
    assert_eq!(ds.train.labels[3], 2);
    let item = ds.train.item(3);
    for p in [0, 1, 1023, 1024, 3071] {
        assert_eq!(item[p], pixel_value(((7 + 1 + p) % 256) as u8), "pixel {p}");
    }
    assert_eq!(ds.test.labels, [5, 6, 7]);
}

#[test]
fn the_archive_and_its_unpacked_folder_load_the_same_records() {
    let files = batches();
    let dir = tempfile::tempdir().unwrap();
    let bytes = archive(&files);
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), &bytes).unwrap();
    let from_archive = load_archive_set(&cifar10(), &from_dir(dir.path())).unwrap();
    check(&from_archive);
    assert_eq!(from_archive.source.rule, Rule::DataDir);

    let unpacked = tempfile::tempdir().unwrap();
    let sub = unpacked.path().join(UNPACKED);
    std::fs::create_dir(&sub).unwrap();
    for (name, bytes) in &files {
        std::fs::write(sub.join(name), bytes).unwrap();
    }
    let from_folder = load_archive_set(&cifar10(), &from_dir(unpacked.path())).unwrap();
    assert_eq!(from_folder.train, from_archive.train);
    assert_eq!(from_folder.test, from_archive.test);
}

#[test]
fn truncated_or_mislabelled_batches_and_missing_files_are_refused() {
    let mut files = batches();
    files[2].1.truncate(RECORD + 100);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), archive(&files)).unwrap();
    let err = load_archive_set(&cifar10(), &from_dir(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data_batch_3.bin") && err.contains("whole number"),
        "{err}"
    );

    let mut files = batches();
    files[5].1[RECORD] = 10;
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), archive(&files)).unwrap();
    let err = load_archive_set(&cifar10(), &from_dir(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("record 1 has label 10"), "{err}");

    let files = batches()[1..].to_vec();
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), archive(&files)).unwrap();
    let err = load_archive_set(&cifar10(), &from_dir(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no data_batch_1.bin"), "{err}");

    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), b"not gzip").unwrap();
    let err = load_archive_set(&cifar10(), &from_dir(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a readable .tar.gz"), "{err}");

    let empty = tempfile::tempdir().unwrap();
    let err = load_archive_set(&cifar10(), &from_dir(empty.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cifar-10-binary.tar.gz") && err.contains("--data-dir"),
        "{err}"
    );
}

#[test]
fn the_archive_downloads_once_from_a_loopback_mirror_checked_by_sha256() {
    let bytes = archive(&batches());
    let server = Server::start(vec![(
        "/m/cifar-10-binary.tar.gz".into(),
        Reply::File(bytes.clone()),
    )]);
    let cache = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        cache_dir: Some(cache.path().to_owned()),
        allow_download: true,
        ..LoadOptions::default()
    };
    let spec = spec_for(&bytes, vec![server.url("/m/")]);
    let ds = load_archive_set(&spec, &opts).unwrap();
    check(&ds);
    assert_eq!(ds.source.rule, Rule::Downloaded);
    assert_eq!(server.hits(), 1);
    let again = load_archive_set(&spec, &opts).unwrap();
    assert_eq!(again.source.rule, Rule::Cache);
    assert_eq!(server.hits(), 1, "the cached archive is used");

    // A mirror serving other bytes than the published sum: refused, nothing kept.
    let other = tempfile::tempdir().unwrap();
    let mut wrong = spec.clone();
    wrong.archive.sha256 = "0".repeat(64);
    let opts = LoadOptions {
        cache_dir: Some(other.path().to_owned()),
        ..opts
    };
    let err = load_archive_set(&wrong, &opts).unwrap_err().to_string();
    assert!(err.contains("SHA-256 mismatch"), "{err}");
    assert!(!other
        .path()
        .join("cifar10")
        .join("cifar-10-binary.tar.gz")
        .exists());
}
