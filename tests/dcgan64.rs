//! The 64x64 DCGAN (and its 32x32 form): the PyTorch example's layer shapes and parameter
//! counts, its initialisation, GPU against CPU on the first steps, a checkpoint that rebuilds
//! the same networks, and a short run on generated shapes that learns.

mod common;

use common::{gpu, mean_var, rel_l2};
use ganlab::data::{self, shapes, ImageOptions, LoadOptions, Sampling};
use ganlab::models::Trainable;
use ganlab::models::{self, Options};
use ganlab::nn::{Layer, Module};
use ganlab::train::trainer::{train, TrainConfig};
use ganlab::{Device, Rng, Tensor};

fn options(image: [usize; 3], ngf: usize, ndf: usize) -> Options {
    Options {
        image,
        widths: (ngf, ndf),
        ..Options::default()
    }
}

fn count(net: &dyn Module) -> usize {
    net.parameters()
        .iter()
        .map(|p| p.shape().iter().product::<usize>())
        .sum()
}

#[test]
fn the_networks_have_the_pytorch_examples_shapes_and_parameter_counts() {
    let dev = Device::Cpu;
    let model = models::book_for(
        "dcgan64",
        &options([3, 64, 64], 64, 64),
        &mut Rng::seed(0),
        &dev,
    )
    .unwrap();
    // torch.nn's counts for the example's netG and netD (nz 100, ngf = ndf = 64, nc 3):
    // weights without biases plus BatchNorm's gamma and beta.
    let g = 100 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16 + 64 * 3 * 16;
    let g_norm = 2 * (512 + 256 + 128 + 64);
    assert_eq!(count(&model.generator), g + g_norm);
    assert_eq!(g + g_norm, 3_576_704);
    let d = 3 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 16;
    let d_norm = 2 * (128 + 256 + 512);
    assert_eq!(count(&model.discriminator), d + d_norm);
    assert_eq!(d + d_norm, 2_765_568);

    for (image, ngf) in [([3, 64, 64], 8), ([3, 32, 32], 8), ([1, 32, 32], 4)] {
        let mut model =
            models::book_for("dcgan64", &options(image, ngf, 8), &mut Rng::seed(1), &dev).unwrap();
        let z = Tensor::randn(&[2, 100], 0.0, 1.0, &mut Rng::seed(2), &dev).unwrap();
        let x = model.sample(&z, None).unwrap();
        assert_eq!(x.shape(), [2, image[0], image[1], image[2]]);
        assert!(x.to_vec().unwrap().iter().all(|v| v.abs() <= 1.0), "tanh");
        let mut ctx = ganlab::nn::Ctx::new(0);
        let logits = model.discriminator.forward(&x, &mut ctx).unwrap();
        assert_eq!(logits.shape(), [2, 1]);
    }
    // 32x32 drops G's 8·ngf block: 4·ngf channels from z.
    let small = models::book_for(
        "dcgan64",
        &options([3, 32, 32], 64, 64),
        &mut Rng::seed(0),
        &dev,
    )
    .unwrap();
    let first = small.generator.named_parameters("")[0].1.shape().to_vec();
    assert_eq!(first, [100, 256, 4, 4]);
}

#[test]
fn weights_are_normal_0_02_and_batch_norm_gamma_normal_1_0_02() {
    let model = models::book_for(
        "dcgan64",
        &options([3, 64, 64], 64, 64),
        &mut Rng::seed(3),
        &Device::Cpu,
    )
    .unwrap();
    let stats = |v: &[f32]| {
        let (mean, var) = mean_var(v);
        (mean, var.sqrt())
    };
    for (name, p) in model
        .generator
        .named_parameters("g")
        .into_iter()
        .chain(model.discriminator.named_parameters("d"))
    {
        let (mean, std) = stats(&p.to_vec().unwrap());
        if name.ends_with(".weight") && p.shape().len() == 4 {
            assert!(
                mean.abs() < 0.01 && (std - 0.02).abs() < 0.003,
                "{name}: {mean} {std}"
            );
        } else if name.contains(".bn") && name.ends_with(".weight") {
            assert!(
                (mean - 1.0).abs() < 0.01 && (std - 0.02).abs() < 0.01,
                "{name}: {mean} {std}"
            );
        } else {
            assert!(name.ends_with(".bias"), "{name}: only BatchNorm has biases");
            assert_eq!((mean, std), (0.0, 0.0), "{name}");
        }
    }
}

