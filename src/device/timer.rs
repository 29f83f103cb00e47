//! GPU timestamp queries around compute passes, for benches.

/// Begin/end timestamp pairs for up to `capacity / 2` passes.
pub(crate) struct Timer {
    set: wgpu::QuerySet,
    capacity: u32,
    used: u32,
}

impl Timer {
    pub(crate) fn new(device: &wgpu::Device, passes: u32) -> Self {
        let capacity = (passes.clamp(1, 2048)) * 2;
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timer"),
            ty: wgpu::QueryType::Timestamp,
            count: capacity,
        });
        Timer {
            set,
            capacity,
            used: 0,
        }
    }

    /// Timestamp slots for the next pass, while any are left.
    pub(crate) fn next_pass(&mut self) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        if self.used + 2 > self.capacity {
            return None;
        }
        let begin = self.used;
        self.used += 2;
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(begin),
            end_of_pass_write_index: Some(begin + 1),
        })
    }

    pub(crate) fn used_bytes(&self) -> u64 {
        u64::from(self.used) * 8
    }

    /// A buffer to resolve the timestamps into.
    pub(crate) fn resolve_buffer(&self, device: &wgpu::Device) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamps"),
            size: self.used_bytes().max(8),
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// Records the query resolve into `buffer`.
    pub(crate) fn resolve(&self, encoder: &mut wgpu::CommandEncoder, buffer: &wgpu::Buffer) {
        encoder.resolve_query_set(&self.set, 0..self.used, buffer, 0);
    }

    /// Sum over passes of (end - begin), in seconds.
    pub(crate) fn total_seconds(raw: &[u8], period_ns: f64) -> f64 {
        let stamps: &[u64] = bytemuck::cast_slice(raw);
        let ticks: u64 = stamps
            .chunks_exact(2)
            .map(|p| p[1].saturating_sub(p[0]))
            .sum();
        ticks as f64 * period_ns * 1e-9
    }
}
