//! The command line end to end on the tiny fixtures: every verb writes what it promises.

mod common;

use common::{ganlab, TINY};
use std::path::Path;

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let info = decoder.read_info().unwrap();
    (info.info().width, info.info().height)
}

#[test]
fn train_resume_sample_interpolate_and_arithmetic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let common = [
        "--data-dir",
        TINY,
        "--batch-size",
        "8",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
        "--quiet",
        "--device",
        "cpu",
    ];
    let (ok, text) = ganlab(
        &[
            &["train", "gan", "--steps", "4", "--out", out_s][..],
            &common,
        ]
        .concat(),
    );
    assert!(ok, "{text}");
    for f in [
        "samples/step_0000002.png",
        "samples/step_0000004.png",
        "losses.png",
        "metrics.csv",
        "checkpoint.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f} missing:\n{text}");
    }
    // A 5x5 grid of 28x28 images at scale 2 with 2-pixel gaps.
    assert_eq!(png_size(&out.join("samples/step_0000004.png")), (292, 292));
    let (w, h) = png_size(&out.join("losses.png"));
    assert!(w >= 600 && h >= 300);
    let log = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(log.starts_with("step,wall_s,d_loss,d_acc,g_loss"), "{log}");
    assert_eq!(log.lines().count(), 5);

    // Resume to step 6: the log continues at 5 and 6.
    let (ok, text) = ganlab(
        &[
            &["train", "gan", "--steps", "6", "--resume", out_s][..],
            &common,
        ]
        .concat(),
    );
    assert!(ok, "{text}");
    let log = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let steps: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(steps, ["1", "2", "3", "4", "5", "6"]);

    let ckpt = out.join("checkpoint.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let grid = dir.path().join("grid.png");
    let (ok, text) = ganlab(&[
        "sample",
        "--checkpoint",
        ckpt,
        "--n",
        "12",
        "--seed",
        "3",
        "--out",
        grid.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    assert_eq!(png_size(&grid), (4 * 58 + 2, 3 * 58 + 2));

    let interp = dir.path().join("interp.png");
    let (ok, text) = ganlab(&[
        "interpolate",
        "--checkpoint",
        ckpt,
        "--from",
        "1",
        "--to",
        "2",
        "--steps",
        "7",
        "--spherical",
        "--out",
        interp.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    assert_eq!(png_size(&interp), (7 * 58 + 2, 58 + 2));

    let arith = dir.path().join("arith.png");
    let (ok, text) = ganlab(&[
        "arithmetic",
        "--checkpoint",
        ckpt,
        "--grid-seed",
        "3",
        "--a",
        "0,1,2",
        "--b",
        "3,4,5",
        "--c",
        "6,7,8",
        "--out",
        arith.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    assert_eq!(png_size(&arith), (4 * 58 + 2, 4 * 58 + 2));
    let (ok, text) = ganlab(&[
        "arithmetic",
        "--checkpoint",
        ckpt,
        "--grid-seed",
        "3",
        "--a",
        "0,1,99",
        "--b",
        "3",
        "--c",
        "6",
        "--device",
        "cpu",
    ]);
    assert!(!ok && text.contains("each 0-24"), "{text}");
}

#[test]
fn dcgan_trains_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dc");
    let (ok, text) = ganlab(&[
        "train",
        "dcgan",
        "--data-dir",
        TINY,
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--sample-every",
        "1",
        "--quiet",
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert!(
        out.join("samples/step_0000002.png").exists()
            && out.join("checkpoint.safetensors").exists()
    );
}

/// `ganlab devices` says what kernels may use on the adapter it picks, cooperative-matrix
/// shapes included, so a run on a new GPU records them.
#[test]
fn devices_lists_the_chosen_adapters_capabilities() {
    let (ok, text) = ganlab(&["devices"]);
    assert!(ok, "{text}");
    if text.contains("selected: none") {
        return;
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("capabilities: "))
        .unwrap_or_else(|| panic!("no capabilities line:\n{text}"));
    for part in ["timestamps ", "subgroups ", "cooperative matrices "] {
        assert!(line.contains(part), "{line}");
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = ganlab(&[
        "train",
        "dcgan",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--steps",
        "1",
        "--device",
        "cpu",
    ]);
    assert!(!ok && text.contains("train-images-idx3-ubyte"), "{text}");
    let (ok, text) = ganlab(&[
        "train",
        "vae",
        "--data-dir",
        TINY,
        "--device",
        "cpu",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("unknown model"), "{text}");
    let (ok, text) = ganlab(&[
        "train",
        "gan",
        "--data-dir",
        TINY,
        "--device",
        "cpu",
        "--resume",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("no checkpoint"), "{text}");
    let not_ckpt = dir.path().join("x.safetensors");
    std::fs::write(&not_ckpt, b"garbage").unwrap();
    let (ok, text) = ganlab(&[
        "sample",
        "--checkpoint",
        not_ckpt.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!ok && text.contains("x.safetensors"), "{text}");
    let (ok, text) = ganlab(&["demo", "--device", "tpu"]);
    assert!(!ok && text.contains("unknown device"), "{text}");
    for lr in ["nan", "-1e-4", "inf"] {
        let (ok, text) = ganlab(&["train", "gan", &format!("--lr={lr}"), "--steps", "1"]);
        assert!(!ok && text.contains("finite and >= 0"), "--lr {lr}: {text}");
    }
}

/// `ganlab train <model>` on the tiny fixture: (success, output, the run folder).
fn train_tiny(dir: &Path, model: &str, extra: &[&str]) -> (bool, String, std::path::PathBuf) {
    let out = dir.join(model);
    let (ok, text) = ganlab(
        &[
            &[
                "train",
                model,
                "--data-dir",
                TINY,
                "--batch-size",
                "4",
                "--log-every",
                "1",
                "--quiet",
                "--device",
                "cpu",
                "--out",
                out.to_str().unwrap(),
            ][..],
            extra,
        ]
        .concat(),
    );
    (ok, text, out)
}

/// `ganlab sample --checkpoint C --device cpu --out OUT`.
fn sample_to(checkpoint: &str, out: &str) -> (bool, String) {
    ganlab(&[
        "sample",
        "--checkpoint",
        checkpoint,
        "--device",
        "cpu",
        "--out",
        out,
    ])
}

/// A run's metrics.csv without its wall-time column: what a resumed run reproduces exactly.
fn logged_values(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(1);
            f.join(",")
        })
        .collect()
}

#[test]
fn a_resumed_run_keeps_the_settings_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    // Away from every default: a resume that fell back to the defaults would log other values.
    let settings = [
        "--loop",
        "torch",
        "--lr",
        "0.0005",
        "--seed",
        "3",
        "--sampling",
        "epoch",
    ];
    let steps = |n| [&settings[..], &["--steps", n]].concat();
    let (ok, text, straight) = train_tiny(dir.path(), "dcgan", &steps("4"));
    assert!(ok, "{text}");
    let split_dir = dir.path().join("split");
    let (ok, text, split) = train_tiny(&split_dir, "dcgan", &steps("2"));
    assert!(ok, "{text}");
    let resume = ["--resume", split.to_str().unwrap()];
    let checkpoint = split.join("checkpoint.safetensors");
    let before = std::fs::read(&checkpoint).unwrap();
    // A defining flag with another value is refused, naming both values, and changes nothing.
    for (flag, value, started) in [
        ("--lr", "0.001", "0.0005"),
        ("--loop", "keras-tf2", "torch"),
        ("--dataset", "fashion-mnist", "mnist"),
    ] {
        let (ok, text, _) =
            train_tiny(&split_dir, "dcgan", &[&resume[..], &[flag, value]].concat());
        let (given, saved) = (format!("{flag} {value}"), format!("{flag} {started}"));
        assert!(
            !ok && text.contains(&given) && text.contains(&saved),
            "{text}"
        );
    }
    assert_eq!(std::fs::read(&checkpoint).unwrap(), before);
    // Without them the run goes on as it started; --steps may change.
    let (ok, text, _) = train_tiny(
        &split_dir,
        "dcgan",
        &[&resume[..], &["--steps", "4"]].concat(),
    );
    assert!(ok, "{text}");
    assert_eq!(logged_values(&straight), logged_values(&split));
}

#[test]
fn cgan_trains_and_samples_a_chosen_digit() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text, out) = train_tiny(dir.path(), "cgan", &["--steps", "2", "--sample-every", "2"]);
    assert!(ok, "{text}");
    // One row per class: 10 rows of 5 28x28 images at scale 2 with 2-pixel gaps.
    assert_eq!(png_size(&out.join("samples/step_0000002.png")), (292, 582));
    let ckpt = out.join("checkpoint.safetensors");
    let all = dir.path().join("all.png");
    let (ok, text) = ganlab(&[
        "sample",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--n",
        "20",
        "--device",
        "cpu",
        "--out",
        all.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    assert_eq!(png_size(&all), (2 * 56 + 3 * 2, 582));
    let grid = dir.path().join("sevens.png");
    let (ok, text) = ganlab(&[
        "sample",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--label",
        "7",
        "--n",
        "10",
        "--device",
        "cpu",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert!(ok && grid.exists(), "{text}");
    for (label, want) in [("10", "classes are 0-9"), ("x", "invalid")] {
        let (ok, text) = ganlab(&[
            "sample",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--label",
            label,
            "--device",
            "cpu",
        ]);
        assert!(!ok && text.contains(want), "--label {label}: {text}");
    }
}

#[test]
fn wgan_and_wgan_gp_log_and_plot_the_critic() {
    let dir = tempfile::tempdir().unwrap();
    for (model, columns) in [
        ("wgan", "step,wall_s,critic_loss,g_loss,w_distance"),
        ("wgan-gp", "step,wall_s,critic_loss,gp,g_loss,w_distance"),
    ] {
        let (ok, text, out) = train_tiny(dir.path(), model, &["--steps", "3"]);
        assert!(ok, "{model}: {text}");
        let log = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert!(log.starts_with(columns), "{model}: {log}");
        assert_eq!(log.lines().count(), 4, "{model}: {log}");
        assert!(out.join("losses.png").exists() && out.join("samples/step_0000003.png").exists());
        // One step, then resumed to three: the same values as straight through (the five
        // critic batches of each step come from the resumed batch sequence).
        let split = dir.path().join("split");
        let (ok, text, part) = train_tiny(&split, model, &["--steps", "1"]);
        assert!(ok, "{model}: {text}");
        let resume = ["--resume", part.to_str().unwrap(), "--steps", "3"];
        let (ok, text, _) = train_tiny(&split, model, &resume);
        assert!(ok, "{model}: {text}");
        assert_eq!(logged_values(&out), logged_values(&part), "{model}");
        // The checkpoint loads as its own kind for sampling.
        let grid = dir.path().join(format!("{model}.png"));
        let (ok, text) = sample_to(
            out.join("checkpoint.safetensors").to_str().unwrap(),
            grid.to_str().unwrap(),
        );
        assert!(ok && grid.exists(), "{model}: {text}");
    }
}

#[test]
fn toy_runs_plot_samples_against_the_data_and_count_modes() {
    let dir = tempfile::tempdir().unwrap();
    for data in ["toy-bimodal", "toy-ring"] {
        let out = dir.path().join(data);
        let (ok, text) = ganlab(&[
            "train",
            "gan",
            "--dataset",
            data,
            "--steps",
            "4",
            "--sample-every",
            "2",
            "--quiet",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{data}: {text}");
        assert!(text.contains("modes covered:"), "{text}");
        for f in [
            "samples/toy_step_0000002.png",
            "samples/toy_step_0000004.png",
        ] {
            assert!(out.join(f).exists(), "{data}: {f} missing");
        }
        assert!(
            !out.join("samples/step_0000004.png").exists(),
            "no image grid for points"
        );
        let log = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        let header = log.lines().next().unwrap();
        assert!(header.ends_with("modes_covered,high_quality"), "{header}");
        // Sampling a toy checkpoint as an image grid is refused with a pointer to the plots.
        let (ok, text) = ganlab(&[
            "sample",
            "--checkpoint",
            out.join("checkpoint.safetensors").to_str().unwrap(),
            "--device",
            "cpu",
        ]);
        assert!(!ok && text.contains("toy_"), "{text}");
    }
    // Models without a toy version say which have one.
    let (ok, text) = ganlab(&["train", "dcgan", "--dataset", "toy-ring", "--steps", "1"]);
    assert!(!ok && text.contains("gan, wgan or wgan-gp"), "{text}");
}

#[test]
fn progan_grows_resumes_mid_fade_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    // 16 images per phase at batch 4: 4 steps per phase, 28 in all; step 6 is mid-fade of 8x8.
    let tiny = [
        "--phase-images",
        "16",
        "--width",
        "8",
        "--sample-every",
        "2",
    ];
    let (ok, text, straight) = train_tiny(dir.path(), "progan", &tiny);
    assert!(ok, "{text}");
    let (ok, text, split) = train_tiny(
        &dir.path().join("split"),
        "progan",
        &[&tiny[..], &["--steps", "6"]].concat(),
    );
    assert!(ok, "{text}");
    // The resumed run takes its schedule and widths from the checkpoint (the flags are left
    // out); its length was 6 steps, so it is given the whole schedule's 28.
    let resume = ["--resume", split.to_str().unwrap(), "--steps", "28"];
    let (ok, text, _) = train_tiny(&dir.path().join("split"), "progan", &resume);
    assert!(ok, "{text}");
    // Every logged value but the wall time agrees with the straight run, mid-fade included.
    let (a, b) = (logged_values(&straight), logged_values(&split));
    assert_eq!(a.len(), 29, "{a:?}");
    assert_eq!(a, b);
    assert!(a[0].ends_with("resolution,alpha"), "{}", a[0]);
    // Step 6 is halfway through the 8x8 fade (alpha counts images before the step: 4 of 16).
    assert!(a[6].ends_with(",8.000000,0.250000"), "{}", a[6]);
    assert!(a[28].ends_with(",32.000000,1.000000"), "{}", a[28]);
    // Every grid is 32x32 images upscaled from the phase's resolution.
    assert_eq!(
        png_size(&split.join("samples/step_0000002.png")),
        png_size(&split.join("samples/step_0000028.png"))
    );
    let grid = dir.path().join("pg.png");
    let (ok, text) = sample_to(
        split.join("checkpoint.safetensors").to_str().unwrap(),
        grid.to_str().unwrap(),
    );
    assert!(ok && grid.exists(), "{text}");
}

#[test]
fn a_second_run_into_the_same_folder_is_refused_unless_told_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text, out) = train_tiny(dir.path(), "gan", &["--steps", "2"]);
    assert!(ok, "{text}");
    let mine = out.join("notes.txt");
    std::fs::write(&mine, "kept").unwrap();
    let files = ["checkpoint.safetensors", "metrics.csv", "losses.png"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    // Refused, saying how to go on, and nothing of the first run changes.
    let (ok, text, _) = train_tiny(dir.path(), "gan", &["--steps", "3"]);
    assert!(
        !ok && text.contains("already holds a run") && text.contains("--resume"),
        "{text}"
    );
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
    // --overwrite starts over: the old run's files go, anything else stays.
    let (ok, text, _) = train_tiny(dir.path(), "gan", &["--steps", "3", "--overwrite"]);
    assert!(ok, "{text}");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics.lines().count(),
        4,
        "a header and steps 1-3 only: {metrics}"
    );
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "kept");
}

#[test]
fn a_batch_size_of_zero_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (ok, text) = ganlab(&[
        "train",
        "gan",
        "--data-dir",
        TINY,
        "--device",
        "cpu",
        "--quiet",
        "--steps",
        "1",
        "--batch-size",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("--batch-size 0") && !text.contains("panicked"),
        "{text}"
    );
    assert!(!out.join("checkpoint.safetensors").exists());
}

#[cfg(unix)]
#[test]
fn sigterm_and_sighup_checkpoint_then_exit_with_128_plus_the_signal() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    for (signal, number) in [("TERM", 15), ("HUP", 1), ("INT", 2)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let child = Command::new(env!("CARGO_BIN_EXE_ganlab"))
            .args([
                "train",
                "gan",
                "--data-dir",
                common::TINY,
                "--device",
                "cpu",
                "--quiet",
            ])
            .args([
                "--batch-size",
                "4",
                "--log-every",
                "1",
                "--steps",
                "1000000000",
            ])
            .args(["--out", out.to_str().unwrap()])
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until it has trained a few steps.
        let start = Instant::now();
        let metrics = out.join("metrics.csv");
        while std::fs::read_to_string(&metrics).map_or(0, |m| m.lines().count()) < 4 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no training progress"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success());
        let status = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert_eq!(
            status.status.code(),
            Some(128 + number),
            "SIG{signal}: {stderr}"
        );
        assert!(stderr.contains("saving a checkpoint"), "{stderr}");
        // The checkpoint it left loads.
        let grid = dir.path().join("grid.png");
        let checkpoint = out.join("checkpoint.safetensors");
        let (ok, text) = ganlab(&[
            "sample",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
            "--out",
            grid.to_str().unwrap(),
        ]);
        assert!(ok && grid.exists(), "{text}");
    }
}

#[test]
fn degenerate_counts_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("none.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let out = dir.path().join("out.png");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["sample", "--checkpoint", ckpt, "--n", "0", "--out", out],
            "--n",
        ),
        (
            &[
                "interpolate",
                "--checkpoint",
                ckpt,
                "--from",
                "1",
                "--to",
                "2",
                "--steps",
                "1",
            ],
            "--steps",
        ),
        (
            &[
                "arithmetic",
                "--checkpoint",
                ckpt,
                "--grid-seed",
                "1",
                "--a",
                "1,2",
                "--b",
                "3,4,5",
                "--c",
                "6,7,8",
            ],
            "three grid indices",
        ),
        (
            &[
                "arithmetic",
                "--checkpoint",
                ckpt,
                "--grid-seed",
                "1",
                "--a",
                "1,2,3,4",
                "--b",
                "3,4,5",
                "--c",
                "6,7,8",
            ],
            "three grid indices",
        ),
        (&["train", "gan", "--sample-every", "0"], "--sample-every"),
        (
            &["train", "gan", "--checkpoint-every", "0"],
            "--checkpoint-every",
        ),
        (&["train", "gan", "--log-every", "0"], "--log-every"),
    ];
    for (args, want) in cases {
        let (ok, text) = ganlab(args);
        assert!(
            !ok && text.contains(want) && !text.contains("panicked"),
            "{args:?}: {text}"
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Whether a PNG holds colour (some pixel whose channels differ).
fn png_in_colour(path: &Path) -> bool {
    let img = image::open(path).unwrap().to_rgb8();
    img.pixels().any(|p| p[0] != p[1] || p[1] != p[2])
}

#[test]
fn dcgan64_trains_on_a_folder_of_shapes_and_its_colour_images_sample() {
    let dir = tempfile::tempdir().unwrap();
    let shapes = dir.path().join("shapes");
    let (shapes_s, cache) = (shapes.to_str().unwrap(), dir.path().join("cache"));
    let (ok, text) = ganlab(&["data", "shapes", shapes_s, "--count", "12"]);
    assert!(ok && text.contains("wrote 12 images"), "{text}");
    let out = dir.path().join("run");
    // The decoded cache goes into the test's folder, not the user's.
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ganlab"))
            .args(args)
            .env("XDG_CACHE_HOME", &cache)
            .env("XDG_RUNTIME_DIR", std::env::temp_dir())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let train = |extra: &[&str]| {
        let dcgan64 = [
            "train",
            "dcgan64",
            "--dataset",
            "folder",
            "--data-dir",
            shapes_s,
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--ngf",
            "8",
            "--ndf",
            "8",
            "--quiet",
            "--device",
            "cpu",
        ];
        run(&[&dcgan64[..], extra].concat())
    };
    let (ok, text) = train(&["--image-size", "32", "--out", out.to_str().unwrap()]);
    assert!(ok, "{text}");
    assert!(text.contains("12 images, decoded"), "{text}");
    assert!(text.contains("data loading:"), "{text}");
    let grid = out.join("samples/step_0000002.png");
    assert_eq!(
        png_size(&grid),
        (5 * 66 + 2, 5 * 66 + 2),
        "32x32 tiles at scale 2"
    );
    assert!(png_in_colour(&grid));

    let ckpt = out.join("checkpoint.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let sample = dir.path().join("sample.png");
    let (ok, text) = ganlab(&[
        "sample",
        "--checkpoint",
        ckpt,
        "--n",
        "4",
        "--out",
        sample.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok, "{text}");
    assert!(png_in_colour(&sample));
    let interp = dir.path().join("interp.png");
    let (ok, text) = ganlab(&[
        "interpolate",
        "--checkpoint",
        ckpt,
        "--from",
        "1",
        "--to",
        "2",
        "--steps",
        "5",
        "--out",
        interp.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok && png_in_colour(&interp), "{text}");
    let arith = dir.path().join("arith.png");
    let (ok, text) = ganlab(&[
        "arithmetic",
        "--checkpoint",
        ckpt,
        "--grid-seed",
        "3",
        "--a",
        "0,1,2",
        "--b",
        "3,4,5",
        "--c",
        "6,7,8",
        "--out",
        arith.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(ok && png_in_colour(&arith), "{text}");
    // 4x4 tiles of 32x32 at scale 2.
    assert_eq!(png_size(&arith), (4 * 66 + 2, 4 * 66 + 2));
    // IS and FID need the MNIST-family classifier: said plainly, not attempted.
    let (ok, text) = ganlab(&["eval", "--checkpoint", ckpt, "--device", "cpu"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("3x32x32") && text.contains("not scored"),
        "{text}"
    );
    let (ok, text) = ganlab(&["eval", "--dataset", "cifar10", "--checkpoint", ckpt]);
    assert!(
        !ok && text.contains("cifar10 images are not scored"),
        "{text}"
    );

    // A folder run resumes from its own folder, without --data-dir.
    let out_s = out.to_str().unwrap();
    let (ok, text) = run(&[
        "train", "dcgan64", "--resume", out_s, "--steps", "3", "--quiet", "--device", "cpu",
    ]);
    assert!(ok, "{text}");
    assert!(out.join("samples/step_0000003.png").exists(), "{text}");

    // The second run reads the decoded cache; a model that cannot draw 64x64 says what to use.
    let again = dir.path().join("again");
    let (ok, text) = train(&["--image-size", "32", "--out", again.to_str().unwrap()]);
    assert!(ok && text.contains("from the decoded cache"), "{text}");
    let (ok, text) = run(&[
        "train",
        "dcgan",
        "--dataset",
        "folder",
        "--data-dir",
        shapes_s,
        "--device",
        "cpu",
        "--out",
        dir.path().join("book").to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("--image-size 28"), "{text}");
    // The shapes' three classes are not the conditional GAN's ten.
    let (ok, text) = run(&[
        "train",
        "cgan",
        "--dataset",
        "folder",
        "--data-dir",
        shapes_s,
        "--image-size",
        "28",
        "--device",
        "cpu",
        "--out",
        dir.path().join("cgan").to_str().unwrap(),
    ]);
    assert!(
        !ok && text.contains("has 3 (circle, square, triangle)"),
        "{text}"
    );
}