#[test]
fn models_for_other_items_are_refused_with_what_to_use() {
    let dev = Device::Cpu;
    let err = |name: &str, image| {
        models::build(
            name,
            "folder",
            &options(image, 64, 64),
            &mut Rng::seed(0),
            &dev,
        )
        .err()
        .expect("refused")
        .to_string()
    };
    let e = err("dcgan64", [3, 28, 28]);
    assert!(e.contains("64x64 or 32x32"), "{e}");
    let e = err("dcgan", [3, 64, 64]);
    assert!(
        e.contains("--image-size 28") && e.contains("dcgan64"),
        "{e}"
    );
    let e = err("wgan", [3, 28, 28]);
    assert!(e.contains("1x28x28"), "{e}");
    // The book's dcgan draws colour at 28x28; cgan, an MLP, also CIFAR-10's 3x32x32.
    for (name, image) in [
        ("dcgan", [3, 28, 28]),
        ("cgan", [3, 28, 28]),
        ("cgan", [3, 32, 32]),
    ] {
        let mut m = models::build(
            name,
            "folder",
            &options(image, 64, 64),
            &mut Rng::seed(0),
            &dev,
        )
        .unwrap();
        let z = Tensor::randn(&[2, 100], 0.0, 1.0, &mut Rng::seed(2), &dev).unwrap();
        let labels = [1, 2];
        let x = m
            .sample(&z, m.is_conditional().then_some(&labels[..]))
            .unwrap();
        assert_eq!(x.shape(), [2, image[0], image[1], image[2]], "{name}");
    }
}

#[test]
fn gpu_and_cpu_agree_on_the_first_steps() {
    let Some(gpu) = gpu() else { return };
    let run = |device: &Device| -> Vec<f32> {
        let mut model = models::book_for(
            "dcgan64",
            &options([3, 32, 32], 8, 8),
            &mut Rng::seed(5),
            device,
        )
        .unwrap();
        let mut rng = Rng::seed(6);
        let mut out = Vec::new();
        for _ in 0..2 {
            let real = Tensor::rand_uniform(&[4, 3, 32, 32], -1.0, 1.0, &mut rng, device).unwrap();
            for m in model.train_step(&real, &[0; 4], &mut rng).unwrap() {
                out.push(m.item().unwrap());
            }
        }
        let z = Tensor::randn(&[2, 100], 0.0, 1.0, &mut Rng::seed(7), device).unwrap();
        out.extend(model.sample(&z, None).unwrap().to_vec().unwrap());
        out
    };
    let (c, g) = (run(&Device::Cpu), run(&gpu));
    let err = rel_l2(&g, &c);
    assert!(
        err < 1e-3,
        "GPU {:?} vs CPU {:?} (rel {err:e})",
        &g[..6],
        &c[..6]
    );
}

fn config(dir: &std::path::Path, steps: u64, sample_every: u64) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 16,
        sample_every,
        checkpoint_every: steps,
        log_every: 1,
        seed: 0,
        out_dir: dir.to_path_buf(),
        resume: false,
        sampling: Sampling::EpochShuffle,
        progress: false,
        eval_every: 0,
        settings: String::new(),
    }
}

