//! What can be saved in a checkpoint and restored from one: modules (parameters and buffers),
//! optimisers (state and step counter), the random generator and the forward context.

use super::Checkpoint;
use crate::nn::{join, Ctx, Module};
use crate::optim::{Optimizer, UpdateRule};
use crate::{Result, Rng, Tensor};
use safetensors::Dtype;

/// State that goes into a checkpoint under a prefix and comes back from it.
pub trait Stateful {
    /// Adds this object's state to `ck`, every entry named under `prefix`.
    fn save_state(&self, prefix: &str, ck: &mut Checkpoint) -> Result<()>;

    /// Says, for every entry `save_state` writes, where its values go back.
    fn restore_targets<'a>(&'a mut self, prefix: &str, targets: &mut Targets<'a>);
}

type Setter<'a> = Box<dyn FnOnce(&[u64]) + 'a>;

/// Where a checkpoint entry's values go back.
pub(super) enum Target<'a> {
    /// An f32 tensor, overwritten in place (the module keeps its handle).
    F32(Tensor),
    /// A part of a flat f32 tensor from `offset` on, saved with `shape`.
    F32At {
        flat: Tensor,
        offset: usize,
        shape: Vec<usize>,
    },
    /// A u64 vector of this length, handed to a setter.
    U64 { len: usize, set: Setter<'a> },
}

impl Target<'_> {
    pub(super) fn expected(&self) -> (Dtype, Vec<usize>) {
        match self {
            Target::F32(t) => (Dtype::F32, t.shape().to_vec()),
            Target::F32At { shape, .. } => (Dtype::F32, shape.clone()),
            Target::U64 { len, .. } => (Dtype::U64, vec![*len]),
        }
    }

    /// Writes `data` (little-endian, dtype and shape already checked).
    pub(super) fn apply(self, data: &[u8], shape: &[usize]) -> Result<()> {
        let f32s = || -> Vec<f32> {
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        match self {
            Target::F32(t) => t.assign(&Tensor::from_vec(f32s(), shape, &t.device())?),
            Target::F32At { flat, offset, .. } => flat.write_at(offset, &f32s()),
            Target::U64 { set, .. } => {
                let values: Vec<u64> = data
                    .chunks_exact(8)
                    .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect();
                set(&values);
                Ok(())
            }
        }
    }
}

/// Everything one `Checkpoint::restore` fills, collected from the objects being restored.
#[derive(Default)]
pub struct Targets<'a> {
    list: Vec<(String, Target<'a>)>,
}

impl<'a> Targets<'a> {
    pub fn new() -> Self {
        Targets::default()
    }

    /// Everything `item` saved under `prefix`.
    pub fn add(&mut self, prefix: &str, item: &'a mut (impl Stateful + ?Sized)) -> &mut Self {
        item.restore_targets(prefix, self);
        self
    }

    /// One f32 tensor, overwritten in place.
    pub fn tensor(&mut self, name: String, t: &Tensor) {
        self.list.push((name, Target::F32(t.clone())));
    }

    /// A part shaped `shape` of the flat f32 tensor `flat`, from `offset` on, overwritten in
    /// place.
    pub fn tensor_at(&mut self, name: String, flat: &Tensor, offset: usize, shape: Vec<usize>) {
        let flat = flat.clone();
        self.list.push((
            name,
            Target::F32At {
                flat,
                offset,
                shape,
            },
        ));
    }

    /// One u64 vector of length `len`, handed to `set`.
    pub fn u64s(&mut self, name: String, len: usize, set: impl FnOnce(&[u64]) + 'a) {
        self.list.push((
            name,
            Target::U64 {
                len,
                set: Box::new(set),
            },
        ));
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &Target<'a>)> {
        self.list.iter().map(|(n, t)| (n.as_str(), t))
    }

    pub(super) fn into_iter(self) -> impl Iterator<Item = (String, Target<'a>)> {
        self.list.into_iter()
    }
}

/// A module: its parameters and buffers under their dotted names.
impl<M: Module + ?Sized> Stateful for M {
    fn save_state(&self, prefix: &str, ck: &mut Checkpoint) -> Result<()> {
        let mut state = Vec::new();
        self.visit_state(prefix, &mut |name, _, t| state.push((name, t.clone())));
        state
            .iter()
            .try_for_each(|(name, t)| ck.put_tensor(name, t))
    }

    fn restore_targets<'a>(&'a mut self, prefix: &str, targets: &mut Targets<'a>) {
        self.visit_state(prefix, &mut |name, _, t| targets.tensor(name, t));
    }
}

/// An optimiser: `<prefix>.<param>.<slot>` for its state, `<prefix>.step` for its counter.
impl<R: UpdateRule> Stateful for Optimizer<R> {
    fn save_state(&self, prefix: &str, ck: &mut Checkpoint) -> Result<()> {
        for (name, t) in self.named_state(prefix)? {
            ck.put_tensor(&name, &t)?;
        }
        ck.put_u64s(&join(prefix, "step"), &[self.steps()])
    }

    fn restore_targets<'a>(&'a mut self, prefix: &str, targets: &mut Targets<'a>) {
        for (name, flat, offset, shape) in self.state_locations(prefix) {
            targets.tensor_at(name, &flat, offset, shape);
        }
        targets.u64s(join(prefix, "step"), 1, move |v| {
            if let Some(&steps) = v.first() {
                self.set_steps(steps);
            }
        });
    }
}

/// The random generator's whole state (seed, stream, position), as 7 u64 under `prefix`.
impl Stateful for Rng {
    fn save_state(&self, prefix: &str, ck: &mut Checkpoint) -> Result<()> {
        ck.put_u64s(prefix, &self.state())
    }

    fn restore_targets<'a>(&'a mut self, prefix: &str, targets: &mut Targets<'a>) {
        targets.u64s(prefix.to_string(), 7, move |v| {
            if let Ok(state) = v.try_into() {
                *self = Rng::from_state(state);
            }
        });
    }
}

/// The forward context's dropout stream (seed, calls so far), as 2 u64 under `prefix`.
impl Stateful for Ctx {
    fn save_state(&self, prefix: &str, ck: &mut Checkpoint) -> Result<()> {
        ck.put_u64s(prefix, &self.state())
    }

    fn restore_targets<'a>(&'a mut self, prefix: &str, targets: &mut Targets<'a>) {
        targets.u64s(prefix.to_string(), 2, move |v| {
            if let Ok(state) = v.try_into() {
                *self = Ctx::from_state(state);
            }
        });
    }
}

/// A counter (images shown, a phase index) as one u64 under `prefix`.
impl Stateful for u64 {
    fn save_state(&self, prefix: &str, ck: &mut Checkpoint) -> Result<()> {
        ck.put_u64s(prefix, &[*self])
    }

    fn restore_targets<'a>(&'a mut self, prefix: &str, targets: &mut Targets<'a>) {
        targets.u64s(prefix.to_string(), 1, move |v| *self = v[0]);
    }
}
