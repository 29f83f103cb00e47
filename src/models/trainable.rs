//! What the training loop needs from a model, declared with the models so that they do not
//! reach up into `train`: the step, sampling, checkpoints, and where a run stands.

use crate::{Device, Result, Rng, Tensor};
use std::path::Path;

/// Classes a conditional model draws (the digits, the garments).
pub const CLASSES: usize = 10;

/// Where a run stands; saved in every checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunState {
    pub step: u64,
    /// The run's generator state (`Rng::state`).
    pub rng: [u64; 7],
    /// Seconds of training before this process (so wall time continues across resumes).
    pub wall_s: f64,
    /// What the run was started with (`TrainConfig::settings`), kept for its resumes.
    pub settings: String,
}

/// What the loop needs from a model.
pub trait Trainable {
    /// Names of the scalars `train_step` returns, in order (e.g. d_loss, d_acc, g_loss).
    fn metric_names(&self) -> Vec<&'static str>;
    /// One training iteration on a real batch. Returns the metrics as 0-dim tensors on the
    /// model's device, so the loop decides when to wait for them.
    fn train_step(&mut self, real: &Tensor, labels: &[usize], rng: &mut Rng)
        -> Result<Vec<Tensor>>;
    /// Generator output for noise `z` (and class labels, for conditional models), in
    /// inference mode.
    fn sample(&mut self, z: &Tensor, labels: Option<&[usize]>) -> Result<Tensor>;
    fn z_dim(&self) -> usize;
    /// Real batches one `train_step` consumes (WGAN's critic takes a fresh batch for each of
    /// its n_critic steps): the loop hands them over stacked, `batches_per_step * batch_size`.
    fn batches_per_step(&self) -> usize {
        1
    }
    fn is_conditional(&self) -> bool {
        false
    }
    /// Sets both networks' learning rate (the CLI's `--lr`), recorded in checkpoints' config.
    fn set_learning_rate(&mut self, lr: f32) -> Result<()>;
    fn device(&self) -> Device;
    /// Writes every parameter, buffer and optimiser state with `state` (atomically).
    fn save_checkpoint(&self, path: &Path, state: &RunState) -> Result<()>;
    /// Restores what `save_checkpoint` wrote.
    fn load_checkpoint(&mut self, path: &Path) -> Result<RunState>;
}