/// (step, d_loss) rows of a run's metrics.csv.
fn d_losses(dir: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|&h| h == "d_loss").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_short_run_on_generated_shapes_learns_and_its_checkpoint_reloads() {
    let (images, cache, out) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    shapes::write_folder(images.path(), 96, 24, 4).unwrap();
    let opts = LoadOptions {
        data_dir: Some(images.path().to_owned()),
        cache_dir: Some(cache.path().to_owned()),
        images: ImageOptions {
            size: 32,
            channels: 3,
        },
        ..LoadOptions::default()
    };
    let ds = data::load("folder", &opts).unwrap();
    assert_eq!(ds.train.n, 96);
    let model_opts = options([3, 32, 32], 16, 16);
    let mut model = models::build(
        "dcgan64",
        "folder",
        &model_opts,
        &mut Rng::seed(0),
        &Device::Cpu,
    )
    .unwrap();
    let summary = train(&mut *model, &ds.train, &config(out.path(), 40, 20)).unwrap();
    assert_eq!(summary.steps_run, 40);
    // Batches are copied out of memory: far under 5% of a step (issue 16's bound).
    assert!(
        summary.data_s < 0.05 * summary.wall_s,
        "data loading {} s of {} s",
        summary.data_s,
        summary.wall_s
    );

    // D's loss leaves its start (ln 2 per term, the mean of two): D learns to tell them apart.
    let losses = d_losses(out.path());
    let start = losses[0];
    let end = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!((0.5..0.9).contains(&start), "first d_loss {start}");
    assert!(
        (end - start).abs() > 0.15,
        "d_loss {start} -> {end}: {losses:?}"
    );

    // The grids are colour, and G's drawing changed between step 20 and 40.
    let grid = |step: u64| {
        image::open(
            out.path()
                .join("samples")
                .join(format!("step_{step:07}.png")),
        )
        .unwrap()
        .to_rgb8()
    };
    let (a, b) = (grid(20), grid(40));
    assert!(
        a.pixels().any(|p| p[0] != p[1] || p[1] != p[2]),
        "a grey grid"
    );
    let diff = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    assert!(diff > 3.0, "grids barely changed: mean |diff| {diff}");

    // The checkpoint rebuilds the same 32x32, width-16 networks and draws the same images.
    let mut loaded = models::load(&summary.checkpoint, &Device::Cpu).unwrap();
    let z = Tensor::randn(&[3, 100], 0.0, 1.0, &mut Rng::seed(9), &Device::Cpu).unwrap();
    assert_eq!(
        loaded.sample(&z, None).unwrap().to_vec().unwrap(),
        model.sample(&z, None).unwrap().to_vec().unwrap()
    );
}

#[test]
fn the_torch_loop_runs_g_forward_once_a_step_as_the_example_does() {
    let dev = Device::Cpu;
    let opts = options([3, 32, 32], 8, 8);
    let mut stepped = models::book_for("dcgan64", &opts, &mut Rng::seed(1), &dev).unwrap();
    let once = models::book_for("dcgan64", &opts, &mut Rng::seed(1), &dev).unwrap();
    let real = Tensor::rand_uniform(&[4, 3, 32, 32], -1.0, 1.0, &mut Rng::seed(3), &dev).unwrap();
    stepped
        .train_step(&real, &[0; 4], &mut Rng::seed(2))
        .unwrap();
    // The step's noise is its first draw; one training-mode forward on it moves G's batch-norm
    // statistics exactly as far as the step did (a second forward would move them again).
    let z = Tensor::randn(&[4, 100], 0.0, 1.0, &mut Rng::seed(2), &dev).unwrap();
    once.generator
        .forward(&z, &mut ganlab::nn::Ctx::new(0))
        .unwrap();
    let running = |net: &ganlab::models::net::Net| {
        let mut out = Vec::new();
        net.visit_state("g", &mut |name, _, t| {
            if name.contains("running") {
                out.push((name, t.to_vec().unwrap()));
            }
        });
        out
    };
    let (a, b) = (running(&stepped.generator), running(&once.generator));
    assert_eq!(a.len(), 6, "three batch norms at 32x32");
    assert_eq!(a, b);
}
