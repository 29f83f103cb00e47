//! `--dataset folder`: PNG and JPEG of assorted sizes in class subfolders, a corrupt file and
//! a stray text file; centre crop, resize, channel order and grey; the decoded cache, reused
//! and invalidated; clear errors for empty and missing folders.

use std::path::{Path, PathBuf};

use ganlab::data::folder::{load_folder, FolderReport};
use ganlab::data::{self, pixel_value, shapes, Dataset, ImageOptions, LoadOptions};
use image::{Rgb, RgbImage};

fn options(dir: &Path, cache: &Path, size: usize, channels: usize) -> LoadOptions {
    LoadOptions {
        data_dir: Some(dir.to_owned()),
        cache_dir: Some(cache.to_owned()),
        images: ImageOptions { size, channels },
        ..LoadOptions::default()
    }
}

fn load(dir: &Path, cache: &Path, size: usize) -> (Dataset, FolderReport) {
    load_folder(dir, &options(dir, cache, size, 3)).unwrap()
}

/// 12 generated shapes (20 to 40 px, PNG and JPEG), a PNG that is not one, an image with an
/// upper-case extension, and a text file.
fn shapes_folder(dir: &Path) -> Vec<PathBuf> {
    let written = shapes::write_folder(dir, 12, 20, 3).unwrap();
    std::fs::write(dir.join("circle").join("broken.png"), b"not a png at all").unwrap();
    std::fs::copy(&written[0], dir.join("circle").join("LOUD.PNG")).unwrap();
    std::fs::write(dir.join("square").join("notes.txt"), b"hello").unwrap();
    written
}

#[test]
fn a_folder_of_shapes_loads_with_classes_skips_and_ignores() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let written = shapes_folder(dir.path());
    assert!(written.iter().any(|p| p.extension().unwrap() == "jpg"));
    assert!(written.iter().any(|p| p.extension().unwrap() == "png"));
    let (ds, report) = load(dir.path(), cache.path(), 16);
    assert_eq!(ds.train.n, 13, "12 shapes and the upper-case copy");
    assert_eq!(report.images, 13);
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(
        report.skipped[0].starts_with("circle/broken.png"),
        "{:?}",
        report.skipped
    );
    assert_eq!(report.ignored, 1, "the text file");
    assert_eq!(ds.classes, ["circle", "square", "triangle"]);
    assert_eq!(ds.train.class_counts(3), [5, 4, 4]);
    assert_eq!(ds.train.item_shape, [3, 16, 16]);
    assert_eq!(ds.test.n, 0, "a folder has no held-out split");
    let values = ds.train.all_values();
    assert_eq!(values.len(), 13 * 3 * 16 * 16);
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
    // The run's line names what was skipped and ignored.
    let line = report.summary(dir.path());
    assert!(
        line.contains("skipped 1 unreadable") && line.contains("circle/broken.png"),
        "{line}"
    );
    assert!(line.contains("ignored 1"), "{line}");
}

/// A wide image: left third red, middle third green, right third blue.
fn stripes(path: &Path, w: u32, h: u32) {
    RgbImage::from_fn(w, h, |x, _| match 3 * x / w {
        0 => Rgb([255, 0, 0]),
        1 => Rgb([0, 255, 0]),
        _ => Rgb([0, 0, 255]),
    })
    .save(path)
    .unwrap();
}

#[test]
fn images_are_centre_cropped_resized_and_stored_as_planes() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // 90x30: the centre 30x30 square is the green stripe, whatever the size it becomes.
    stripes(&dir.path().join("wide.png"), 90, 30);
    for (size, channels) in [(8, 3), (64, 3), (16, 1)] {
        let opts = options(dir.path(), cache.path(), size, channels);
        let (ds, _) = load_folder(dir.path(), &opts).unwrap();
        assert_eq!(ds.train.item_shape, [channels, size, size]);
        let item = ds.train.item(0);
        let plane = size * size;
        if channels == 3 {
            // Planes R, G, B: only G is lit, everywhere.
            assert!(item[..plane].iter().all(|&v| v == -1.0), "red at {size}");
            assert!(
                item[plane..2 * plane].iter().all(|&v| v == 1.0),
                "green at {size}"
            );
            assert!(
                item[2 * plane..].iter().all(|&v| v == -1.0),
                "blue at {size}"
            );
        } else {
            // Grey: the luma of pure green (BT.709: 0.7152 * 255 = 182), within rounding.
            let expect = pixel_value(182);
            assert!(
                item.iter().all(|&v| (v - expect).abs() <= 2.0 / 127.5),
                "{:?}",
                &item[..4]
            );
        }
    }
}

