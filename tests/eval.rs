//! The evaluator end to end: softmax and cross-entropy, a classifier trained by the engine,
//! a collapsed generator reported as such, and the CLI verbs.

mod common;

use common::{ganlab, TINY};
use ganlab::data::idx::{encode_idx, IdxKind};
use ganlab::eval::classifier::{Classifier, CLASSES};
use ganlab::eval::report::Row;
use ganlab::{Device, Rng, Tensor};

#[test]
fn softmax_rows_sum_to_one_and_cross_entropy_matches_its_formula() {
    let x = Tensor::from_vec(
        vec![1000.0, 0.0, -1000.0, 1.0, 2.0, 3.0],
        &[2, 3],
        &Device::Cpu,
    )
    .unwrap();
    let p = x.softmax(1).unwrap().to_vec().unwrap();
    assert!((p[0] - 1.0).abs() < 1e-6 && p[2] == 0.0, "{p:?}");
    assert!((p[3..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
    let ce = x.cross_entropy(&[0, 2]).unwrap().item().unwrap();
    let want = (0.0 + (-(3.0f64) + (1f64.exp() + 2f64.exp() + 3f64.exp()).ln())) / 2.0;
    assert!((f64::from(ce) - want).abs() < 1e-5, "{ce} vs {want}");
    assert!(x.cross_entropy(&[0, 3]).is_err());
}

#[test]
fn a_generator_repeating_one_image_is_reported_as_collapsed() {
    let data = ganlab::data::load(
        "mnist",
        &ganlab::data::LoadOptions {
            data_dir: Some(TINY.into()),
            ..Default::default()
        },
    )
    .unwrap();
    let mut clf = Classifier::new("mnist", &mut Rng::seed(1), &Device::Cpu).unwrap();
    clf.fit(&data.train, &data.test, 2, 8, 1, |_, _| {})
        .unwrap();
    let real = clf.outputs(&data.test.all_values(), &Device::Cpu).unwrap();
    let one = data.test.item(0).to_vec();
    let repeated: Vec<f32> = (0..data.test.n).flat_map(|_| one.iter().copied()).collect();
    let collapsed = clf.outputs(&repeated, &Device::Cpu).unwrap();
    let row = Row::of("collapsed", &collapsed, &real);
    assert_eq!(row.coverage.classes_covered, 1);
    assert!((row.coverage.kl_to_uniform - (CLASSES as f64).ln()).abs() < 1e-9);
    assert!(
        (row.is_mean - 1.0).abs() < 1e-6,
        "IS of identical predictions is 1, got {}",
        row.is_mean
    );
    // The real set against itself: FID ~0, and the collapsed set is far from it.
    let itself = Row::of("real", &real, &real);
    assert!(itself.fid < 1e-6, "{}", itself.fid);
    assert!(row.fid > itself.fid + 1e-3);
}

#[test]
fn train_classifier_and_eval_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let clf = dir.path().join("clf.safetensors");
    let clf_s = clf.to_str().unwrap();
    let (ok, text) = ganlab(&[
        "train-classifier",
        "--data-dir",
        TINY,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        clf_s,
        "--device",
        "cpu",
    ]);
    assert!(ok && text.contains("test accuracy"), "{text}");
    // Samples from "another tool": 20 images as an IDX file.
    let pixels: Vec<u8> = (0..20 * 784).map(|i| ((i * 37) % 256) as u8).collect();
    let idx = dir.path().join("samples-idx3-ubyte");
    std::fs::write(
        &idx,
        encode_idx(IdxKind::Images, &[20, 28, 28], &pixels, false),
    )
    .unwrap();
    let json = dir.path().join("eval.json");
    let (ok, text) = ganlab(&[
        "eval",
        "--images",
        idx.to_str().unwrap(),
        "--data-dir",
        TINY,
        "--classifier",
        clf_s,
        "--json",
        json.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("generated") && text.contains("real test (reference)"),
        "{text}"
    );
    let written = std::fs::read_to_string(&json).unwrap();
    assert!(
        written.contains("\"inception_score\"") && written.contains("\"fid\""),
        "{written}"
    );

    // Checkpoints of a conditional model and of ProGAN (32x32 samples, cropped to the
    // classifier's 28x28) are scored too.
    for (model, extra) in [
        ("cgan", &[][..]),
        ("progan", &["--phase-images", "8", "--width", "4"][..]),
    ] {
        let run = dir.path().join(model);
        let (ok, text) = ganlab(
            &[
                &[
                    "train",
                    model,
                    "--data-dir",
                    TINY,
                    "--steps",
                    "2",
                    "--batch-size",
                    "4",
                    "--quiet",
                    "--device",
                    "cpu",
                    "--out",
                    run.to_str().unwrap(),
                ][..],
                extra,
            ]
            .concat(),
        );
        assert!(ok, "{model}: {text}");
        let (ok, text) = ganlab(&[
            "eval",
            "--checkpoint",
            run.join("checkpoint.safetensors").to_str().unwrap(),
            "--n",
            "20",
            "--data-dir",
            TINY,
            "--classifier",
            clf_s,
            "--device",
            "cpu",
        ]);
        assert!(ok && text.contains("generated"), "{model}: {text}");
    }
    let (ok, text) = ganlab(&[
        "eval",
        "--images",
        idx.to_str().unwrap(),
        "--data-dir",
        TINY,
        "--classifier",
        dir.path().join("none").to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!ok && text.contains("train-classifier"), "{text}");
}
