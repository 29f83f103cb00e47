//! Layers the models are written in. A module owns its parameters (leaf tensors that
//! optimisers update in place) and buffers (running statistics), names them with stable
//! dotted paths, and runs in one of three modes.

mod basic;
mod conv;
pub mod init;
mod linear;
mod norm;
mod sequential;

pub use basic::{Activation, Dropout, Flatten, Reshape, Upsample, ZeroPad};
pub use conv::Conv2d;
pub use linear::Linear;
pub use norm::BatchNorm;
pub use sequential::Sequential;

use crate::{Result, Tensor};

/// How a forward pass behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics (and running-statistic updates), dropout active.
    Train,
    /// Running statistics, no dropout (Keras `predict`).
    Eval,
    /// Keras' frozen model inside a combined model (`trainable = False`): batch norm uses
    /// and keeps its running statistics, dropout stays active. Gradients still flow through
    /// to the inputs; the caller does not update the frozen parameters.
    Frozen,
}

/// Per-forward state: the mode and the dropout randomness (a seed and a counter, so every
/// dropout call of a run draws a different, reproducible mask).
#[derive(Clone, Debug)]
pub struct Ctx {
    pub mode: Mode,
    pub seed: u64,
    pub counter: u32,
}

impl Ctx {
    pub fn new(mode: Mode, seed: u64) -> Self {
        Ctx {
            mode,
            seed,
            counter: 0,
        }
    }

    pub(crate) fn next_dropout_offset(&mut self) -> u32 {
        self.counter = self.counter.wrapping_add(1);
        self.counter
    }
}

/// Whether a named tensor is learned or a running statistic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Parameter,
    Buffer,
}

pub trait Module {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor>;

    /// Calls `f` with the dotted name, tensor and kind of every parameter and buffer, in a
    /// fixed order. Leaf layers report their own names under `prefix`.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(String, &Tensor, Kind));
}

/// `prefix.name`, or `name` at the top.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Every (name, tensor, kind) of a module.
pub fn named_tensors(m: &dyn Module, prefix: &str) -> Vec<(String, Tensor, Kind)> {
    let mut out = Vec::new();
    m.visit(prefix, &mut |name, t, kind| {
        out.push((name, t.clone(), kind))
    });
    out
}

/// The learnable parameters of a module, in visiting order.
pub fn parameters(m: &dyn Module) -> Vec<Tensor> {
    named_tensors(m, "")
        .into_iter()
        .filter(|(_, _, k)| *k == Kind::Parameter)
        .map(|(_, t, _)| t)
        .collect()
}
