//! The resolution order, each step on its own and in sequence, the loopback download into the
//! cache, the shipped fallback, the all-fail message, and corrupt files found along the way.

mod data_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use data_support::server::{Reply, Server};
use ganlab::data::registry::{self, ImageSetSpec};
use ganlab::data::resolve::{fetch_image_set, load_image_set};
use ganlab::data::{load, DataError, Dataset, LoadOptions, Rule};

/// Options whose every place is a folder under `root` (none created yet).
fn options(root: &Path) -> LoadOptions {
    LoadOptions {
        ganlab_data: Some(root.join("ganlab-data")),
        cache_dir: Some(root.join("cache")),
        debian_root: Some(root.join("debian")),
        fixtures_dir: Some(root.join("fixtures")),
        ..LoadOptions::default()
    }
}

/// The tiny files served under `/m/`.
fn mirror() -> Server {
    let routes = data_support::GZ_NAMES
        .iter()
        .map(|n| (format!("/m/{n}"), Reply::File(data_support::tiny_bytes(n))))
        .collect();
    Server::start(routes)
}

fn assert_tiny(ds: &Dataset, rule: Rule, dir: &Path) {
    assert_eq!(ds.source.rule, rule);
    assert_eq!(ds.source.dir.as_deref(), Some(dir));
    assert_eq!((ds.train.n, ds.test.n), (32, 16));
}

#[test]
fn each_step_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = mirror();
    let spec = data_support::tiny_spec(vec![server.url("/m/")]);
    let mut opts = options(root);
    opts.allow_download = true;

    let places: [(Rule, PathBuf); 4] = [
        (Rule::GanlabData, root.join("ganlab-data/tiny")),
        (Rule::Cache, root.join("cache/tiny")),
        (Rule::Debian, root.join("debian/tiny")),
        (Rule::Fixture, root.join("fixtures/tiny-fallback")),
    ];
    for (_, dir) in &places {
        data_support::put_tiny(dir);
    }
    // With every place filled, each removal exposes the next rule.
    for (rule, dir) in &places[..3] {
        assert_tiny(&load_image_set(&spec, &opts).unwrap(), rule.clone(), dir);
        fs::remove_dir_all(dir).unwrap();
    }
    assert_eq!(server.hits(), 0, "no download while a local copy exists");

    // Nothing local (the fixture is last): download into the cache.
    let ds = load_image_set(&spec, &opts).unwrap();
    assert_tiny(&ds, Rule::Downloaded, &root.join("cache/tiny"));
    assert_eq!(server.hits(), 4);
    assert!(data_support::hidden_files(&root.join("cache/tiny")).is_empty());
    // ...after which the cache serves it.
    assert_tiny(
        &load_image_set(&spec, &opts).unwrap(),
        Rule::Cache,
        &root.join("cache/tiny"),
    );
    fs::remove_dir_all(root.join("cache/tiny")).unwrap();

    // Mirror gone: the shipped subset, announced.
    let offline = data_support::tiny_spec(vec![server.url("/gone/")]);
    let ds = load_image_set(&offline, &opts).unwrap();
    assert_tiny(&ds, Rule::Fixture, &places[3].1);
    let notice = ds.source.notice.unwrap();
    assert!(
        notice.contains("download failed") && notice.contains("tiny fallback"),
        "{notice}"
    );
    assert!(!root
        .join("cache/tiny")
        .join(data_support::GZ_NAMES[0])
        .exists());
    assert!(data_support::hidden_files(&root.join("cache/tiny")).is_empty());

    // And with the subset gone too, the error lists every place.
    fs::remove_dir_all(&places[3].1).unwrap();
    let msg = load_image_set(&offline, &opts).unwrap_err().to_string();
    for needle in [
        "ganlab-data/tiny: no such folder",
        "user cache",
        "Debian package folder",
        "download into",
        "404",
        "shipped subset",
        "Fix: pass --data-dir DIR",
        "GANLAB_DATA",
        "ganlab data fetch tiny",
        "apt-get install dataset-tiny",
    ] {
        assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
    }
}

