//! Checkpoints: a round trip restores every parameter, buffer, optimiser state, step counter,
//! generator state and dropout counter; training resumed in a new process is bit-for-bit the
//! uninterrupted run; mismatches are reported in full; damaged or foreign files are refused
//! with an error, never a panic.

mod common;

use ganlab::checkpoint::{Checkpoint, Targets};
use ganlab::nn::{Activation, BatchNorm, Ctx, Dropout, Layer, Linear, Module, Sequential};
use ganlab::optim::{Adam, Optimizer};
use ganlab::{Device, Rng, Tensor};
use std::path::Path;
use std::process::Command;

/// Everything a training run carries from step to step.
struct Run {
    net: Sequential,
    opt: Optimizer<Adam>,
    rng: Rng,
    ctx: Ctx,
}

/// A fresh run; `seed` picks the initial weights, the data stream and the dropout stream, so
/// a run built from another seed only matches after a restore.
fn build(seed: u64, device: &Device) -> Run {
    let mut rng = Rng::seed(seed);
    let net = Sequential::new()
        .layer(Linear::new(5, 16, &mut rng, device).unwrap())
        .layer(BatchNorm::new(16, device).unwrap().momentum(0.8))
        .layer(Activation::LeakyRelu(0.2))
        .layer(Dropout::new(0.25).unwrap())
        .layer(Linear::new(16, 1, &mut rng, device).unwrap())
        .layer(Activation::Tanh);
    let rule = Adam {
        beta1: 0.5,
        ..Adam::default()
    };
    let opt = Optimizer::new(rule, 0.01, net.named_parameters("net")).unwrap();
    Run {
        net,
        opt,
        rng,
        ctx: Ctx::new(seed ^ 0xD0),
    }
}

/// Steps on random batches drawn from the run's generator (target: tanh of the row mean).
fn train(run: &mut Run, steps: usize, device: &Device) {
    for _ in 0..steps {
        let x = Tensor::randn(&[8, 5], 0.0, 1.0, &mut run.rng, device).unwrap();
        let y = x.mean(&[1], true).unwrap().tanh().unwrap();
        let loss = run.net.forward(&x, &mut run.ctx).unwrap().mse(&y).unwrap();
        run.opt.zero_grad();
        loss.backward().unwrap();
        run.opt.step().unwrap();
    }
}

