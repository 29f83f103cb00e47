//! The downloader against a loopback server: good file, truncated body, wrong checksum, 404,
//! size mismatches, mirror fallback, refused connection. Never leaves 127.0.0.1.

mod data_support;

use std::fs;
use std::time::{Duration, Instant};

use data_support::server::{Reply, Server};
use ganlab::data::download::{file_url, Downloader};
use ganlab::data::registry::FileSpec;
use ganlab::data::{DataError, DownloadConfig};

const NAME: &str = "train-labels-idx1-ubyte.gz";

fn spec() -> FileSpec {
    data_support::tiny_spec(vec![]).files[1].clone()
}

fn downloader() -> Downloader {
    Downloader::new(&DownloadConfig::default(), false)
}

fn serve(reply: Reply) -> Server {
    Server::start(vec![(format!("/m/{NAME}"), reply)])
}

#[test]
fn good_file_is_verified_and_moved_into_place() {
    let body = data_support::tiny_bytes(NAME);
    let server = serve(Reply::File(body.clone()));
    let dir = tempfile::tempdir().unwrap();
    let path = downloader()
        .fetch(&file_url(&server.url("/m/"), NAME), &spec(), dir.path())
        .unwrap();
    assert_eq!(path, dir.path().join(NAME));
    assert_eq!(fs::read(&path).unwrap(), body);
    assert!(data_support::hidden_files(dir.path()).is_empty());
}

/// Every failure leaves neither the file under its name nor a `.partial`.
fn assert_rejected(reply: Reply, spec: FileSpec, expect: &str) -> DataError {
    let server = serve(reply);
    let dir = tempfile::tempdir().unwrap();
    let err = downloader()
        .fetch(&file_url(&server.url("/m/"), NAME), &spec, dir.path())
        .unwrap_err();
    assert!(err.to_string().contains(expect), "{err}");
    assert!(!dir.path().join(NAME).exists(), "unverified file kept");
    assert!(
        data_support::hidden_files(dir.path()).is_empty(),
        "partial kept"
    );
    err
}

#[test]
fn truncated_body_is_rejected() {
    let body = data_support::tiny_bytes(NAME);
    let err = assert_rejected(
        Reply::Truncated {
            claimed: body.len(),
            body: body[..body.len() - 7].to_vec(),
        },
        spec(),
        "after",
    );
    assert!(matches!(err, DataError::Download { .. }));
}

#[test]
fn wrong_checksum_is_rejected() {
    let mut body = data_support::tiny_bytes(NAME);
    let last = body.len() - 1;
    body[last] ^= 1;
    let err = assert_rejected(Reply::File(body), spec(), "SHA-256 mismatch");
    assert!(matches!(err, DataError::Checksum { .. }));
}

#[test]
fn not_found_is_rejected() {
    assert_rejected(Reply::NotFound, spec(), "404");
}

#[test]
fn announced_size_other_than_published_is_rejected() {
    let body = data_support::tiny_bytes(NAME);
    let mut wrong = body.clone();
    wrong.push(0);
    assert_rejected(Reply::File(wrong), spec(), "announces");
}

#[test]
fn unannounced_body_longer_than_published_is_cut_off() {
    let mut body = data_support::tiny_bytes(NAME);
    body.extend_from_slice(&[0; 4096]);
    assert_rejected(Reply::Unsized(body), spec(), "after");
}

#[test]
fn unannounced_body_shorter_than_published_is_rejected() {
    let body = data_support::tiny_bytes(NAME);
    assert_rejected(
        Reply::Unsized(body[..10].to_vec()),
        spec(),
        "received 10 of",
    );
}

#[test]
fn next_mirror_is_tried_when_one_fails() {
    let body = data_support::tiny_bytes(NAME);
    let server = Server::start(vec![(format!("/good/{NAME}"), Reply::File(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let mirrors = vec![server.url("/missing/"), server.url("/good")];
    let path = downloader()
        .fetch_any(&mirrors, &spec(), dir.path())
        .unwrap();
    assert_eq!(fs::read(path).unwrap(), body);
    assert_eq!(server.hits(), 2);
}

#[test]
fn all_mirrors_failing_reports_each() {
    let server = Server::start(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let mirrors = vec![server.url("/a/"), server.url("/b/")];
    let err = downloader()
        .fetch_any(&mirrors, &spec(), dir.path())
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/a/") && msg.contains("/b/"), "{msg}");
}

#[test]
fn refused_connection_fails_fast() {
    // Port 1 on loopback: nothing listens there, the kernel refuses at once.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = downloader()
        .fetch_any(&["http://127.0.0.1:1/".to_owned()], &spec(), dir.path())
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "{err}");
    assert!(data_support::hidden_files(dir.path()).is_empty());
}

#[test]
fn fetch_set_keeps_verified_files_and_replaces_bad_ones() {
    let tiny = data_support::tiny_spec(vec![]);
    let routes = data_support::GZ_NAMES
        .iter()
        .map(|n| (format!("/m/{n}"), Reply::File(data_support::tiny_bytes(n))))
        .collect();
    let server = Server::start(routes);
    let dir = tempfile::tempdir().unwrap();
    // One file already there and good, one there but damaged.
    let good = data_support::GZ_NAMES[0];
    let bad = data_support::GZ_NAMES[1];
    fs::copy(
        data_support::tiny_gz_dir().join(good),
        dir.path().join(good),
    )
    .unwrap();
    fs::write(dir.path().join(bad), b"damaged").unwrap();
    downloader()
        .fetch_set(&[server.url("/m/")], &tiny.files, dir.path())
        .unwrap();
    assert_eq!(server.hits(), 3, "the good file is not fetched again");
    for n in data_support::GZ_NAMES {
        assert_eq!(
            fs::read(dir.path().join(n)).unwrap(),
            data_support::tiny_bytes(n)
        );
    }
    assert!(data_support::hidden_files(dir.path()).is_empty());
}
