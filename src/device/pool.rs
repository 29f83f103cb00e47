//! Reusable GPU buffers. Training allocates the same sizes every iteration, so a dropped
//! tensor's buffer goes back to a free list keyed by size class and the next op takes it.
//! The pool is bounded: past its cap, idle size classes are released least recently used first.
//!
//! A class hands out its idle buffer with the lowest id, so the buffer an op gets depends only
//! on which buffers are free, not on the order tensors were dropped in: a training step then
//! meets the same buffers as an earlier step within a step or two, and the context's cached
//! bind groups (keyed by buffer ids) hit instead of being created again.

use super::GpuContext;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A storage buffer owned by one tensor (shared by its reshaped views); returns to the pool on drop.
pub struct GpuBuffer {
    pooled: Option<Pooled>,
    class: u64,
    ctx: Arc<GpuContext>,
}

/// A pooled wgpu buffer and its id: ids key the bind-group cache, so a buffer the pool
/// releases can be purged from it.
pub(crate) struct Pooled {
    pub id: u64,
    pub buffer: wgpu::Buffer,
}

impl GpuBuffer {
    pub(crate) fn new(pooled: Pooled, class: u64, ctx: Arc<GpuContext>) -> Self {
        GpuBuffer {
            pooled: Some(pooled),
            class,
            ctx,
        }
    }

    fn pooled(&self) -> &Pooled {
        self.pooled.as_ref().expect("present until drop")
    }

    pub fn raw(&self) -> &wgpu::Buffer {
        &self.pooled().buffer
    }

    /// The pool's id of this buffer (stable while it is reused).
    pub fn id(&self) -> u64 {
        self.pooled().id
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(p) = self.pooled.take() {
            self.ctx.pool().give_back(self.class, p);
        }
    }
}

#[derive(Default)]
struct SizeClass {
    /// Idle buffers by id.
    idle: BTreeMap<u64, wgpu::Buffer>,
    last_used: u64,
}

/// The pool's byte levels: held (in use or idle) and handed out to tensors, each with its peak.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolBytes {
    pub held: u64,
    pub peak: u64,
    pub live: u64,
    pub live_peak: u64,
}

struct PoolState {
    free: HashMap<u64, SizeClass>,
    /// Bytes of every buffer the pool created and has not released, in use or idle.
    held: u64,
    peak: u64,
    /// Bytes of buffers handed out to tensors (not idle), now and at the most.
    live: u64,
    live_peak: u64,
    cap: u64,
    tick: u64,
    next_id: u64,
}

impl PoolState {
    /// Counts a buffer of `class` bytes handed to a tensor.
    fn hand_out(&mut self, class: u64) {
        self.live += class;
        self.live_peak = self.live_peak.max(self.live);
    }
}

pub(crate) struct BufferPool {
    state: Mutex<PoolState>,
}

impl BufferPool {
    pub(crate) fn new(cap: u64) -> Self {
        BufferPool {
            state: Mutex::new(PoolState {
                free: HashMap::new(),
                held: 0,
                peak: 0,
                live: 0,
                live_peak: 0,
                cap,
                tick: 0,
                next_id: 1,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Size classes: 256-byte granularity for small buffers, four classes per power of two
    /// above 64 KiB, so reuse wastes at most ~19% while odd sizes still share buffers.
    pub(crate) fn class_of(bytes: u64) -> u64 {
        let bytes = bytes.max(16);
        if bytes <= 64 * 1024 {
            return bytes.div_ceil(256) * 256;
        }
        let octave = 1u64 << (63 - bytes.leading_zeros());
        let step = octave / 4;
        bytes.div_ceil(step) * step
    }

    pub(crate) fn take(&self, class: u64) -> Option<Pooled> {
        let mut s = self.state();
        s.tick += 1;
        let tick = s.tick;
        let c = s.free.get_mut(&class)?;
        c.last_used = tick;
        let taken = c.idle.pop_first().map(|(id, buffer)| Pooled { id, buffer });
        if taken.is_some() {
            s.hand_out(class);
        }
        taken
    }

    /// Counts a newly created buffer of `class` bytes and gives it an id.
    pub(crate) fn register(&self, class: u64, buffer: wgpu::Buffer) -> Pooled {
        let mut s = self.state();
        s.held += class;
        s.peak = s.peak.max(s.held);
        s.hand_out(class);
        let id = s.next_id;
        s.next_id += 1;
        Pooled { id, buffer }
    }

    fn give_back(&self, class: u64, pooled: Pooled) {
        let mut s = self.state();
        s.live -= class;
        s.tick += 1;
        let tick = s.tick;
        let c = s.free.entry(class).or_default();
        c.last_used = tick;
        c.idle.insert(pooled.id, pooled.buffer);
    }

    /// Releases idle buffers, least recently used size classes first, until `bytes` more fit
    /// under the cap (or nothing idle is left). Returns them so the caller can drop every
    /// other reference (cached bind groups) before they go.
    pub(crate) fn evict_for(&self, bytes: u64) -> Vec<Pooled> {
        let mut s = self.state();
        let mut out = Vec::new();
        while s.held + bytes > s.cap {
            let Some(class) = s
                .free
                .iter()
                .filter(|(_, c)| !c.idle.is_empty())
                .min_by_key(|(_, c)| c.last_used)
                .map(|(&k, _)| k)
            else {
                break;
            };
            let idle = std::mem::take(&mut s.free.get_mut(&class).expect("listed").idle);
            s.held -= class * idle.len() as u64;
            out.extend(idle.into_iter().map(|(id, buffer)| Pooled { id, buffer }));
        }
        out
    }

    /// Releases every idle buffer; returns them as [`evict_for`](Self::evict_for) does.
    pub(crate) fn clear(&self) -> Vec<Pooled> {
        let mut s = self.state();
        let mut out = Vec::new();
        let mut released = 0;
        for (class, c) in s.free.iter_mut() {
            released += class * c.idle.len() as u64;
            let idle = std::mem::take(&mut c.idle);
            out.extend(idle.into_iter().map(|(id, buffer)| Pooled { id, buffer }));
        }
        s.held -= released;
        out
    }

    pub(crate) fn idle_bytes(&self) -> u64 {
        let s = self.state();
        s.free.iter().map(|(c, v)| c * v.idle.len() as u64).sum()
    }

    /// (held, peak) bytes.
    pub(crate) fn bytes(&self) -> PoolBytes {
        let s = self.state();
        PoolBytes {
            held: s.held,
            peak: s.peak,
            live: s.live,
            live_peak: s.live_peak,
        }
    }

    pub(crate) fn reset_peak(&self) {
        let mut s = self.state();
        s.peak = s.held;
        s.live_peak = s.live;
    }

    pub(crate) fn cap(&self) -> u64 {
        self.state().cap
    }

    pub(crate) fn set_cap(&self, cap: u64) {
        self.state().cap = cap;
    }
}

#[cfg(test)]
mod tests {
    use super::BufferPool;

    #[test]
    fn size_classes_cover_the_request_with_bounded_waste() {
        for bytes in [
            1u64,
            255,
            256,
            257,
            65_536,
            65_537,
            100_000,
            1 << 20,
            (1 << 20) + 1,
        ] {
            let c = BufferPool::class_of(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            // Under 64 KiB the waste is under 256 bytes; above, under 25%.
            assert!(
                c - bytes < 256 || c as f64 <= bytes as f64 * 1.25,
                "{bytes} -> {c}"
            );
            assert_eq!(c % 4, 0);
        }
    }
}