fn save(run: &Run, path: &Path) {
    let mut ck = Checkpoint::new();
    ck.put("net", &run.net).unwrap();
    ck.put("opt", &run.opt).unwrap();
    ck.put("rng", &run.rng).unwrap();
    ck.put("ctx", &run.ctx).unwrap();
    ck.set_metadata("config", r#"{"model": "mlp", "steps": 6}"#)
        .unwrap();
    ck.save(path).unwrap();
}

fn restore(run: &mut Run, ck: &Checkpoint) -> ganlab::Result<()> {
    let mut targets = Targets::new();
    targets
        .add("net", &mut run.net)
        .add("opt", &mut run.opt)
        .add("rng", &mut run.rng)
        .add("ctx", &mut run.ctx);
    ck.restore(targets)
}

/// Every value a run holds, as bits, plus its eval-mode output on a fixed batch (which reads
/// the running statistics, so a buffer a module forgot to list still shows).
fn snapshot(run: &mut Run) -> Vec<(String, Vec<u64>)> {
    let bits = |t: &Tensor| {
        t.to_vec()
            .unwrap()
            .iter()
            .map(|v| u64::from(v.to_bits()))
            .collect()
    };
    let mut out: Vec<(String, Vec<u64>)> = run
        .net
        .named_parameters("net")
        .iter()
        .chain(&run.net.named_buffers("net"))
        .chain(&run.opt.named_state("opt").unwrap())
        .map(|(n, t)| (n.clone(), bits(t)))
        .collect();
    out.push(("opt.step".into(), vec![run.opt.steps()]));
    out.push(("rng".into(), run.rng.state().to_vec()));
    out.push(("ctx".into(), run.ctx.state().to_vec()));
    let device = run.net.parameters()[0].device();
    let probe = Tensor::randn(&[3, 5], 0.0, 1.0, &mut Rng::seed(99), &device).unwrap();
    run.net.set_training(false);
    let y = run.net.forward(&probe, &mut Ctx::new(0)).unwrap();
    run.net.set_training(true);
    out.push(("eval output".into(), bits(&y)));
    out
}

fn assert_same(a: &[(String, Vec<u64>)], b: &[(String, Vec<u64>)]) {
    assert_eq!(a.len(), b.len());
    for ((name, x), (other, y)) in a.iter().zip(b) {
        assert_eq!(name, other);
        assert_eq!(x, y, "{name} differs");
    }
}

const STEPS: usize = 6;
const CHILD: &str = "GANLAB_RESUME_CHILD_DIR";

/// N steps in one run equal N/2, save, load in a new process into freshly built objects, N/2
/// more: bit for bit on the CPU. The test binary re-runs itself as the second process.
#[test]
fn resume_in_a_new_process_is_bit_exact() {
    let cpu = Device::Cpu;
    if let Ok(dir) = std::env::var(CHILD) {
        let dir = Path::new(&dir);
        let mut run = build(999, &cpu);
        let ck = Checkpoint::load(dir.join("half.safetensors")).unwrap();
        restore(&mut run, &ck).unwrap();
        train(&mut run, STEPS / 2, &cpu);
        save(&run, &dir.join("resumed.safetensors"));
        return;
    }
    let mut whole = build(1, &cpu);
    train(&mut whole, STEPS, &cpu);

    let dir = tempfile::tempdir().unwrap();
    let mut half = build(1, &cpu);
    train(&mut half, STEPS / 2, &cpu);
    save(&half, &dir.path().join("half.safetensors"));
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "resume_in_a_new_process_is_bit_exact",
            "--exact",
            "--test-threads=1",
        ])
        .env(CHILD, dir.path())
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "the resuming process failed:\n{}{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );

    let mut resumed = build(2, &cpu);
    let ck = Checkpoint::load(dir.path().join("resumed.safetensors")).unwrap();
    restore(&mut resumed, &ck).unwrap();
    let (want, got) = (snapshot(&mut whole), snapshot(&mut resumed));
    assert_same(&got, &want);
    // Not vacuous: the second half changed everything the comparison covers.
    let at_half = snapshot(&mut half);
    for ((name, a), (_, b)) in at_half.iter().zip(&want) {
        if name != "eval output" {
            assert_ne!(a, b, "{name} did not change in the second half");
        }
    }
}

#[test]
fn a_round_trip_restores_everything_into_fresh_objects() {
    let cpu = Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let mut run = build(3, &cpu);
    train(&mut run, 2, &cpu);
    save(&run, &path);
    let mut fresh = build(4, &cpu);
    let ck = Checkpoint::load(&path).unwrap();
    restore(&mut fresh, &ck).unwrap();
    assert_same(&snapshot(&mut fresh), &snapshot(&mut run));
    assert_eq!(
        ck.metadata("config"),
        Some(r#"{"model": "mlp", "steps": 6}"#)
    );
    // The generator continues where the saved one was.
    assert_eq!(fresh.rng.next_u64(), run.rng.next_u64());
    // Every entry, sorted by name.
    assert_eq!(
        ck.names(),
        [
            "ctx",
            "net.0.bias",
            "net.0.weight",
            "net.1.bias",
            "net.1.running_mean",
            "net.1.running_var",
            "net.1.weight",
            "net.4.bias",
            "net.4.weight",
            "opt.net.0.bias.m",
            "opt.net.0.bias.v",
            "opt.net.0.weight.m",
            "opt.net.0.weight.v",
            "opt.net.1.bias.m",
            "opt.net.1.bias.v",
            "opt.net.1.weight.m",
            "opt.net.1.weight.v",
            "opt.net.4.bias.m",
            "opt.net.4.bias.v",
            "opt.net.4.weight.m",
            "opt.net.4.weight.v",
            "opt.step",
            "rng",
        ]
    );
}

#[test]
fn gpu_state_saves_and_restores_across_devices() {
    let Some(gpu) = common::gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpu.safetensors");
    let mut on_gpu = build(5, &gpu);
    train(&mut on_gpu, 2, &gpu);
    save(&on_gpu, &path);
    let ck = Checkpoint::load(&path).unwrap();
    let mut on_cpu = build(6, &Device::Cpu);
    restore(&mut on_cpu, &ck).unwrap();
    let mut back_on_gpu = build(7, &gpu);
    restore(&mut back_on_gpu, &ck).unwrap();
    let want = snapshot(&mut on_gpu);
    assert_same(&snapshot(&mut back_on_gpu), &want);
    // The CPU copy holds the same bits (its eval output comes from other kernels).
    let on_cpu = snapshot(&mut on_cpu);
    assert_same(&on_cpu[..on_cpu.len() - 1], &want[..want.len() - 1]);
}

/// The file is plain safetensors: any reader sees our names, dtypes, shapes and values.
#[test]
fn files_are_plain_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let run = build(8, &Device::Cpu);
    save(&run, &path);
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let w = st.tensor("net.0.weight").unwrap();
    assert_eq!(w.dtype(), safetensors::Dtype::F32);
    assert_eq!(w.shape(), [16, 5]);
    let values: Vec<f32> = w
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values, run.net.parameters()[0].to_vec().unwrap());
    let step = st.tensor("opt.step").unwrap();
    assert_eq!(
        (step.dtype(), step.shape()),
        (safetensors::Dtype::U64, &[1][..])
    );
}