#[test]
fn explicit_data_dir_is_the_only_place_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = data_support::tiny_spec(vec![]);
    let mut opts = options(tmp.path());
    data_support::put_tiny(&tmp.path().join("ganlab-data/tiny"));
    let explicit = data_support::put_tiny(&tmp.path().join("explicit"));
    opts.data_dir = Some(explicit.clone());
    assert_tiny(
        &load_image_set(&spec, &opts).unwrap(),
        Rule::DataDir,
        &explicit,
    );

    // Missing there: an error, although GANLAB_DATA has a copy.
    opts.data_dir = Some(tmp.path().join("typo"));
    let msg = load_image_set(&spec, &opts).unwrap_err().to_string();
    assert!(
        msg.contains("--data-dir") && msg.contains("typo") && msg.contains("Fix:"),
        "{msg}"
    );
}

#[test]
fn unpacked_files_are_found_too() {
    let spec = data_support::tiny_spec(vec![]);
    let opts = LoadOptions {
        data_dir: Some(data_support::tiny_plain_dir()),
        ..LoadOptions::default()
    };
    let plain = load_image_set(&spec, &opts).unwrap();
    let gz = load_image_set(
        &spec,
        &LoadOptions {
            data_dir: Some(data_support::tiny_gz_dir()),
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(plain.train, gz.train);
    assert_eq!(plain.test, gz.test);
}

#[test]
fn partial_folder_lists_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_support::put_tiny(&tmp.path().join("ganlab-data/tiny"));
    fs::remove_file(dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let msg = load_image_set(&data_support::tiny_spec(vec![]), &options(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing t10k-labels-idx1-ubyte.gz"), "{msg}");
    assert!(msg.contains("download: disabled"), "{msg}");
}

#[test]
fn cache_root_follows_xdg_then_home() {
    let mut opts = LoadOptions {
        home: Some("/home/u".into()),
        ..LoadOptions::default()
    };
    assert_eq!(
        opts.cache_root(),
        Some(PathBuf::from("/home/u/.cache/ganlab"))
    );
    opts.xdg_cache_home = Some("relative/ignored".into());
    assert_eq!(
        opts.cache_root(),
        Some(PathBuf::from("/home/u/.cache/ganlab"))
    );
    opts.xdg_cache_home = Some("/xdg".into());
    assert_eq!(opts.cache_root(), Some(PathBuf::from("/xdg/ganlab")));
    opts.cache_dir = Some("/explicit".into());
    assert_eq!(opts.cache_root(), Some(PathBuf::from("/explicit")));
    assert_eq!(LoadOptions::default().cache_root(), None);
}

#[test]
fn home_cache_is_used_for_lookup_and_download() {
    let tmp = tempfile::tempdir().unwrap();
    let server = mirror();
    let spec = data_support::tiny_spec(vec![server.url("/m/")]);
    let opts = LoadOptions {
        home: Some(tmp.path().to_owned()),
        allow_download: true,
        ..LoadOptions::default()
    };
    let ds = load_image_set(&spec, &opts).unwrap();
    let cache = tmp.path().join(".cache/ganlab/tiny");
    assert_tiny(&ds, Rule::Downloaded, &cache);
    assert_tiny(&load_image_set(&spec, &opts).unwrap(), Rule::Cache, &cache);
}

#[test]
fn mirrors_option_overrides_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let server = mirror();
    let spec = data_support::tiny_spec(vec!["http://127.0.0.1:1/never/".into()]);
    let mut opts = options(tmp.path());
    opts.allow_download = true;
    opts.mirrors = Some(vec![server.url("/m/")]);
    let ds = load_image_set(&spec, &opts).unwrap();
    assert_eq!(ds.source.rule, Rule::Downloaded);
}

#[test]
fn corrupt_file_in_a_found_place_is_an_error_not_a_skip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_support::put_tiny(&tmp.path().join("ganlab-data/tiny"));
    data_support::put_tiny(&tmp.path().join("cache/tiny"));
    let images = dir.join("train-images-idx3-ubyte.gz");
    let bytes = fs::read(&images).unwrap();
    fs::write(&images, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_image_set(&data_support::tiny_spec(vec![]), &options(tmp.path())).unwrap_err();
    assert!(matches!(err, DataError::Idx { .. }), "{err}");
    assert!(
        err.to_string().contains("train-images-idx3-ubyte.gz"),
        "{err}"
    );
}

/// Writes a tiny dataset whose one file is replaced by `bytes`.
fn with_file(name: &str, bytes: Vec<u8>) -> (tempfile::TempDir, LoadOptions) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_support::put_tiny(&tmp.path().join("d"));
    fs::write(dir.join(name), bytes).unwrap();
    let opts = LoadOptions {
        data_dir: Some(dir),
        ..LoadOptions::default()
    };
    (tmp, opts)
}

fn gz_idx(kind: ganlab::data::idx::IdxKind, dims: &[usize], data: &[u8]) -> Vec<u8> {
    ganlab::data::idx::encode_idx(kind, dims, data, true)
}

#[test]
fn image_label_count_mismatch_is_rejected() {
    use ganlab::data::idx::IdxKind;
    let (_tmp, opts) = with_file(
        "train-labels-idx1-ubyte.gz",
        gz_idx(IdxKind::Labels, &[31], &[0; 31]),
    );
    let err = load_image_set(&data_support::tiny_spec(vec![]), &opts).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                images: 32,
                labels: 31,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn labels_outside_the_classes_are_rejected() {
    use ganlab::data::idx::IdxKind;
    let mut labels = vec![0u8; 16];
    labels[5] = 10;
    let (_tmp, opts) = with_file(
        "t10k-labels-idx1-ubyte.gz",
        gz_idx(IdxKind::Labels, &[16], &labels),
    );
    let msg = load_image_set(&data_support::tiny_spec(vec![]), &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("label 10 at index 5"), "{msg}");
}

#[test]
fn images_of_another_size_are_rejected() {
    use ganlab::data::idx::IdxKind;
    let (_tmp, opts) = with_file(
        "t10k-images-idx3-ubyte.gz",
        gz_idx(IdxKind::Images, &[16, 14, 14], &[0; 16 * 14 * 14]),
    );
    let msg = load_image_set(&data_support::tiny_spec(vec![]), &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("14x14, expected 28x28"), "{msg}");
}

#[test]
fn swapped_image_and_label_files_are_rejected() {
    let (_tmp, opts) = with_file(
        "train-images-idx3-ubyte.gz",
        data_support::tiny_bytes("train-labels-idx1-ubyte.gz"),
    );
    let msg = load_image_set(&data_support::tiny_spec(vec![]), &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("dimension"), "{msg}");
}

#[test]
fn pixels_are_scaled_to_minus_one_one() {
    let opts = LoadOptions {
        data_dir: Some(data_support::tiny_gz_dir()),
        ..LoadOptions::default()
    };
    let ds = load_image_set(&data_support::tiny_spec(vec![]), &opts).unwrap();
    let raw = data_support::tiny::tiny_idx_files();
    let values = ds.train.all_values();
    for (i, &x) in raw[0].data.iter().enumerate().step_by(97) {
        assert_eq!(values[i], f32::from(x) / 127.5 - 1.0);
    }
    assert_eq!(f32::from(0u8) / 127.5 - 1.0, -1.0);
    assert_eq!(f32::from(255u8) / 127.5 - 1.0, 1.0);
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(ds.train.labels, raw[1].data);
    assert_eq!(ds.train.item_shape, vec![1, 28, 28]);
}

#[test]
fn mnist_falls_back_to_the_shipped_10k_subset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.fixtures_dir = Some(data_support::fixtures());
    let ds = load("mnist", &opts).unwrap();
    assert_eq!(ds.source.rule, Rule::Fixture);
    assert_eq!((ds.train.n, ds.test.n), (9000, 1000));
    let notice = ds.source.notice.as_deref().unwrap();
    assert!(notice.contains("10,000-digit subset") && notice.contains("download disabled"));
    assert!(!notice.contains('\n'));
    assert!(ds.info().contains(notice));
}

#[test]
fn without_a_fixtures_folder_mnist_falls_back_to_the_copy_built_into_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.fixtures_dir = Some(data_support::fixtures());
    let folder = load("mnist", &opts).unwrap();
    for fixtures in [None, Some(tmp.path().join("nowhere"))] {
        opts.fixtures_dir = fixtures;
        let ds = load("mnist", &opts).unwrap();
        assert_eq!(ds.source.rule, Rule::Embedded);
        assert_eq!(ds.source.dir, None);
        assert!(ds
            .source
            .notice
            .as_deref()
            .unwrap()
            .contains("10,000-digit subset"));
        // The same digits as the shipped files.
        assert_eq!(ds.identity(), folder.identity());
        assert_eq!((ds.train.n, ds.test.n), (9000, 1000));
    }
}

#[test]
fn mnist_offline_fails_fast_to_the_subset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.fixtures_dir = Some(data_support::fixtures());
    opts.allow_download = true;
    opts.mirrors = Some(vec![
        "http://127.0.0.1:1/a/".into(),
        "http://127.0.0.1:1/b/".into(),
    ]);
    let started = Instant::now();
    let ds = load("mnist", &opts).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(ds.source.rule, Rule::Fixture);
    assert!(ds.source.notice.unwrap().contains("download failed"));
    assert!(data_support::hidden_files(&tmp.path().join("cache/mnist")).is_empty());
}

