//! Hostile and mistaken input to the CLI, one row per case of the hardening issue: each states
//! its kind, the exit status, the key words of the message, and every file present before the
//! run (a finished tiny run, a classifier, hand-damaged copies) must be byte-identical after it.
//! No case may panic or take more than its time limit.
//!
//! Covered elsewhere: SIGTERM/SIGHUP/Ctrl-C (`cli.rs`, process control), quoting of checkpoint
//! metadata (`models::saved` unit test), the temporary-file sweep (`files` unit test and below).

mod common;

use common::TINY;
use ganlab::checkpoint::Checkpoint;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Kind {
    LostRun,
    Size,
    Hang,
    Resume,
    NoMetrics,
    Degenerate,
    Message,
    MetricsCsv,
    Loop,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Status {
    /// Exits with an error (1 from `main`, or clap's 2).
    Fails,
    /// Exits 0.
    Succeeds,
    /// Either, as long as it ends in time (the point is no hang).
    Ends,
}

struct Case {
    name: &'static str,
    kind: Kind,
    /// `{run}`: a finished 2-step gan run; `{tmp}`: the case's folder; `{tiny}`: the tiny IDX set;
    /// `{clf}`: a classifier trained on the tiny set (mnist); `{zero}`: an IDX file of 0 images.
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// Changes the prepared folder before the run.
    setup: fn(&Path),
    status: Status,
    words: &'static [&'static str],
    /// The message must not contain these.
    not: &'static [&'static str],
}

const NO_ENV: &[(&str, &str)] = &[];

/// Three more steps of the tiny run in `{run}`.
const RESUME_TINY: &[&str] = &[
    "train",
    "gan",
    "--data-dir",
    "{tiny}",
    "--resume",
    "{run}",
    "--device",
    "cpu",
    "--steps",
    "3",
];

fn nothing(_: &Path) {}

