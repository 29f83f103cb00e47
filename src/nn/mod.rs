//! Layers the models are written in: Keras-compatible initialisers, train/eval mode, a frozen
//! mode for running D inside the generator step, and named parameters and buffers with stable
//! dotted names (`generator.block1.conv.weight`) for optimisers and checkpoints.
//!
//! Parameters are leaf tensors that require a gradient; optimisers update them in place, so a
//! module keeps its handles for its whole life.

mod activation;
mod conv;
mod dropout;
mod embedding;
pub mod init;
mod linear;
mod norm;
mod progan;
mod sequential;
mod shape;

pub use activation::Activation;
pub use conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use init::{WeightConfig, WeightInit};
pub use linear::Linear;
pub use norm::BatchNorm;
pub use progan::{MinibatchStdDev, PixelNorm};
pub use sequential::Sequential;
pub use shape::{AvgPool2d, Flatten, Reshape, Upsample, ZeroPad2d};

use crate::{Device, Result, Tensor};
use std::cell::Cell;

/// What a piece of module state is: learned by the optimiser, or a buffer such as batch
/// norm's running statistics (saved and restored, never given a gradient).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Parameter,
    Buffer,
}

/// What batch norm normalises with in a frozen module (Keras `trainable = False`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrozenNorm {
    /// TF2 Keras: a frozen batch-norm layer runs in inference mode, on its running statistics.
    Running,
    /// Keras 2.3 on TF1, which the book was written against: the training call's learning
    /// phase holds, so the batch statistics normalise; the running ones are left as they are.
    Batch,
}

/// How a module with mode-dependent behaviour (batch norm, dropout) runs.
#[derive(Debug)]
pub struct Mode {
    training: Cell<bool>,
    frozen: Cell<Option<FrozenNorm>>,
}

impl Default for Mode {
    /// Training, not frozen (as a freshly built Keras or PyTorch layer).
    fn default() -> Self {
        Mode {
            training: Cell::new(true),
            frozen: Cell::new(None),
        }
    }
}

impl Mode {
    pub fn is_training(&self) -> bool {
        self.training.get()
    }

    /// Keras `trainable = False`, and what batch norm does then; dropout is unaffected.
    pub fn frozen(&self) -> Option<FrozenNorm> {
        self.frozen.get()
    }
}

/// Anything with named state: a layer, a container, a whole model. Implementors list their
/// own parameters and buffers and their children; the walks over the tree are provided.
pub trait Module {
    /// This module's own parameters and buffers by local name (not its children's).
    fn own_state(&self) -> Vec<(&'static str, Role, &Tensor)> {
        Vec::new()
    }

    /// Sub-modules by local name.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// The mode flags of a module whose behaviour depends on them.
    fn mode(&self) -> Option<&Mode> {
        None
    }

    /// Calls `f` on every parameter and buffer of the tree with its dotted name under `prefix`.
    fn visit_state(&self, prefix: &str, f: &mut dyn FnMut(String, Role, &Tensor)) {
        for (name, role, t) in self.own_state() {
            f(join(prefix, name), role, t);
        }
        for (name, child) in self.children() {
            child.visit_state(&join(prefix, &name), f);
        }
    }

    /// Every parameter with its dotted name, in a stable order (definition order).
    fn named_parameters(&self, prefix: &str) -> Vec<(String, Tensor)> {
        named(self, prefix, Role::Parameter)
    }

    /// Every buffer (running statistics) with its dotted name.
    fn named_buffers(&self, prefix: &str) -> Vec<(String, Tensor)> {
        named(self, prefix, Role::Buffer)
    }

    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters("")
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// The device the parameters live on (the CPU for a module without any).
    fn device(&self) -> Device {
        self.parameters()
            .first()
            .map_or(Device::Cpu, Tensor::device)
    }