#[test]
fn a_mismatch_lists_every_difference_and_restores_nothing() {
    let cpu = Device::Cpu;
    let mut rng = Rng::seed(1);
    let saved = Sequential::new()
        .layer(Linear::new(4, 8, &mut rng, &cpu).unwrap())
        .layer(BatchNorm::new(8, &cpu).unwrap())
        .layer(Linear::new(8, 2, &mut rng, &cpu).unwrap());
    let mut ck = Checkpoint::new();
    ck.put("d", &saved).unwrap();
    assert!(
        ck.remove("d.1.running_var"),
        "a buffer is missing from this checkpoint"
    );
    assert!(
        ck.put_u64s("d.2.bias", &[1, 2]).is_err(),
        "a name written twice"
    );
    ck.remove("d.2.bias");
    ck.put_u64s("d.2.bias", &[1, 2]).unwrap(); // a U64 where an F32 belongs
    ck.put_tensor("d.extra", &Tensor::zeros(&[3], &cpu).unwrap())
        .unwrap();

    let mut other = Sequential::new()
        .layer(Linear::new(4, 8, &mut rng, &cpu).unwrap())
        .layer(BatchNorm::new(8, &cpu).unwrap())
        .layer(Linear::new(8, 3, &mut rng, &cpu).unwrap());
    let before: Vec<Vec<f32>> = other
        .parameters()
        .iter()
        .map(|p| p.to_vec().unwrap())
        .collect();
    let bytes = ck.to_bytes().unwrap();
    let ck = Checkpoint::from_bytes(&bytes, "d.safetensors").unwrap();
    let mut targets = Targets::new();
    targets.add("d", &mut other);
    let msg = ck.restore(targets).unwrap_err().to_string();
    for want in [
        "d.safetensors does not match",
        "(4 differences)",
        "missing d.1.running_var (F32 [8])",
        "d.2.weight has shape [2, 8] in the file, [3, 8] expected",
        "d.2.bias is U64 in the file, F32 expected",
        "unexpected d.extra (F32 [3])",
    ] {
        assert!(msg.contains(want), "{want:?} not in:\n{msg}");
    }
    let after: Vec<Vec<f32>> = other
        .parameters()
        .iter()
        .map(|p| p.to_vec().unwrap())
        .collect();
    assert_eq!(before, after, "a failed restore wrote values");

    // Saving two modules under one name is refused.
    let mut dup = Checkpoint::new();
    dup.put("d", &saved).unwrap();
    assert!(dup
        .put("d", &saved)
        .unwrap_err()
        .to_string()
        .contains("twice"));
    assert!(dup.set_metadata("sha256", "x").is_err());
}

/// Saves a small checkpoint and returns its bytes.
fn small_file() -> Vec<u8> {
    let run = build(10, &Device::Cpu);
    let mut ck = Checkpoint::new();
    ck.put("net", &run.net).unwrap();
    ck.put("opt", &run.opt).unwrap();
    ck.set_metadata("config", "{}").unwrap();
    ck.to_bytes().unwrap()
}

/// A load that succeeds must also restore exactly the saved values.
fn load_is_refused(bytes: &[u8]) -> bool {
    let Ok(ck) = Checkpoint::from_bytes(bytes, "damaged") else {
        return true;
    };
    let mut run = build(11, &Device::Cpu);
    let mut targets = Targets::new();
    targets.add("net", &mut run.net).add("opt", &mut run.opt);
    ck.restore(targets).is_err()
}

