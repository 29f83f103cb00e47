//! Toy distributions: statistics per mode, seeded reproducibility, and mode coverage.

use ganlab::data::toy::{bimodal, ring, COVERED_MIN_SHARE};
use ganlab::data::{load, LoadOptions, Rule, ToyOptions};

fn mean_std(values: impl Iterator<Item = f64>) -> (f64, f64, usize) {
    let v: Vec<f64> = values.collect();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt(), v.len())
}

#[test]
fn bimodal_matches_its_modes() {
    let split = bimodal().split(20_000, 1, 0);
    assert_eq!(split.item_shape, vec![1]);
    for (k, centre) in [(0u8, 5.0), (1, 30.0)] {
        let (mean, std, n) = mean_std(
            split
                .all_values()
                .iter()
                .zip(&split.labels)
                .filter(|(_, &l)| l == k)
                .map(|(&x, _)| f64::from(x)),
        );
        assert!((mean - centre).abs() < 0.1, "mode {k}: mean {mean}");
        assert!((std - 2.0).abs() < 0.1, "mode {k}: std {std}");
        assert!(
            (n as f64 / 20_000.0 - 0.5).abs() < 0.02,
            "mode {k}: share {n}"
        );
    }
}

#[test]
fn ring_matches_its_modes() {
    let spec = ring();
    let split = spec.split(16_000, 2, 0);
    assert_eq!(split.item_shape, vec![2]);
    for (k, mode) in spec.modes.iter().enumerate() {
        assert!(((mode.centre[0].powi(2) + mode.centre[1].powi(2)).sqrt() - 2.0).abs() < 1e-12);
        for axis in 0..2 {
            let (mean, std, _) = mean_std(
                (0..split.n)
                    .filter(|&i| usize::from(split.labels[i]) == k)
                    .map(|i| f64::from(split.item(i)[axis])),
            );
            assert!(
                (mean - mode.centre[axis]).abs() < 0.005,
                "mode {k} axis {axis}: {mean}"
            );
            assert!(
                (std - 0.02).abs() < 0.003,
                "mode {k} axis {axis}: std {std}"
            );
        }
    }
}

#[test]
fn seeds_reproduce_and_differ() {
    let opts = ToyOptions {
        seed: 42,
        train_size: 500,
        test_size: 100,
    };
    let a = ring().dataset(&opts);
    let b = ring().dataset(&opts);
    assert_eq!(a, b);
    let c = ring().dataset(&ToyOptions {
        seed: 43,
        ..opts.clone()
    });
    assert_ne!(a.train.values, c.train.values);
    // Train and test are different streams, and the test split does not depend on train size.
    assert_ne!(a.train.items(0..100), a.test.items(0..100));
    let d = ring().dataset(&ToyOptions {
        train_size: 7,
        ..opts
    });
    assert_eq!(a.test, d.test);
    assert_eq!(a.source.rule, Rule::Generated { seed: 42 });
}

#[test]
fn loads_by_name() {
    let opts = LoadOptions {
        toy: ToyOptions {
            seed: 5,
            train_size: 300,
            test_size: 50,
        },
        ..LoadOptions::default()
    };
    let ds = load("toy-bimodal", &opts).unwrap();
    assert_eq!((ds.train.n, ds.test.n, ds.classes.len()), (300, 50, 2));
    assert_eq!(ds.classes[0], "N(5, 2^2)");
    let ds = load("toy-ring", &opts).unwrap();
    assert_eq!((ds.train.all_values().len(), ds.classes.len()), (600, 8));
    assert!(ds.info().contains("generated from seed 5"));
}

#[test]
fn real_samples_cover_every_mode() {
    for spec in [bimodal(), ring()] {
        let split = spec.split(2_500, 9, 0);
        let cov = spec.mode_coverage(&split.all_values());
        assert_eq!(cov.modes_covered, spec.modes.len(), "{}", spec.name);
        // 3 std holds 99.7% in 1-D and 98.9% of a 2-D isotropic Gaussian.
        assert!(cov.high_quality_share > 0.98, "{}: {cov:?}", spec.name);
        assert_eq!(cov.samples, 2_500);
    }
}

#[test]
fn collapsed_samples_cover_one_mode() {
    let spec = ring();
    let mut samples = Vec::new();
    for _ in 0..1000 {
        samples.extend_from_slice(&[2.0f32, 0.0]);
    }
    // A few strays on a second mode stay under the covered threshold.
    samples.extend_from_slice(&[0.0, 2.0, 0.0, 2.0]);
    let cov = spec.mode_coverage(&samples);
    assert_eq!(cov.modes_covered, 1);
    assert_eq!(cov.per_mode[2], 2);
    assert!((cov.high_quality_share - 1.0).abs() < 1e-12);
    const { assert!(2.0 / 1002.0 < COVERED_MIN_SHARE) };
}

#[test]
fn off_mode_and_non_finite_samples_are_low_quality() {
    let spec = bimodal();
    let cov = spec.mode_coverage(&[17.5, 100.0, f32::NAN, f32::INFINITY, 5.0]);
    assert_eq!(cov.per_mode, vec![1, 0]);
    assert!((cov.high_quality_share - 0.2).abs() < 1e-12);
    assert_eq!(cov.modes_covered, 1);
    let empty = spec.mode_coverage(&[]);
    assert_eq!((empty.modes_covered, empty.high_quality_share), (0, 0.0));
}