    /// The mode flags of every module in the tree (what `set_training` and `freeze` flip).
    fn modes<'a>(&'a self, out: &mut Vec<&'a Mode>) {
        out.extend(self.mode());
        for (_, child) in self.children() {
            child.modes(out);
        }
    }

    /// Training mode (batch statistics, dropout on) or inference mode, for the whole tree.
    fn set_training(&self, on: bool) {
        let mut modes = Vec::new();
        self.modes(&mut modes);
        for m in modes {
            m.training.set(on);
        }
    }

    /// Clears the gradient of every parameter.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Freezes the tree until the guard drops, as TF2 Keras' `trainable = False` does for the
    /// discriminator inside the combined model: parameters stop requiring gradients (so
    /// backward gives them none, while gradients still flow through to the input) and batch
    /// norm uses and keeps its running statistics; dropout stays as the training flag says.
    /// Keep the guard alive until after `backward`: autograd reads `requires_grad` then.
    fn freeze(&self) -> Frozen<'_> {
        self.freeze_with(FrozenNorm::Running)
    }

    /// `freeze` with batch norm doing `norm` (`FrozenNorm::Batch`: Keras 2.3 / TF1).
    fn freeze_with(&self, norm: FrozenNorm) -> Frozen<'_> {
        let mut modes = Vec::new();
        self.modes(&mut modes);
        Frozen {
            modes: modes
                .into_iter()
                .map(|m| (m, m.frozen.replace(Some(norm))))
                .collect(),
            params: self
                .parameters()
                .into_iter()
                .map(|p| {
                    let was = p.requires_grad();
                    p.set_requires_grad(false);
                    (p, was)
                })
                .collect(),
        }
    }
}

fn named<M: Module + ?Sized>(m: &M, prefix: &str, role: Role) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    m.visit_state(prefix, &mut |name, r, t| {
        if r == role {
            out.push((name, t.clone()));
        }
    });
    out
}

/// `prefix.name`, or `name` at the root.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Undoes `Module::freeze` on drop, restoring each flag to what it was (so freezes nest).
#[must_use = "the module is unfrozen as soon as the guard drops"]
pub struct Frozen<'a> {
    modes: Vec<(&'a Mode, Option<FrozenNorm>)>,
    params: Vec<(Tensor, bool)>,
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        for (m, was) in &self.modes {
            m.frozen.set(*was);
        }
        for (p, was) in &self.params {
            p.set_requires_grad(*was);
        }
    }
}

/// A module with one input and one output: what `Sequential` chains.
pub trait Layer: Module {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor>;

    /// This layer as an activation the layer before it may fold into its kernel.
    fn as_activation(&self) -> Option<Activation> {
        None
    }

    /// `forward` followed by `act` in one kernel, where this layer can fold it (`None`: it
    /// cannot, and the caller runs the activation on its own).
    fn forward_activated(
        &self,
        _x: &Tensor,
        _act: Activation,
        _ctx: &mut Ctx,
    ) -> Option<Result<Tensor>> {
        None
    }
}

/// What a forward pass draws on besides its input: the dropout stream. Every dropout call
/// takes the next mask of a counter-based generator keyed by the run's seed, so a run is
/// reproducible from (seed, calls so far), and both are saved in checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ctx {
    seed: u64,
    calls: u64,
}

impl Ctx {
    pub fn new(seed: u64) -> Ctx {
        Ctx { seed, calls: 0 }
    }

    /// (seed, offset) of the next dropout mask.
    pub(crate) fn next_dropout_key(&mut self) -> (u64, u32) {
        let calls = self.calls;
        self.calls += 1;
        // The mask kernel takes a 32-bit offset; the high bits of the count go into the key,
        // so masks never repeat within a run.
        let key = self
            .seed
            .wrapping_add((calls >> 32).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (key, calls as u32)
    }

    /// (seed, calls so far), for checkpoints.
    pub fn state(&self) -> [u64; 2] {
        [self.seed, self.calls]
    }

    pub fn from_state([seed, calls]: [u64; 2]) -> Ctx {
        Ctx { seed, calls }
    }
}
