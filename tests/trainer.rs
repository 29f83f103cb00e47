//! The training loop's contract, with a scripted model: a non-finite loss stops the run naming
//! the step and keeps the last good checkpoint; Ctrl-C checkpoints and stops cleanly.

use ganlab::data::{Sampling, Split, Values};
use ganlab::models::{RunState, Trainable};
use ganlab::train::{interrupt, train, TrainConfig};
use ganlab::{Device, Result, Rng, Tensor};
use std::path::Path;

/// Reports `loss = step` until `nan_at`, and asks for an interrupt at `interrupt_at`.
struct Scripted {
    step: u64,
    nan_at: Option<u64>,
    interrupt_at: Option<u64>,
}

impl Trainable for Scripted {
    fn metric_names(&self) -> Vec<&'static str> {
        vec!["loss"]
    }
    fn train_step(&mut self, real: &Tensor, _: &[usize], _: &mut Rng) -> Result<Vec<Tensor>> {
        assert_eq!(real.shape(), [2, 1, 28, 28]);
        self.step += 1;
        if Some(self.step) == self.interrupt_at {
            interrupt::set_requested(true);
        }
        let v = if Some(self.step) == self.nan_at {
            f32::NAN
        } else {
            self.step as f32
        };
        Ok(vec![Tensor::scalar(v, &Device::Cpu)?])
    }
    fn sample(&mut self, z: &Tensor, _: Option<&[usize]>) -> Result<Tensor> {
        Tensor::zeros(&[z.shape()[0], 1, 28, 28], &Device::Cpu)
    }
    fn z_dim(&self) -> usize {
        4
    }
    fn set_learning_rate(&mut self, _: f32) -> Result<()> {
        Ok(())
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn save_checkpoint(&self, path: &Path, state: &RunState) -> Result<()> {
        std::fs::write(path, state.step.to_string())
            .map_err(|e| ganlab::Error::Invalid(e.to_string()))
    }
    fn load_checkpoint(&mut self, path: &Path) -> Result<RunState> {
        let step = std::fs::read_to_string(path).unwrap().parse().unwrap();
        self.step = step;
        Ok(RunState {
            step,
            rng: Rng::seed(0).state(),
            ..RunState::default()
        })
    }
}

fn config(dir: &Path, steps: u64) -> TrainConfig {
    TrainConfig {
        steps,
        batch_size: 2,
        sample_every: 100,
        checkpoint_every: 2,
        log_every: 1,
        seed: 0,
        out_dir: dir.to_path_buf(),
        resume: false,
        sampling: Sampling::WithReplacement,
        progress: false,
        eval_every: 0,
        settings: String::new(),
    }
}

fn data() -> Split {
    Split {
        values: Values::Floats(vec![0.0; 5 * 784]),
        labels: vec![0; 5],
        n: 5,
        item_shape: vec![1, 28, 28],
    }
}

// One test, so the process-wide interrupt flag is not shared between concurrent tests.
#[test]
fn nan_stops_with_the_step_and_interrupt_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Scripted {
        step: 0,
        nan_at: Some(5),
        interrupt_at: None,
    };
    let err = train(&mut model, &data(), &config(dir.path(), 10))
        .err()
        .expect("NaN must stop the run")
        .to_string();
    assert!(err.contains("step 5") && err.contains("loss"), "{err}");
    // The checkpoint is the last good one (step 4), not one with the NaN.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("checkpoint.safetensors")).unwrap(),
        "4"
    );

    // Before the first checkpoint: the message does not name one that does not exist.
    let dir = tempfile::tempdir().unwrap();
    let mut model = Scripted {
        step: 0,
        nan_at: Some(1),
        interrupt_at: None,
    };
    let err = train(&mut model, &data(), &config(dir.path(), 10))
        .err()
        .expect("NaN must stop the run")
        .to_string();
    assert!(err.contains("No checkpoint was written"), "{err}");
    assert!(!dir.path().join("checkpoint.safetensors").exists());

    let dir = tempfile::tempdir().unwrap();
    let mut model = Scripted {
        step: 0,
        nan_at: None,
        interrupt_at: Some(3),
    };
    let summary = train(&mut model, &data(), &config(dir.path(), 10)).unwrap();
    interrupt::set_requested(false);
    assert!(summary.interrupted);
    assert_eq!(summary.last_step, 3);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("checkpoint.safetensors")).unwrap(),
        "3"
    );
    assert!(dir.path().join("losses.png").exists());
}