#[test]
fn damaged_subset_is_not_used() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("fixtures/mnist-10k");
    fs::create_dir_all(&sub).unwrap();
    for n in data_support::GZ_NAMES {
        fs::copy(
            data_support::fixtures().join("mnist-10k").join(n),
            sub.join(n),
        )
        .unwrap();
    }
    // A valid IDX file, but not the one shipped.
    fs::copy(
        data_support::tiny_gz_dir().join("t10k-labels-idx1-ubyte.gz"),
        sub.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    // Not used: the copy built into the binary is, the last place in the order.
    let ds = load("mnist", &options(tmp.path())).unwrap();
    assert_eq!(ds.source.rule, Rule::Embedded);
    assert_eq!(ds.test.n, 1000, "the shipped labels, not the tiny set's");
    // Without that copy, the damage is the error.
    let mut spec = registry::mnist();
    spec.fallback.as_mut().unwrap().embedded = None;
    let msg = load_image_set(&spec, &options(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("SHA-256 mismatch") && msg.contains("mnist-10k"),
        "{msg}"
    );
}

#[test]
fn fashion_mnist_resolves_from_the_debian_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_support::put_tiny(&tmp.path().join("debian/fashion-mnist"));
    let ds = load("fashion-mnist", &options(tmp.path())).unwrap();
    assert_tiny(&ds, Rule::Debian, &dir);
    assert_eq!(ds.classes[9], "Ankle boot");
}