const CASES: &[Case] = &[
    Case {
        name: "a second run into a folder that holds one",
        kind: Kind::LostRun,
        args: &[
            "train",
            "gan",
            "--data-dir",
            "{tiny}",
            "--out",
            "{run}",
            "--device",
            "cpu",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["already holds a run", "--resume", "--overwrite"],
        not: &[],
    },
    Case {
        name: "an --overwrite refused by a later check deletes nothing",
        kind: Kind::LostRun,
        args: &[
            "train",
            "gan",
            "--data-dir",
            "{tiny}",
            "--out",
            "{run}",
            "--overwrite",
            "--eval-every",
            "1",
            "--classifier",
            "{tmp}/none.safetensors",
            "--device",
            "cpu",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["needs a classifier"],
        not: &[],
    },
    Case {
        name: "--steps 0",
        kind: Kind::Degenerate,
        args: &["train", "gan", "--steps", "0", "--out", "{tmp}/s0"],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--steps", "0"],
        not: &[],
    },
    Case {
        name: "batch size 0",
        kind: Kind::Size,
        args: &["train", "gan", "--batch-size", "0", "--out", "{tmp}/b0"],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--batch-size 0", "1 to 65536"],
        not: &[],
    },
    Case {
        name: "a checkpoint whose saved settings say batch size 0",
        kind: Kind::Size,
        args: &[
            "train",
            "gan",
            "--data-dir",
            "{tiny}",
            "--resume",
            "{run}",
            "--device",
            "cpu",
        ],
        env: NO_ENV,
        setup: |tmp| edit_settings(&tmp.join("run"), "batch-size", serde_json::json!(0)),
        status: Status::Fails,
        words: &["--batch-size 0", "saved settings"],
        not: &[],
    },
    Case {
        name: "a checkpoint whose saved settings say batch size 10^12",
        kind: Kind::Size,
        args: &[
            "train",
            "gan",
            "--data-dir",
            "{tiny}",
            "--resume",
            "{run}",
            "--device",
            "cpu",
        ],
        env: NO_ENV,
        setup: |tmp| {
            edit_settings(
                &tmp.join("run"),
                "batch-size",
                serde_json::json!(1_000_000_000_000u64),
            )
        },
        status: Status::Fails,
        words: &["--batch-size 1000000000000", "1 to 65536"],
        not: &[],
    },
    Case {
        name: "a batch whose step outgrows the machine's memory",
        kind: Kind::Size,
        args: &[
            "train",
            "dcgan",
            "--batch-size",
            "65536",
            "--device",
            "cpu",
            "--out",
            "{tmp}/big",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &[
            "--batch-size 65536",
            "needs about",
            "use a batch size of at most",
        ],
        not: &[],
    },
    Case {
        name: "progan --width 10^9",
        kind: Kind::Size,
        args: &[
            "train",
            "progan",
            "--width",
            "1000000000",
            "--out",
            "{tmp}/w",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["width 1000000000", "1 to 1024"],
        not: &[],
    },
    Case {
        name: "progan --width 2^62",
        kind: Kind::Size,
        args: &[
            "train",
            "progan",
            "--width",
            "4611686018427387904",
            "--out",
            "{tmp}/w",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["width 4611686018427387904"],
        not: &[],
    },
    Case {
        name: "sample --n 10^12",
        kind: Kind::Size,
        args: &[
            "sample",
            "--checkpoint",
            "{run}/checkpoint.safetensors",
            "--n",
            "1000000000000",
            "--out",
            "{tmp}/g.png",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--n", "10000"],
        not: &[],
    },
    Case {
        name: "eval --n 10^12",
        kind: Kind::Size,
        args: &[
            "eval",
            "--checkpoint",
            "{run}/checkpoint.safetensors",
            "--n",
            "1000000000000",
            "--classifier",
            "{clf}",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--n", "100000"],
        not: &[],
    },
    Case {
        name: "interpolate --steps 10^9",
        kind: Kind::Size,
        args: &[
            "interpolate",
            "--checkpoint",
            "{run}/checkpoint.safetensors",
            "--from",
            "1",
            "--to",
            "2",
            "--steps",
            "1000000000",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--steps", "1000"],
        not: &[],
    },
    Case {
        name: "a resume whose run.step is 10^15",
        kind: Kind::Hang,
        args: &[
            "train",
            "gan",
            "--data-dir",
            "{tiny}",
            "--resume",
            "{run}",
            "--device",
            "cpu",
            "--quiet",
        ],
        env: NO_ENV,
        setup: |tmp| {
            set_step(
                &tmp.join("run/checkpoint.safetensors"),
                1_000_000_000_000_000,
            )
        },
        status: Status::Ends,
        words: &[],
        not: &[],
    },
    Case {
        name: "a resume on other data",
        kind: Kind::Resume,
        args: &[
            "train", "gan", "--resume", "{run}", "--device", "cpu", "--steps", "3",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["this run trained on mnist: 32 train", "--data-dir"],
        not: &[],
    },
    Case {
        name: "--out with --resume",
        kind: Kind::Resume,
        args: &[
            "train",
            "gan",
            "--resume",
            "{run}",
            "--out",
            "{tmp}/elsewhere",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--out", "--resume", "drop --out"],
        not: &[],
    },
    Case {
        name: "a resume through a symlink loop",
        kind: Kind::Message,
        args: &["train", "gan", "--resume", "{tmp}/loop"],
        env: NO_ENV,
        setup: |tmp| symlink(&tmp.join("loop"), &tmp.join("loop")),
        status: Status::Fails,
        words: &["cannot read", "loop"],
        not: &["no checkpoint"],
    },
    Case {
        name: "eval --n 0",
        kind: Kind::NoMetrics,
        args: &[
            "eval",
            "--checkpoint",
            "{run}/checkpoint.safetensors",
            "--n",
            "0",
            "--classifier",
            "{clf}",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--n", "0"],
        not: &["FID"],
    },
    Case {
        name: "eval of an IDX file with no images",
        kind: Kind::NoMetrics,
        args: &[
            "eval",
            "--images",
            "{zero}",
            "--classifier",
            "{clf}",
            "--data-dir",
            "{tiny}",
            "--device",
            "cpu",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["0 image(s)", "at least 2"],
        not: &[],
    },
    Case {
        name: "train --eval-n 0",
        kind: Kind::NoMetrics,
        args: &[
            "train",
            "gan",
            "--eval-every",
            "1",
            "--eval-n",
            "0",
            "--out",
            "{tmp}/e",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--eval-n", "0"],
        not: &[],
    },
    Case {
        name: "a classifier trained on mnist used for fashion-mnist",
        kind: Kind::NoMetrics,
        args: &[
            "eval",
            "--checkpoint",
            "{run}/checkpoint.safetensors",
            "--dataset",
            "fashion-mnist",
            "--classifier",
            "{clf}",
            "--device",
            "cpu",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &[
            "trained on \"mnist\", not fashion-mnist",
            "train-classifier --dataset fashion-mnist",
        ],
        not: &[],
    },
    Case {
        name: "train-classifier --epochs 0 over a good classifier",
        kind: Kind::Degenerate,
        args: &["train-classifier", "--epochs", "0", "--out", "{clf}"],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["--epochs", "0"],
        not: &[],
    },
    Case {
        name: "train-classifier on a toy set",
        kind: Kind::Message,
        args: &[
            "train-classifier",
            "--dataset",
            "toy-ring",
            "--out",
            "{tmp}/t.safetensors",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["toy set", "mnist, fashion-mnist"],
        not: &["conv2d", "NCHW"],
    },
    Case {
        name: "a GANLAB_DATA that does not exist",
        kind: Kind::Message,
        args: &[
            "train", "gan", "--steps", "1", "--device", "cpu", "--quiet", "--out", "{tmp}/g",
        ],
        env: &[
            ("GANLAB_DATA", "/nonexistent-ganlab-data"),
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
            ("https_proxy", "http://127.0.0.1:9"),
        ],
        setup: nothing,
        status: Status::Succeeds,
        words: &["GANLAB_DATA /nonexistent-ganlab-data/mnist: no such folder"],
        not: &["Some(", "None"],
    },
    Case {
        name: "a missing classifier is not an 'invalid argument'",
        kind: Kind::Message,
        args: &[
            "eval",
            "--checkpoint",
            "{run}/checkpoint.safetensors",
            "--classifier",
            "{tmp}/none.safetensors",
        ],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["no classifier at", "train-classifier"],
        not: &["invalid argument"],
    },
    Case {
        name: "metrics.csv is a symlink",
        kind: Kind::MetricsCsv,
        args: RESUME_TINY,
        env: NO_ENV,
        setup: |tmp| {
            std::fs::write(tmp.join("target.txt"), "precious").unwrap();
            std::fs::remove_file(tmp.join("run/metrics.csv")).unwrap();
            symlink(&tmp.join("target.txt"), &tmp.join("run/metrics.csv"));
        },
        status: Status::Fails,
        words: &["symbolic link"],
        not: &[],
    },
    Case {
        name: "metrics.csv of other columns on resume",
        kind: Kind::MetricsCsv,
        args: RESUME_TINY,
        env: NO_ENV,
        setup: |tmp| {
            let path = tmp.join("run/metrics.csv");
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replacen("step,wall_s,", "step,wall_s,fid,", 1);
            std::fs::write(path, text).unwrap();
        },
        status: Status::Fails,
        words: &["has the columns", "this run logs"],
        not: &[],
    },
    Case {
        name: "--loop torch for wgan",
        kind: Kind::Loop,
        args: &["train", "wgan", "--loop", "torch", "--out", "{tmp}/l"],
        env: NO_ENV,
        setup: nothing,
        status: Status::Fails,
        words: &["wgan takes keras-tf1 or keras-tf2"],
        not: &[],
    },
];

/// Every regular file under `dir` (symlinks as their target path), by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let (path, kind) = (e.path(), e.file_type().unwrap());
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, target.to_string_lossy().as_bytes().to_vec());
            } else if kind.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// Sets one flag in the run settings the checkpoint in `run` saved (a well-formed file, its
/// checksum recomputed: hostile, not damaged).
fn edit_settings(run: &Path, flag: &str, value: serde_json::Value) {
    let path = run.join("checkpoint.safetensors");
    let mut ck = Checkpoint::load(&path).unwrap();
    let mut settings: serde_json::Value =
        serde_json::from_str(ck.metadata("run").unwrap()).unwrap();
    settings[flag] = value;
    ck.set_metadata("run", &settings.to_string()).unwrap();
    ck.save(&path).unwrap();
}

/// Overwrites the checkpoint's `run.step`.
fn set_step(path: &Path, step: u64) {
    let mut ck = Checkpoint::load(path).unwrap();
    assert!(ck.remove("run.step"));
    ck.put_u64s("run.step", &[step]).unwrap();
    ck.save(path).unwrap();
}

/// Runs `ganlab` with `args` in `dir`, killed after `limit`: (status code, output, elapsed).
fn run(
    dir: &Path,
    args: &[impl AsRef<std::ffi::OsStr>],
    env: &[(&str, &str)],
    limit: Duration,
) -> (Option<i32>, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganlab"));
    cmd.args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text_of(&out), start.elapsed())
}

/// stdout then stderr of a finished process.
fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A 2-step gan run on the tiny set into `run/`.
const TINY_RUN: &[&str] = &[
    "train",
    "gan",
    "--data-dir",
    TINY,
    "--batch-size",
    "4",
    "--steps",
    "2",
    "--quiet",
    "--device",
    "cpu",
    "--out",
    "run",
];

/// Runs `ganlab` with `args` in `dir` and asserts it succeeded; returns its output.
fn succeed(dir: &Path, args: &[&str]) -> String {
    let (code, text, _) = run(dir, args, NO_ENV, Duration::from_secs(300));
    assert_eq!(code, Some(0), "ganlab {}: {text}", args.join(" "));
    text
}

/// A finished 2-step gan run on the tiny set and a classifier of the tiny set, made once.
fn prepared(base: &Path) {
    succeed(base, TINY_RUN);
    succeed(
        base,
        &[
            "train-classifier",
            "--data-dir",
            TINY,
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            "clf.safetensors",
        ],
    );
    let zero =
        ganlab::data::idx::encode_idx(ganlab::data::idx::IdxKind::Images, &[0, 28, 28], &[], false);
    std::fs::write(base.join("zero.idx"), zero).unwrap();
}

#[test]
fn every_bad_input_is_refused_cleanly_and_touches_no_file() {
    let base = tempfile::tempdir().unwrap();
    prepared(base.path());
    let mut failures = Vec::new();
    for case in CASES {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(base.path(), tmp.path());
        (case.setup)(tmp.path());
        let before = snapshot(tmp.path());
        let t = tmp.path().to_str().unwrap();
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("{run}", &format!("{t}/run"))
                    .replace("{tmp}", t)
                    .replace("{tiny}", TINY)
                    .replace("{clf}", &format!("{t}/clf.safetensors"))
                    .replace("{zero}", &format!("{t}/zero.idx"))
            })
            .collect();
        let limit = Duration::from_secs(60);
        let (code, text, took) = run(tmp.path(), &args, case.env, limit);
        let what = format!("{} ({:?}): ganlab {}", case.name, case.kind, args.join(" "));
        let mut wrong = Vec::new();
        if took >= limit {
            wrong.push(format!("still running after {limit:?}"));
        }
        let status_ok = match case.status {
            Status::Fails => matches!(code, Some(c) if c != 0),
            Status::Succeeds => code == Some(0),
            Status::Ends => code.is_some(),
        };
        if !status_ok {
            wrong.push(format!("exit status {code:?}, expected {:?}", case.status));
        }
        if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
            wrong.push("panicked".into());
        }
        for w in case.words {
            if !text.contains(w) {
                wrong.push(format!("says nothing of {w:?}"));
            }
        }
        for w in case.not {
            if text.contains(w) {
                wrong.push(format!("says {w:?}"));
            }
        }
        let after = snapshot(tmp.path());
        for (path, bytes) in &before {
            if after.get(path) != Some(bytes) {
                wrong.push(format!("{} changed or went", path.display()));
            }
        }
        if !wrong.is_empty() {
            failures.push(format!("{what}\n  {}\n  output: {text}", wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_run_sweeps_the_temporary_file_a_killed_save_left() {
    let base = tempfile::tempdir().unwrap();
    let stale = base.path().join("run/.checkpoint.safetensors.tmp-4000000");
    succeed(base.path(), TINY_RUN);
    std::fs::write(&stale, vec![0u8; 1000]).unwrap();
    let text = succeed(
        base.path(),
        &[
            "train",
            "gan",
            "--data-dir",
            TINY,
            "--resume",
            "run",
            "--steps",
            "3",
            "--quiet",
            "--device",
            "cpu",
        ],
    );
    assert!(!stale.exists(), "{text}");
    assert!(text.contains("removed 1 temporary file"), "{text}");
}

/// The binary carries the 10k MNIST subset: copied where no checkout is, with no network, it
/// still trains.
#[test]
fn a_copied_binary_trains_offline_on_its_built_in_subset() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("ganlab");
    std::fs::copy(env!("CARGO_BIN_EXE_ganlab"), &exe).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let out = Command::new(&exe)
        .args([
            "train",
            "gan",
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--quiet",
            "--device",
            "cpu",
            "--out",
            "run",
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("https_proxy", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let text = text_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("built into the ganlab binary"), "{text}");
    assert!(
        dir.path().join("run/checkpoint.safetensors").exists(),
        "{text}"
    );
}