#[test]
fn truncated_and_corrupted_files_are_refused() {
    let bytes = small_file();
    assert!(!load_is_refused(&bytes), "the intact file must load");
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for cut in [
        0,
        1,
        7,
        8,
        9,
        header_end / 2,
        header_end - 1,
        header_end,
        header_end + 5,
        bytes.len() - 1,
    ] {
        let err = Checkpoint::from_bytes(&bytes[..cut], "cut")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cut:"), "truncated at {cut}: {err}");
    }
    // Every single-byte change anywhere, header or data, is refused (checksum, format checks).
    for mask in [0x01u8, 0xFF] {
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= mask;
            assert!(
                load_is_refused(&damaged),
                "flipping byte {i} with {mask:#x} went unnoticed"
            );
        }
    }
    let err = Checkpoint::from_bytes(&[0; 0], "empty")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a readable safetensors file"), "{err}");
}

#[test]
fn foreign_and_hostile_files_are_refused_without_panicking() {
    // A header claiming to be enormous.
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend(b"{}");
    assert!(Checkpoint::from_bytes(&huge, "huge").is_err());
    let mut big = 200_000_000u64.to_le_bytes().to_vec();
    big.extend(b"{}      ");
    assert!(Checkpoint::from_bytes(&big, "big").is_err());

    // Data offsets whose sum overflows a usize in the safetensors parser.
    let size = ((1u64 << 58) - 1) * 8;
    let entries: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#""t{i}":{{"dtype":"F64","shape":[{}],"data_offsets":[{},{}]}}"#,
                (1u64 << 58) - 1,
                size * i,
                size * (i + 1)
            )
        })
        .collect();
    let header = format!("{{{}}}", entries.join(","));
    let mut hostile = (header.len() as u64).to_le_bytes().to_vec();
    hostile.extend(header.as_bytes());
    let err = Checkpoint::from_bytes(&hostile, "hostile")
        .unwrap_err()
        .to_string();
    assert!(err.contains("past the end of the file"), "{err}");

    // A PNG image.
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, 2, 2);
        enc.set_color(png::ColorType::Grayscale);
        enc.write_header()
            .unwrap()
            .write_image_data(&[0, 255, 255, 0])
            .unwrap();
    }
    let err = Checkpoint::from_bytes(&png_bytes, "image.png")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("image.png: not a readable safetensors file"),
        "{err}"
    );

    // A safetensors file from elsewhere: it loads, and restoring says what differs.
    let data = vec![0u8; 16];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &data).unwrap();
    let foreign = safetensors::serialize([("model.weight", view)], None).unwrap();
    let ck = Checkpoint::from_bytes(&foreign, "foreign.safetensors").unwrap();
    let mut run = build(12, &Device::Cpu);
    let mut targets = Targets::new();
    targets.add("net", &mut run.net);
    let msg = ck.restore(targets).unwrap_err().to_string();
    for want in [
        "missing net.0.weight (F32 [16, 5])",
        "unexpected model.weight (F32 [2, 2])",
        "not written by ganlab",
    ] {
        assert!(msg.contains(want), "{want:?} not in:\n{msg}");
    }

    // A format from another version.
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "ganlab-checkpoint/9".to_string());
    meta.insert("sha256".to_string(), "0".to_string());
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 2], &data).unwrap();
    let future = safetensors::serialize([("w", view)], Some(meta)).unwrap();
    let err = Checkpoint::from_bytes(&future, "future")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ganlab-checkpoint/9"), "{err}");

    // A missing file is an I/O error naming it.
    let err = Checkpoint::load("/nonexistent/ck.safetensors")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/ck.safetensors"), "{err}");
}

#[test]
fn saving_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let mut first = build(13, &Device::Cpu);
    save(&first, &path);
    // A temporary file left by a crashed save does not get in the way.
    std::fs::write(
        dir.path()
            .join(format!(".ck.safetensors.tmp-{}", std::process::id())),
        b"junk",
    )
    .unwrap();
    train(&mut first, 1, &Device::Cpu);
    save(&first, &path);
    let mut loaded = build(14, &Device::Cpu);
    restore(&mut loaded, &Checkpoint::load(&path).unwrap()).unwrap();
    assert_same(&snapshot(&mut loaded), &snapshot(&mut first));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ck.safetensors"]);
    // A save that cannot happen leaves the previous file as it was.
    let before = std::fs::read(&path).unwrap();
    let ck = Checkpoint::new();
    assert!(ck
        .save(dir.path().join("missing-dir/ck.safetensors"))
        .is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}
