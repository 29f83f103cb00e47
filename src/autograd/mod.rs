//! Reverse-mode automatic differentiation over the graph the ops record.
//!
//! Every backward rule is written with differentiable tensor ops, so with `create_graph` the
//! gradient is itself a graph and can be differentiated again (double backward, as WGAN-GP's
//! gradient penalty needs).

use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

/// What the ops record and the grad mode live with the tensor (a tensor carries its place in
/// the graph); the traversal that differentiates the graph is here.
pub use crate::tensor::graph::{
    is_grad_enabled, no_grad, set_grad_enabled, GradFn, GradModeGuard, Node,
};

/// Tensors reachable from `roots` through recorded ops, inputs before the ops that use them.
/// Fails on a graph an earlier `backward()` has released.
fn topological_order(roots: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order DFS: deep graphs must not overflow the stack.
    let mut stack: Vec<(Tensor, bool)> = roots.iter().map(|t| (t.clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !t.requires_grad() || !seen.insert(t.id()) {
            continue;
        }
        if t.is_released() {
            return Err(Error::Autograd(
                "backward through a graph a second time: the first backward() freed it (use \
                 backward_create_graph() or grad() to keep a graph for another pass)"
                    .into(),
            ));
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for input in &node.inputs {
                if !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    Ok(order)
}

/// Propagates `seeds` (output, its gradient) backwards. Returns the gradient of every tensor in
/// `keep` and, when `to_leaves`, accumulates leaf gradients into `Tensor::grad`. With
/// `release`, each op is dropped once its backward has run, so the activations it held are
/// freed as the pass goes (the order list holds only the tensors not yet visited).
fn propagate(
    seeds: Vec<(Tensor, Tensor)>,
    keep: &[Tensor],
    create_graph: bool,
    to_leaves: bool,
    release: bool,
) -> Result<HashMap<u64, Tensor>> {
    let _mode = set_grad_enabled(create_graph);
    let roots: Vec<Tensor> = seeds.iter().map(|(t, _)| t.clone()).collect();
    let keep_ids: HashSet<u64> = keep.iter().map(Tensor::id).collect();
    let mut grads: HashMap<u64, Tensor> = HashMap::new();
    for (t, g) in seeds {
        accumulate(&mut grads, &t, g)?;
    }
    let mut kept = HashMap::new();
    for t in topological_order(&roots)?.into_iter().rev() {
        let Some(g) = grads.remove(&t.id()) else {
            continue;
        };
        if keep_ids.contains(&t.id()) {
            kept.insert(t.id(), g.clone());
        }
        match t.node() {
            Some(node) => {
                let input_grads = node.grad_fn.backward(&node.inputs, &t, &g)?;
                for (input, ig) in node.inputs.iter().zip(input_grads) {
                    if let Some(ig) = ig.filter(|_| input.requires_grad()) {
                        if ig.shape() != input.shape() {
                            return Err(Error::Autograd(format!(
                                "{} produced a gradient of shape {:?} for an input of shape {:?}",
                                node.grad_fn.name(),
                                ig.shape(),
                                input.shape()
                            )));
                        }
                        accumulate(&mut grads, input, ig)?;
                    }
                }
            }
            None if to_leaves => {
                let total = match t.grad() {
                    Some(old) => old.add(&g)?,
                    None => g,
                };
                t.set_grad(Some(if create_graph { total } else { total.detach() }));
            }
            None => {}
        }
        if release {
            t.release_node();
        }
    }
    Ok(kept)
}

fn accumulate(grads: &mut HashMap<u64, Tensor>, t: &Tensor, g: Tensor) -> Result<()> {
    let total = match grads.remove(&t.id()) {
        Some(old) => old.add(&g)?,
        None => g,
    };
    grads.insert(t.id(), total);
    Ok(())
}

/// `loss.backward()`: d loss / d leaf for every leaf that requires a gradient.
pub(crate) fn backward(loss: &Tensor, create_graph: bool) -> Result<()> {
    if loss.numel() != 1 {
        return Err(Error::Autograd(format!(
            "backward() needs a scalar, got shape {:?}; reduce it (sum/mean) or use grad() with grad_outputs",
            loss.shape()
        )));
    }
    if !loss.requires_grad() {
        return Err(Error::Autograd(
            "backward() on a tensor that does not require a gradient (no parameter reaches it, or it was computed under no_grad)".into(),
        ));
    }
    let seed = loss.ones_like()?;
    // Like PyTorch's `retain_graph=create_graph`: a graph kept for double backward stays.
    propagate(
        vec![(loss.clone(), seed)],
        &[],
        create_graph,
        true,
        !create_graph,
    )?;
    Ok(())
}

/// Gradients of `outputs` (weighted by `grad_outputs`, default ones for scalars) with respect
/// to `inputs`, like `torch.autograd.grad`. With `create_graph` the results carry a graph and
/// can be differentiated again. An input the outputs do not depend on gets `None`.
pub fn grad(
    outputs: &[Tensor],
    grad_outputs: Option<&[Tensor]>,
    inputs: &[Tensor],
    create_graph: bool,
) -> Result<Vec<Option<Tensor>>> {
    let mut seeds = Vec::with_capacity(outputs.len());
    for (i, out) in outputs.iter().enumerate() {
        let seed = match grad_outputs {
            Some(g) => g
                .get(i)
                .cloned()
                .ok_or_else(|| Error::Autograd("grad_outputs must match outputs".into()))?,
            None if out.numel() == 1 => out.ones_like()?,
            None => {
                return Err(Error::Autograd(format!(
                    "grad() of a non-scalar output (shape {:?}) needs grad_outputs",
                    out.shape()
                )))
            }
        };
        if seed.shape() != out.shape() {
            return Err(Error::Autograd(format!(
                "grad_outputs shape {:?} does not match output shape {:?}",
                seed.shape(),
                out.shape()
            )));
        }
        if out.requires_grad() {
            seeds.push((out.clone(), seed));
        }
    }
    let kept = propagate(seeds, inputs, create_graph, false, false)?;
    Ok(inputs.iter().map(|t| kept.get(&t.id()).cloned()).collect())
}

impl Tensor {
    /// Gradients of this scalar with respect to every leaf that requires one, accumulated
    /// into their `grad()`.
    pub fn backward(&self) -> Result<()> {
        backward(self, false)
    }

    /// `backward` that keeps the gradient graph, for higher-order derivatives.
    pub fn backward_create_graph(&self) -> Result<()> {
        backward(self, true)
    }
}