#[test]
fn fashion_mnist_not_found_suggests_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let msg = load("fashion-mnist", &options(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("apt-get install dataset-fashion-mnist"),
        "{msg}"
    );
    assert!(
        msg.contains("debian/fashion-mnist: no such folder"),
        "{msg}"
    );
}

#[test]
fn fetch_downloads_into_the_cache_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = mirror();
    let spec = data_support::tiny_spec(vec![server.url("/m/")]);
    let opts = options(tmp.path());
    let ds = fetch_image_set(&spec, &opts).unwrap();
    assert_tiny(&ds, Rule::Downloaded, &tmp.path().join("cache/tiny"));
    fetch_image_set(&spec, &opts).unwrap();
    assert_eq!(server.hits(), 4, "second fetch finds the verified files");

    // Into --data-dir when given.
    let dest = tmp.path().join("mine");
    let opts = LoadOptions {
        data_dir: Some(dest.clone()),
        ..opts
    };
    assert_tiny(
        &fetch_image_set(&spec, &opts).unwrap(),
        Rule::DataDir,
        &dest,
    );
}

#[test]
fn fetch_failure_is_an_error_without_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(vec![]);
    let mut opts = options(tmp.path());
    opts.fixtures_dir = Some(data_support::fixtures());
    opts.mirrors = Some(vec![server.url("/m/")]);
    let spec: ImageSetSpec = registry::mnist();
    let err = fetch_image_set(&spec, &opts).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert!(err.to_string().contains("404"));
    assert_eq!(server.hits(), 1, "stops at the first file no mirror has");
}

#[test]
fn registry_entries_are_well_formed() {
    use ganlab::data::Entry;
    for name in registry::NAMES {
        let Entry::Images(spec) = registry::lookup(name).unwrap() else {
            continue;
        };
        assert_eq!(spec.name, name);
        let mut sets = vec![&spec.files];
        if let Some(fallback) = &spec.fallback {
            sets.push(&fallback.files);
        }
        for files in sets {
            let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
            assert_eq!(names, data_support::GZ_NAMES);
            for f in files {
                assert_eq!(f.sha256.len(), 64, "{name} {}", f.name);
                assert!(f
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                assert!(f.size > 0);
            }
        }
        assert!(!spec.mirrors.is_empty());
        assert_eq!(spec.classes.len(), 10);
    }
    assert!(matches!(
        registry::lookup("cifar"),
        Err(DataError::UnknownDataset(_))
    ));
}