#[test]
fn the_cache_serves_the_second_load_and_a_changed_file_invalidates_it() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let written = shapes_folder(dir.path());
    let (first, report) = load(dir.path(), cache.path(), 16);
    assert!(!report.from_cache);
    assert_eq!(
        report.decoded, 14,
        "every image file, the broken one included"
    );
    let cache_file = report.cache.clone().expect("a cache folder was given");
    assert!(cache_file.starts_with(cache.path()) && cache_file.is_file());

    let (second, report) = load(dir.path(), cache.path(), 16);
    assert!(report.from_cache, "{report:?}");
    assert_eq!(report.decoded, 0);
    assert_eq!(
        report.skipped.len(),
        1,
        "the cache remembers what was skipped"
    );
    assert_eq!(second.train, first.train);

    // Another size is another cache entry, decoded afresh.
    let (_, report) = load(dir.path(), cache.path(), 8);
    assert!(!report.from_cache);

    // A file rewritten with other pixels (and another size and time) is decoded again.
    let victim = &written[0];
    RgbImage::from_pixel(33, 21, Rgb([250, 250, 250]))
        .save(victim)
        .unwrap();
    let (third, report) = load(dir.path(), cache.path(), 16);
    assert!(!report.from_cache, "the cache ignored a changed file");
    assert_ne!(third.train.values, first.train.values);
    assert!(
        third.train.item(0).iter().all(|&v| v > 0.9),
        "the new pixels"
    );

    // A damaged cache file is decoded around, not trusted.
    let (_, report) = load(dir.path(), cache.path(), 16);
    let path = report.cache.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let (fourth, report) = load(dir.path(), cache.path(), 16);
    assert!(!report.from_cache);
    assert_eq!(fourth.train, third.train);
}

#[test]
fn empty_missing_and_undecodable_folders_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let refused = |dir: &Path, size, channels| {
        load_folder(dir, &options(dir, cache.path(), size, channels))
            .unwrap_err()
            .to_string()
    };
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("readme.md"), b"no pictures").unwrap();
    let err = refused(empty.path(), 16, 3);
    assert!(
        err.contains("no PNG or JPEG") && err.contains("1 other files"),
        "{err}"
    );

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("a.jpg"), b"\xff\xd8 truncated").unwrap();
    let err = refused(broken.path(), 16, 3);
    assert!(
        err.contains("could be decoded") && err.contains("a.jpg"),
        "{err}"
    );

    let err = refused(&empty.path().join("nope"), 16, 3);
    assert!(err.contains("not a folder"), "{err}");

    // By name: the folder must be given.
    let err = data::load("folder", &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--data-dir"), "{err}");
    // Bad shapes are refused before anything is read.
    for (size, channels, flag) in [(2, 3, "--image-size"), (16, 2, "--channels")] {
        let err = refused(empty.path(), size, channels);
        assert!(err.contains(flag), "{err}");
    }
}

#[test]
fn images_directly_in_the_folder_are_one_class() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    stripes(&dir.path().join("a.png"), 40, 40);
    stripes(&dir.path().join("b.png"), 41, 39);
    let (ds, report) = load(dir.path(), cache.path(), 8);
    assert_eq!(ds.train.n, 2);
    assert_eq!(ds.classes.len(), 1);
    assert_eq!(ds.train.labels, [0, 0]);
    assert!(report.skipped.is_empty() && report.ignored == 0);
}
