//! `ganlab data info|fetch` argument handling and reports.

mod data_support;

use data_support::server::Server;
use ganlab::data::cli::run;
use ganlab::data::{DataError, LoadOptions};

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn tiny_dir() -> String {
    data_support::tiny_gz_dir().to_string_lossy().into_owned()
}

#[test]
fn info_reports_source_counts_shape_and_classes() {
    let dir = tiny_dir();
    let report = run(
        &args(&["info", "mnist", "--data-dir", &dir]),
        LoadOptions::default(),
    )
    .unwrap();
    for needle in [
        "dataset     mnist",
        "(--data-dir)",
        "train       32 items",
        "test        16 items",
        "item shape  [1, 28, 28]",
        "classes     10",
        "   9 9  train      3  test      1",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
    }
    assert!(report.contains(&dir));
}

#[test]
fn info_on_toys_takes_a_seed() {
    let report = run(
        &args(&["info", "toy-ring", "--seed", "9"]),
        LoadOptions::default(),
    )
    .unwrap();
    assert!(report.contains("generated from seed 9") && report.contains("classes     8"));
}

#[test]
fn fetch_of_a_toy_has_nothing_to_do() {
    let report = run(&args(&["fetch", "toy-bimodal"]), LoadOptions::default()).unwrap();
    assert!(report.contains("nothing to fetch"));
}

#[test]
fn fetch_reports_download_failure() {
    let server = Server::start(vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        mirrors: Some(vec![server.url("/m/")]),
        ..LoadOptions::default()
    };
    let dir = tmp.path().to_string_lossy().into_owned();
    let err = run(&args(&["fetch", "fashion-mnist", "--data-dir", &dir]), opts).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }), "{err}");
    assert!(data_support::hidden_files(tmp.path()).is_empty());
}

#[test]
fn bad_usage_is_explained() {
    for (words, needle) in [
        (&[][..], "missing command"),
        (&["info"][..], "missing dataset NAME"),
        (
            &["info", "mnist", "--data-dir"][..],
            "--data-dir needs a value",
        ),
        (&["info", "mnist", "--frob"][..], "unknown option --frob"),
        (
            &["info", "mnist", "extra"][..],
            "unexpected argument 'extra'",
        ),
        (&["info", "toy-ring", "--seed", "x"][..], "whole number"),
        (&["frob", "mnist"][..], "unknown data command 'frob'"),
    ] {
        let err = run(&args(words), LoadOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::Usage(_)), "{words:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(needle) && msg.contains("usage:"),
            "{words:?}: {msg}"
        );
    }
    let err = run(&args(&["info", "cifar"]), LoadOptions::default()).unwrap_err();
    assert!(err
        .to_string()
        .contains("known datasets: mnist, fashion-mnist"));
    assert!(run(&args(&["help"]), LoadOptions::default())
        .unwrap()
        .contains("usage:"));
}
