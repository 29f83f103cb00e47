//! A tensor's place in the autograd graph: the backward rule an op records (`GradFn`), the
//! node holding it with the op's inputs, and the grad mode that says whether ops record at
//! all. The ops record through this module, so they only reach down to the tensor; the
//! traversal that differentiates a graph is `crate::autograd`, above them.

use super::Tensor;
use crate::Result;
use std::cell::Cell;

/// An op's backward rule.
pub trait GradFn {
    fn name(&self) -> &'static str;

    /// Gradients for each input, given the op's `inputs`, its `output` and the gradient
    /// flowing into the output. `None` for an input that gets no gradient. Must be built from
    /// tensor ops (not raw kernels) so that higher-order gradients work.
    fn backward(
        &self,
        inputs: &[Tensor],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>>;
}

/// A recorded op: its rule and the tensors it read.
pub struct Node {
    pub(crate) grad_fn: Box<dyn GradFn>,
    pub(crate) inputs: Vec<Tensor>,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Restores the previous grad mode when dropped.
pub struct GradModeGuard(bool);

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.0));
    }
}

/// Sets grad mode until the guard drops.
pub fn set_grad_enabled(on: bool) -> GradModeGuard {
    GradModeGuard(GRAD_ENABLED.with(|g| g.replace(on)))
}

/// Runs `f` without recording a graph (inference, optimiser updates).
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let _guard = set_grad_enabled(false);
    f()
}
