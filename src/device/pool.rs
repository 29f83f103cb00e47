//! Reusable GPU buffers. Training allocates the same sizes every iteration, so a dropped
//! tensor's buffer goes back to a free list keyed by size class and the next op takes it.

use super::GpuContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A storage buffer owned by one tensor (shared by its reshaped views); returns to the pool on drop.
pub struct GpuBuffer {
    buffer: wgpu::Buffer,
    class: u64,
    ctx: Arc<GpuContext>,
}

impl GpuBuffer {
    pub(crate) fn new(buffer: wgpu::Buffer, class: u64, ctx: Arc<GpuContext>) -> Self {
        GpuBuffer { buffer, class, ctx }
    }

    pub fn raw(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.ctx.pool().give_back(self.class, self.buffer.clone());
    }
}

#[derive(Default)]
pub(crate) struct BufferPool {
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
}

impl BufferPool {
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

    pub(crate) fn take(&self, class: u64) -> Option<wgpu::Buffer> {
        self.free.lock().ok()?.get_mut(&class)?.pop()
    }

    fn give_back(&self, class: u64, buffer: wgpu::Buffer) {
        if let Ok(mut free) = self.free.lock() {
            free.entry(class).or_default().push(buffer);
        }
    }

    /// Releases every idle buffer to the driver.
    pub(crate) fn clear(&self) {
        if let Ok(mut free) = self.free.lock() {
            free.clear();
        }
    }

    pub(crate) fn idle_bytes(&self) -> u64 {
        self.free
            .lock()
            .map(|f| f.iter().map(|(c, v)| c * v.len() as u64).sum())
            .unwrap_or(0)
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
