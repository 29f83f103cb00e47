//! What the GPU context has done, counted exactly: a training step's launch cost is visible
//! (and testable) without a GPU, where a time would be noise.

use super::pool::PoolBytes;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub(crate) struct Counters {
    pub dispatches: AtomicU64,
    pub passes: AtomicU64,
    pub submits: AtomicU64,
    pub buffers_created: AtomicU64,
    pub bind_groups_created: AtomicU64,
    pub pipelines_created: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The counters at one moment; subtract two to get what happened in between (the byte
/// figures are levels, not counts: a difference keeps the later value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Kernels recorded.
    pub dispatches: u64,
    /// Compute passes begun (one per submit batch).
    pub compute_passes: u64,
    /// Command buffers submitted to the queue.
    pub submits: u64,
    /// wgpu buffers created (tensor storage, read-back staging, params arena).
    pub buffers_created: u64,
    pub bind_groups_created: u64,
    pub pipelines_created: u64,
    /// Bytes of tensor buffers the pool holds now, in use or idle.
    pub pool_bytes: u64,
    /// The most `pool_bytes` has been since the context opened (or the peak was reset).
    pub peak_pool_bytes: u64,
    /// Bytes of the buffers tensors hold now (the pool's idle ones not counted), and the most
    /// since the peak was reset.
    pub tensor_bytes: u64,
    pub peak_tensor_bytes: u64,
}

impl CounterSnapshot {
    pub(crate) fn read(c: &Counters, pool: PoolBytes) -> Self {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CounterSnapshot {
            dispatches: get(&c.dispatches),
            compute_passes: get(&c.passes),
            submits: get(&c.submits),
            buffers_created: get(&c.buffers_created),
            bind_groups_created: get(&c.bind_groups_created),
            pipelines_created: get(&c.pipelines_created),
            pool_bytes: pool.held,
            peak_pool_bytes: pool.peak,
            tensor_bytes: pool.live,
            peak_tensor_bytes: pool.live_peak,
        }
    }

    /// What happened since `earlier`; byte levels are this snapshot's.
    pub fn since(&self, earlier: &CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            dispatches: self.dispatches - earlier.dispatches,
            compute_passes: self.compute_passes - earlier.compute_passes,
            submits: self.submits - earlier.submits,
            buffers_created: self.buffers_created - earlier.buffers_created,
            bind_groups_created: self.bind_groups_created - earlier.bind_groups_created,
            pipelines_created: self.pipelines_created - earlier.pipelines_created,
            pool_bytes: self.pool_bytes,
            peak_pool_bytes: self.peak_pool_bytes,
            tensor_bytes: self.tensor_bytes,
            peak_tensor_bytes: self.peak_tensor_bytes,
        }
    }
}

impl std::fmt::Display for CounterSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} dispatches, {} passes, {} submits, {} buffers and {} bind groups created, \
             pool {:.1} MiB (peak {:.1} MiB)",
            self.dispatches,
            self.compute_passes,
            self.submits,
            self.buffers_created,
            self.bind_groups_created,
            self.pool_bytes as f64 / (1 << 20) as f64,
            self.peak_pool_bytes as f64 / (1 << 20) as f64
        )
    }
}
