//! The GPU context: adapter, queue, buffer pool, pipeline cache and the open command encoder.
//!
//! Kernels are recorded into one open encoder and submitted in batches; nothing here waits for
//! the GPU except `read` (host read-back) and `synchronize`.

use super::pool::{BufferPool, GpuBuffer};
use super::select::{new_instance, AdapterRequest};
use super::timer::Timer;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use wgpu::util::DeviceExt;

/// Kernels recorded before the open encoder is submitted. Large enough to amortise the
/// submit, small enough that the driver starts working while we keep recording.
const MAX_RECORDED: u32 = 256;
/// Threads per workgroup of the 1-D kernels (element-wise, copies, fills).
pub const WORKGROUP: u32 = 256;

pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    pool: BufferPool,
    recorder: Mutex<Recorder>,
    pipelines: Mutex<HashMap<String, wgpu::ComputePipeline>>,
    errors: Arc<Mutex<Vec<String>>>,
    poison: AtomicBool,
}

#[derive(Default)]
struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    recorded: u32,
    timer: Option<Timer>,
}

/// Kernel parameters as the WGSL side reads them: a struct of 32-bit fields in a
/// read-only storage buffer.
#[derive(Default, Clone)]
pub struct Params(Vec<u32>);

impl Params {
    pub fn new() -> Self {
        Params(Vec::with_capacity(32))
    }
    /// A u32 field. Callers pass sizes already checked against the binding limit (< 2^32).
    pub fn u(mut self, v: usize) -> Self {
        self.0.push(v as u32);
        self
    }
    pub fn f(mut self, v: f32) -> Self {
        self.0.push(v.to_bits());
        self
    }
    pub fn arr(mut self, values: &[u32]) -> Self {
        self.0.extend_from_slice(values);
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuContext {
    /// Opens the adapter `req` selects, with the adapter's real limits and, where offered,
    /// timestamp queries (for benches).
    pub fn new(req: &AdapterRequest) -> Result<Self> {
        let instance = new_instance(req.backends()?);
        let adapter = req.choose(&instance)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let features = adapter.features() & wgpu::Features::TIMESTAMP_QUERY;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ganlab"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::DeviceRequest {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
        // Errors wgpu cannot hand back synchronously are collected and reported at the next
        // read-back or synchronisation instead of aborting the process.
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            lock(&sink).push(e.to_string());
        }));
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            pool: BufferPool::default(),
            recorder: Mutex::new(Recorder::default()),
            pipelines: Mutex::new(HashMap::new()),
            errors,
            poison: AtomicBool::new(false),
        })
    }

    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// True for software rasterisers such as Mesa's llvmpipe: correct, but far slower than a GPU.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// One line naming the adapter, its backend and driver.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }

    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Bytes held by idle pooled buffers.
    pub fn pooled_bytes(&self) -> u64 {
        self.pool.idle_bytes()
    }

    /// Returns idle pooled buffers to the driver.
    pub fn trim_pool(&self) {
        self.pool.clear();
    }

    /// Test aid: when on, every buffer handed to an op is first filled with NaN, so a kernel
    /// that forgets to write an element is caught.
    pub fn set_poison(&self, on: bool) {
        self.poison.store(on, Ordering::Relaxed);
    }

    fn check_size(&self, bytes: u64) -> Result<()> {
        let binding = self.limits.max_storage_buffer_binding_size;
        if bytes > binding {
            return Err(Error::TooLarge {
                bytes,
                limit: binding,
                limit_name: "max storage buffer binding size",
            });
        }
        if bytes > self.limits.max_buffer_size {
            return Err(Error::TooLarge {
                bytes,
                limit: self.limits.max_buffer_size,
                limit_name: "max buffer size",
            });
        }
        Ok(())
    }

    /// A buffer for `len` f32 values, from the pool when one of its size class is free.
    /// Its contents are unspecified (NaN when poisoning is on).
    pub fn alloc(self: &Arc<Self>, len: usize) -> Result<GpuBuffer> {
        let bytes = (len as u64) * 4;
        self.check_size(bytes)?;
        let class = BufferPool::class_of(bytes);
        let buffer = match self.pool.take(class) {
            Some(b) => b,
            None => self.create_storage(class.min(self.limits.max_buffer_size))?,
        };
        let buffer = GpuBuffer::new(buffer, class, self.clone());
        if self.poison.load(Ordering::Relaxed) {
            self.fill(&buffer, len, f32::NAN)?;
        }
        Ok(buffer)
    }

    fn create_storage(&self, bytes: u64) -> Result<wgpu::Buffer> {
        // A buffer, or None when the device is out of memory (caught, not a wgpu panic).
        let try_create = || {
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            pollster::block_on(scope.pop()).is_none().then_some(buffer)
        };
        if let Some(buffer) = try_create() {
            return Ok(buffer);
        }
        // Idle pooled buffers may be what fills the device: release them and retry once.
        self.pool.clear();
        try_create().ok_or(Error::OutOfMemory { bytes })
    }

    /// Uploads host data into a fresh buffer.
    pub fn upload(self: &Arc<Self>, data: &[f32]) -> Result<GpuBuffer> {
        let buffer = self.alloc(data.len())?;
        // `write_buffer` lands before the *next* submission's commands; submit what is recorded
        // first, so a pooled buffer still read by recorded kernels is not overwritten early.
        self.flush();
        if !data.is_empty() {
            self.queue
                .write_buffer(buffer.raw(), 0, bytemuck::cast_slice(data));
        }
        Ok(buffer)
    }

    /// Fills the first `len` values of `buffer` with `value`, recorded like any kernel.
    pub fn fill(&self, buffer: &GpuBuffer, len: usize, value: f32) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let pipeline = self.pipeline("fill", "main", || {
            include_str!("../../shaders/fill.wgsl").to_string()
        })?;
        let params = Params::new().u(len).f(value);
        self.launch(&pipeline, &params, &[buffer.raw()], self.grid(len)?)
    }

    /// Compiles (once) and returns the pipeline for `entry` in the WGSL `source` named `key`.
    /// Keys must identify the source text: templated kernels put their variant in the key.
    pub fn pipeline(
        &self,
        key: &str,
        entry: &str,
        source: impl FnOnce() -> String,
    ) -> Result<wgpu::ComputePipeline> {
        let full_key = format!("{key}#{entry}");
        if let Some(p) = lock(&self.pipelines).get(&full_key) {
            return Ok(p.clone());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(source().into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "kernel {full_key} failed to compile: {e}"
            )));
        }
        lock(&self.pipelines).insert(full_key, pipeline.clone());
        Ok(pipeline)
    }

    /// Workgroup grid for `threads` threads of a 1-D kernel with `WORKGROUP` lanes. Kernels
    /// linearise as `gid.x + gid.y * nwg.x * WORKGROUP`, since one dimension holds at most
    /// 65,535 workgroups.
    pub fn grid(&self, threads: usize) -> Result<[u32; 3]> {
        self.grid_for_groups(threads.div_ceil(WORKGROUP as usize).max(1))
    }

    /// A 2-D grid of at least `groups` workgroups.
    pub fn grid_for_groups(&self, groups: usize) -> Result<[u32; 3]> {
        let max = self.limits.max_compute_workgroups_per_dimension as usize;
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        if y > max {
            return Err(Error::TooLarge {
                bytes: groups as u64,
                limit: (max * max) as u64,
                limit_name: "workgroup grid",
            });
        }
        Ok([x as u32, y as u32, 1])
    }

    /// Records one dispatch: binding 0 is `params`, bindings 1.. are `buffers` in order.
    pub fn launch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        let mut words = params.0.clone();
        if words.is_empty() {
            words.push(0);
        }
        let params = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let layout = pipeline.get_bind_group_layout(0);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: params.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });

        let mut rec = lock(&self.recorder);
        let Recorder {
            encoder,
            recorded,
            timer,
        } = &mut *rec;
        let encoder = encoder.get_or_insert_with(|| self.new_encoder());
        {
            let timestamp_writes = timer.as_mut().and_then(Timer::next_pass);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        *recorded += 1;
        if *recorded >= MAX_RECORDED {
            self.submit(&mut rec);
        }
        Ok(())
    }

    /// Records a buffer-to-buffer copy of `bytes` bytes.
    pub fn copy(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let mut rec = lock(&self.recorder);
        let encoder = rec.encoder.get_or_insert_with(|| self.new_encoder());
        encoder.copy_buffer_to_buffer(src, 0, dst, 0, bytes);
        rec.recorded += 1;
    }

    fn new_encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    fn submit(&self, rec: &mut Recorder) {
        if let Some(encoder) = rec.encoder.take() {
            self.queue.submit([encoder.finish()]);
        }
        rec.recorded = 0;
    }

    /// Submits the recorded kernels without waiting for them.
    pub fn flush(&self) {
        self.submit(&mut lock(&self.recorder));
    }

    fn take_errors(&self) -> Result<()> {
        let mut errors = lock(&self.errors);
        if errors.is_empty() {
            return Ok(());
        }
        let msg = errors.join("; ");
        errors.clear();
        Err(Error::Gpu(msg))
    }

    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.take_errors()
    }

    /// Submits everything recorded and waits until the GPU has finished it.
    pub fn synchronize(&self) -> Result<()> {
        self.flush();
        self.wait()
    }

    /// Copies the first `bytes` bytes of `buffer` back to the host. The only routine that
    /// waits for the GPU in normal operation.
    pub fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut rec = lock(&self.recorder);
            let encoder = rec.encoder.get_or_insert_with(|| self.new_encoder());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
            self.submit(&mut rec);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("read-back never completed".into()))?
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
        let data = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("read-back mapping failed: {e}")))?
            .to_vec();
        staging.unmap();
        Ok(data)
    }

    /// Starts GPU timing: every following pass writes begin/end timestamps (up to `passes`).
    /// Returns false when the adapter has no timestamp queries (callers fall back to wall time).
    pub fn start_timing(&self, passes: u32) -> bool {
        if !self.has_timestamps() {
            return false;
        }
        self.flush();
        lock(&self.recorder).timer = Some(Timer::new(&self.device, passes));
        true
    }

    /// Ends GPU timing and returns the summed kernel time of the timed passes in seconds.
    pub fn finish_timing(&self) -> Result<Option<f64>> {
        let Some(timer) = lock(&self.recorder).timer.take() else {
            return Ok(None);
        };
        let Some(resolved) = ({
            let mut rec = lock(&self.recorder);
            let encoder = rec.encoder.get_or_insert_with(|| self.new_encoder());
            timer.resolve(&self.device, encoder)
        }) else {
            return Ok(Some(0.0));
        };
        let bytes = self.read(&resolved, timer.used_bytes())?;
        let period = f64::from(self.queue.get_timestamp_period());
        Ok(Some(Timer::total_seconds(&bytes, period)))
    }
}

pub(crate) fn describe_adapter(info: &wgpu::AdapterInfo) -> String {
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    )
}
