//! Mini-batches. The book draws every batch independently, with replacement
//! (`np.random.randint(0, n, batch_size)`); epoch shuffling (each item exactly once per pass) is
//! the option. A batch is one contiguous buffer, so the engine uploads it to the device in a
//! single copy instead of one per image.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::dataset::Split;
use super::{DataError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// Independent uniform draws, as the book does.
    WithReplacement,
    /// A fresh permutation each epoch; a batch that straddles two epochs takes the rest of one
    /// and the start of the next, so every batch is full.
    EpochShuffle,
}

/// A batch, reused from one step to the next so that its buffers are allocated once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// `shape.iter().product()` values, item after item.
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    /// `[batch_size, item_shape...]`.
    pub shape: Vec<usize>,
}

impl Batch {
    /// The images as one tensor on `device`: a single host-to-device copy for the batch.
    pub fn to_tensor(&self, device: &crate::Device) -> crate::Result<crate::Tensor> {
        crate::Tensor::from_vec(self.images.clone(), &self.shape, device)
    }

    /// Copies the items at `indices` of `split` into this batch, replacing its contents.
    pub fn fill(&mut self, split: &Split, indices: &[usize]) {
        self.images.clear();
        self.labels.clear();
        for &i in indices {
            split.extend_with_item(i, &mut self.images);
            self.labels.push(split.labels[i]);
        }
        self.shape.clear();
        self.shape.push(indices.len());
        self.shape.extend_from_slice(&split.item_shape);
    }
}

/// Draws batch indices over a split of `n` items. Batch b's draws (with replacement) come from
/// `ChaCha8` stream b of the seed, and epoch e's permutation (epoch shuffling) from stream e,
/// so any position is reached in O(1): a resumed run skips to its step without replaying.
#[derive(Clone, Debug)]
pub struct Batcher {
    n: usize,
    batch_size: usize,
    sampling: Sampling,
    seed: u64,
    /// The permutation of epoch `order_epoch` (epoch shuffling only).
    order: Vec<usize>,
    order_epoch: Option<u64>,
    indices: Vec<usize>,
    /// Batches drawn so far.
    batches: u64,
}

impl Batcher {
    pub fn new(n: usize, batch_size: usize, sampling: Sampling, seed: u64) -> Result<Self> {
        if n == 0 || batch_size == 0 {
            return Err(DataError::InvalidArgument(format!(
                "cannot draw batches of {batch_size} from {n} items (both must be positive)"
            )));
        }
        Ok(Batcher {
            n,
            batch_size,
            sampling,
            seed,
            order: Vec::new(),
            order_epoch: None,
            indices: Vec::with_capacity(batch_size),
            batches: 0,
        })
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Items drawn so far divided by the split size.
    pub fn epochs(&self) -> f64 {
        self.batches as f64 * self.batch_size as f64 / self.n as f64
    }

    fn stream(&self, index: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(index);
        rng
    }

    /// The indices of the next batch.
    pub fn next_indices(&mut self) -> &[usize] {
        self.indices.clear();
        match self.sampling {
            Sampling::WithReplacement => {
                let mut rng = self.stream(self.batches);
                for _ in 0..self.batch_size {
                    self.indices.push(rng.random_range(0..self.n));
                }
            }
            Sampling::EpochShuffle => {
                // Item position of this batch's first draw, as u128: no overflow at any step.
                let mut at = u128::from(self.batches) * self.batch_size as u128;
                while self.indices.len() < self.batch_size {
                    let epoch = (at / self.n as u128) as u64;
                    let pos = (at % self.n as u128) as usize;
                    if self.order_epoch != Some(epoch) {
                        let mut rng = self.stream(epoch);
                        self.order = (0..self.n).collect();
                        self.order.shuffle(&mut rng);
                        self.order_epoch = Some(epoch);
                    }
                    let take = (self.batch_size - self.indices.len()).min(self.n - pos);
                    self.indices.extend_from_slice(&self.order[pos..pos + take]);
                    at += take as u128;
                }
            }
        }
        self.batches += 1;
        &self.indices
    }

    /// Skips `batches` draws, so a resumed run continues the same sequence of batches (O(1)).
    pub fn skip(&mut self, batches: u64) {
        self.batches = self.batches.saturating_add(batches);
    }

    /// Draws the next batch of `split` into `out`.
    pub fn next_batch(&mut self, split: &Split, out: &mut Batch) -> Result<()> {
        if split.n != self.n {
            return Err(DataError::InvalidArgument(format!(
                "batcher was made for {} items, the split has {}",
                self.n, split.n
            )));
        }
        self.next_indices();
        out.fill(split, &self.indices);
        Ok(())
    }
}

/// Batches drawn on a background thread while the training step runs: see [`prefetch`].
pub struct Prefetch {
    ready: Receiver<Result<Batch>>,
    /// Batches handed back, refilled by the drawing thread instead of allocated anew.
    spent: Sender<Batch>,
}

impl Prefetch {
    /// The next batch, in the batcher's order (waiting only if the drawing thread is behind).
    pub fn next_batch(&mut self) -> Result<Batch> {
        self.ready.recv().unwrap_or_else(|_| {
            Err(DataError::InvalidArgument(
                "the batch-drawing thread stopped".into(),
            ))
        })
    }

    /// Returns a used batch, so its buffers are reused.
    pub fn recycle(&mut self, batch: Batch) {
        // The thread may have stopped after an error; the batch is then simply dropped.
        let _ = self.spent.send(batch);
    }
}

/// Runs `body` with batches of `split` drawn by `batcher` on a scoped thread, at most `depth`
/// ahead: gathering and converting a batch (a few ms for 128 colour images) overlaps the step
/// instead of adding to it. The sequence is the batcher's, so runs and resumes are unchanged.
/// The thread stops when `body` returns.
pub fn prefetch<T>(
    mut batcher: Batcher,
    split: &Split,
    depth: usize,
    body: impl FnOnce(&mut Prefetch) -> T,
) -> T {
    std::thread::scope(|scope| {
        let (ready_tx, ready) = sync_channel(depth.max(1));
        let (spent, spent_rx) = channel::<Batch>();
        scope.spawn(move || loop {
            let mut batch = spent_rx.try_recv().unwrap_or_default();
            let drawn = batcher.next_batch(split, &mut batch).map(|()| batch);
            let failed = drawn.is_err();
            // A send fails once `body` has returned and dropped the receiver: time to stop.
            if ready_tx.send(drawn).is_err() || failed {
                break;
            }
        });
        let mut prefetch = Prefetch { ready, spent };
        body(&mut prefetch)
    })
}
