//! The GPU context: adapter, queue, buffer pool, the caches of compiled kernels and bind
//! groups, and the open command encoder with its one compute pass.
//!
//! Kernels are recorded into one compute pass and submitted in batches; nothing here waits for
//! the GPU except `read` (host read-back) and `synchronize`. After warm-up a dispatch allocates
//! nothing: params travel as immediates (or through a per-submit arena), bind groups come
//! from a cache keyed by kernel and buffers, and buffers from the pool.

use super::counters::{CounterSnapshot, Counters};
use super::kernel::{read, write, WORKGROUP};
use super::kernel::{
    Access, Kernel, KernelParams, KernelSource, Matrices, ParamsMode, MAX_PARAMS_BYTES,
};
use super::pool::{BufferPool, GpuBuffer, Pooled};
use super::select::{describe_shapes, new_instance, AdapterRequest};
use super::timer::Timer;
use crate::{Error, Result};
use std::cell::Cell;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

thread_local! {
    static SUBGROUPS: Cell<bool> = const { Cell::new(true) };
}

/// Runs `f` with this thread's ops launching their subgroup kernels where the device has them
/// (`true`, the default) or never: tests and benches compare both paths this way.
pub fn with_subgroups<T>(on: bool, f: impl FnOnce() -> T) -> T {
    crate::scoped::with_cell(&SUBGROUPS, on, f)
}

/// Kernels recorded before the open pass is submitted. Large enough to amortise the submit,
/// small enough that the driver starts working while we keep recording.
const MAX_RECORDED: u32 = 256;
/// The most buffers one kernel binds.
const MAX_BINDINGS: usize = 8;
/// Cached bind groups beyond which the cache starts over (a training step needs a few hundred).
const MAX_BIND_GROUPS: usize = 16_384;
/// Share of the adapter's device memory the pool may hold by default.
const POOL_SHARE: f64 = 0.75;
/// Pool cap where the adapter's memory is unknown.
const POOL_FALLBACK_BYTES: u64 = 4 << 30;

crate::kernel_params! {
    struct FillParams { n: u32, value: f32 }
}
crate::kernel_params! {
    struct CopyParams { n: u32, src_off: u32, dst_off: u32 }
}

static FILL: Kernel<FillParams> = Kernel::new(
    "fill",
    &[write("out")],
    &["@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        out[i] = p.value;
    }
}
"],
);

/// A flat copy as a kernel, so copies stay inside the batch's one compute pass.
static COPY: Kernel<CopyParams> = Kernel::new(
    "copy_flat",
    &[read("src"), write("dst")],
    &["@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if (i < p.n) {
        dst[p.dst_off + i] = src[p.src_off + i];
    }
}
"],
);

/// The device primitives' kernels (for the portability test).
pub(crate) fn kernels() -> [&'static dyn KernelSource; 2] {
    [&FILL, &COPY]
}

pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    /// What the adapter offers, whether requested or not (for the capabilities line).
    adapter_features: wgpu::Features,
    /// The cooperative-matrix shapes the adapter offers.
    cooperative_matrix: Vec<wgpu::CooperativeMatrixProperties>,
    /// The fragments GEMMs run on, where `GANLAB_MATRICES` asked for them.
    matrices: Option<Matrices>,
    mode: ParamsMode,
    pool: BufferPool,
    state: Mutex<State>,
    counters: Counters,
    errors: Arc<Mutex<Vec<String>>>,
    poison: AtomicBool,
}

/// Everything a dispatch touches, under one lock.
struct State {
    recorder: Recorder,
    kernels: HashMap<usize, Arc<Compiled>>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    /// Read-back staging buffers by size class (a read waits, so one each suffices).
    staging: HashMap<u64, wgpu::Buffer>,
}

struct Recorder {
    open: Option<Open>,
    recorded: u32,
    /// Params of this batch's dispatches, written to `arena` just before the submit.
    arena_bytes: Vec<u8>,
    arena: Option<Arena>,
    timer: Option<Timer>,
}

/// The open encoder and its compute pass (declared first: it must end before the encoder).
struct Open {
    pass: wgpu::ComputePass<'static>,
    encoder: wgpu::CommandEncoder,
}

struct Arena {
    buffer: wgpu::Buffer,
    slot: u64,
}

struct Compiled {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    name: &'static str,
    /// Dispatches of this kernel so far (for profiles).
    dispatches: AtomicU64,
}

/// A bind group's identity: the kernel's address and its buffers' pool ids.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct BindKey {
    kernel: usize,
    ids: [u64; MAX_BINDINGS],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl GpuContext {
    /// Opens the adapter `req` selects, with the adapter's real limits, immediates and, where
    /// offered, timestamp queries (for benches).
    pub fn new(req: &AdapterRequest) -> Result<Self> {
        let instance = new_instance(req.backends()?);
        let adapter = req.choose(&instance)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let cooperative_matrix = adapter.cooperative_matrix_properties();
        let matrices = req.matrix_request()?.resolve(&adapter)?;
        let adapter_features = adapter.features();
        let mut features = adapter_features
            & (wgpu::Features::TIMESTAMP_QUERY
                | wgpu::Features::IMMEDIATES
                | wgpu::Features::SUBGROUP);
        let mut experimental = wgpu::ExperimentalFeatures::disabled();
        if let Some(m) = matrices {
            if m.half {
                features |= wgpu::Features::SHADER_F16;
            }
            if !m.emulated {
                features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
                // SAFETY: wgpu's experimental features may have bugs; this one is only asked
                // for by GANLAB_MATRICES=on, which its documentation marks as unmeasured.
                experimental = unsafe { wgpu::ExperimentalFeatures::enabled() };
            }
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("ganlab"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
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
        let immediates = features.contains(wgpu::Features::IMMEDIATES)
            && limits.max_immediate_size as usize >= MAX_PARAMS_BYTES;
        let mode = match req.params.as_deref() {
            Some("arena") => ParamsMode::Arena,
            _ if immediates => ParamsMode::Immediate,
            _ => ParamsMode::Arena,
        };
        let cap = match req.pool_bytes {
            Some(b) => b,
            None => super::memory::device_memory(&adapter)
                .map_or(POOL_FALLBACK_BYTES, |m| (m as f64 * POOL_SHARE) as u64),
        };
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            features,
            adapter_features,
            cooperative_matrix,
            matrices,
            mode,
            pool: BufferPool::new(cap),
            state: Mutex::new(State {
                recorder: Recorder {
                    open: None,
                    recorded: 0,
                    arena_bytes: Vec::new(),
                    arena: None,
                    timer: None,
                },
                kernels: HashMap::new(),
                bind_groups: HashMap::new(),
                staging: HashMap::new(),
            }),
            counters: Counters::default(),
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
    /// (The noop backend also reports a CPU device type; it runs nothing, so it is not one.)
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu && !self.is_noop()
    }

    /// True on wgpu's noop backend: every call is validated and tracked, no kernel runs.
    pub fn is_noop(&self) -> bool {
        self.info.backend == wgpu::Backend::Noop
    }

    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether kernels may use subgroup operations (`Features::SUBGROUP`).
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Whether ops on this thread launch their subgroup kernels: where the device has them,
    /// unless [`with_subgroups`] turned them off.
    pub fn subgroups_enabled(&self) -> bool {
        self.has_subgroups() && SUBGROUPS.with(Cell::get)
    }

    /// How kernel params reach the GPU on this context.
    pub fn params_mode(&self) -> ParamsMode {
        self.mode
    }

    /// One line naming the adapter, its backend and driver.
    pub fn describe(&self) -> String {
        describe_adapter(&self.info)
    }

    /// The cooperative-matrix (tensor core) shapes the adapter offers through wgpu, whether
    /// or not anything here uses them (the benches print them, so a GPU run records them).
    pub fn cooperative_matrix(&self) -> &[wgpu::CooperativeMatrixProperties] {
        &self.cooperative_matrix
    }

    /// The fragments GEMMs run on: `None` unless `GANLAB_MATRICES` asked for them.
    pub fn matrices(&self) -> Option<Matrices> {
        self.matrices
    }

    /// What kernels may use on this adapter, in one line: timestamps, subgroups (and their
    /// sizes) and the cooperative-matrix shapes offered.
    pub fn capabilities(&self) -> String {
        let yes = |on: bool| if on { "yes" } else { "no" };
        let subgroups = match self.has_subgroups() {
            true => format!(
                "yes (size {}-{})",
                self.info.subgroup_min_size, self.info.subgroup_max_size
            ),
            false => "no".to_string(),
        };
        let used = match self.matrices {
            None => "off".to_string(),
            Some(m) => format!(
                "{}{}x{} {}",
                if m.emulated { "emulated " } else { "" },
                m.size,
                m.size,
                if m.half { "f16" } else { "f32" }
            ),
        };
        format!(
            "timestamps {}, f16 {}, subgroups {subgroups}, cooperative matrices {} (used: {used})",
            yes(self.has_timestamps()),
            yes(self.adapter_features.contains(wgpu::Features::SHADER_F16)),
            describe_shapes(&self.cooperative_matrix)
        )
    }

    pub(crate) fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Bytes held by idle pooled buffers.
    pub fn pooled_bytes(&self) -> u64 {
        self.pool.idle_bytes()
    }

    /// The most bytes the pool holds before it releases idle buffers.
    pub fn pool_cap(&self) -> u64 {
        self.pool.cap()
    }

    pub fn set_pool_cap(&self, bytes: u64) {
        self.pool.set_cap(bytes);
    }

    /// Returns idle pooled buffers to the driver.
    pub fn trim_pool(&self) {
        let released = self.pool.clear();
        self.forget(released);
    }

    /// What this context has done so far; subtract two snapshots for a step's counts.
    pub fn counters(&self) -> CounterSnapshot {
        CounterSnapshot::read(&self.counters, self.pool.bytes())
    }

    /// Dispatches so far per kernel, most first.
    pub fn kernel_dispatches(&self) -> Vec<(&'static str, u64)> {
        let state = lock(&self.state);
        let mut v: Vec<_> = state
            .kernels
            .values()
            .map(|c| (c.name, c.dispatches.load(Ordering::Relaxed)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// Starts a new peak of pool bytes from the current level.
    pub fn reset_peak(&self) {
        self.pool.reset_peak();
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
        let pooled = match self.pool.take(class) {
            Some(b) => b,
            None => {
                let evicted = self.pool.evict_for(class);
                self.forget(evicted);
                let raw = self.create_storage(class.min(self.limits.max_buffer_size))?;
                self.pool.register(class, raw)
            }
        };
        let buffer = GpuBuffer::new(pooled, class, self.clone());
        if self.poison.load(Ordering::Relaxed) {
            self.fill(&buffer, len, f32::NAN)?;
        }
        Ok(buffer)
    }

    /// Drops every cached reference to buffers the pool released, so their memory goes.
    fn forget(&self, released: Vec<Pooled>) {
        if released.is_empty() {
            return;
        }
        let ids: Vec<u64> = released.iter().map(|p| p.id).collect();
        lock(&self.state)
            .bind_groups
            .retain(|k, _| !k.ids.iter().any(|id| ids.contains(id)));
    }

    fn create_buffer(&self, desc: &wgpu::BufferDescriptor) -> wgpu::Buffer {
        Counters::bump(&self.counters.buffers_created);
        self.device.create_buffer(desc)
    }

    fn create_storage(&self, bytes: u64) -> Result<wgpu::Buffer> {
        // A buffer, or None when the device is out of memory (caught, not a wgpu panic).
        let try_create = || {
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let buffer = self.create_buffer(&wgpu::BufferDescriptor {
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
        // Idle pooled buffers may be what fills the device, but buffers still read by
        // submitted work are only freed once it finishes: wait for it, release, retry once.
        self.synchronize()?;
        self.trim_pool();
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
        let params = FillParams {
            n: len as u32,
            value,
        };
        self.dispatch(&FILL, &params, &[buffer], self.grid(len)?)
    }

    /// Records a copy of the first `len` values of `src` into `dst`.
    pub fn copy(&self, src: &GpuBuffer, dst: &GpuBuffer, len: usize) -> Result<()> {
        self.copy_range(src, 0, dst, 0, len)
    }

    /// Records a copy of `len` values from `src` at `src_off` into `dst` at `dst_off`.
    pub fn copy_range(
        &self,
        src: &GpuBuffer,
        src_off: usize,
        dst: &GpuBuffer,
        dst_off: usize,
        len: usize,
    ) -> Result<()> {
        let params = CopyParams {
            n: len as u32,
            src_off: src_off as u32,
            dst_off: dst_off as u32,
        };
        self.dispatch(&COPY, &params, &[src, dst], self.grid(len)?)
    }

    /// Workgroup grid for `threads` threads of a 1-D kernel with `WORKGROUP` lanes, which
    /// linearise with `linear_index` (one dimension holds at most 65,535 workgroups).
    pub fn grid(&self, threads: usize) -> Result<[u32; 3]> {
        self.grid_for_groups(threads.div_ceil(WORKGROUP as usize))
    }

    /// A 2-D grid of at least `groups` workgroups (none for 0).
    pub fn grid_for_groups(&self, groups: usize) -> Result<[u32; 3]> {
        if groups == 0 {
            return Ok([0, 1, 1]);
        }
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

    /// Records one dispatch of `kernel` over `buffers` (in its declared order). The only
    /// launch path of the engine; allocates nothing once the kernel and its bind group are
    /// cached.
    pub fn dispatch<P: KernelParams>(
        &self,
        kernel: &'static Kernel<P>,
        params: &P,
        buffers: &[&GpuBuffer],
        groups: [u32; 3],
    ) -> Result<()> {
        if groups.contains(&0) {
            return Ok(());
        }
        if buffers.len() != kernel.buffers.len() {
            return Err(Error::Gpu(format!(
                "kernel {} binds {} buffers, {} given",
                kernel.name,
                kernel.buffers.len(),
                buffers.len()
            )));
        }
        let addr = kernel as *const Kernel<P> as usize;
        let mut ids = [0u64; MAX_BINDINGS];
        ids.iter_mut().zip(buffers).for_each(|(id, b)| *id = b.id());
        let key = BindKey { kernel: addr, ids };

        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let compiled = match state.kernels.get(&addr) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(self.compile(kernel)?);
                state.kernels.insert(addr, c.clone());
                c
            }
        };
        if state.recorder.arena.is_none() && self.mode == ParamsMode::Arena {
            state.recorder.arena = Some(self.new_arena());
        }
        let bind_group = match state.bind_groups.get(&key) {
            Some(bg) => bg.clone(),
            None => {
                if state.bind_groups.len() >= MAX_BIND_GROUPS {
                    state.bind_groups.clear();
                }
                let arena = state.recorder.arena.as_ref();
                let bg = self.bind_group(&compiled, kernel, arena, buffers);
                state.bind_groups.insert(key, bg.clone());
                bg
            }
        };

        let rec = &mut state.recorder;
        if rec.open.is_none() {
            rec.open = Some(self.open_pass(rec.timer.as_mut()));
        }
        let bytes = bytemuck::bytes_of(params);
        let offset = match &rec.arena {
            Some(arena) => {
                let at = rec.recorded as usize * arena.slot as usize;
                rec.arena_bytes.resize(at, 0);
                rec.arena_bytes.extend_from_slice(bytes);
                Some(at as u32)
            }
            None => None,
        };
        let pass = &mut rec.open.as_mut().expect("opened above").pass;
        pass.set_pipeline(&compiled.pipeline);
        match offset {
            Some(o) => pass.set_bind_group(0, &bind_group, &[o]),
            None => {
                pass.set_bind_group(0, &bind_group, &[]);
                pass.set_immediates(0, bytes);
            }
        }
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        Counters::bump(&self.counters.dispatches);
        Counters::bump(&compiled.dispatches);
        rec.recorded += 1;
        if rec.recorded >= MAX_RECORDED {
            self.submit(rec, None);
        }
        Ok(())
    }

    /// Compiles `kernel` with an explicit bind group layout: binding 0 the params arena (in
    /// arena mode), then its buffers.
    fn compile(&self, kernel: &dyn KernelSource) -> Result<Compiled> {
        let name = kernel.name();
        if kernel.subgroups() && !self.has_subgroups() {
            return Err(Error::Gpu(format!(
                "kernel {name} uses subgroup operations, which this device does not offer"
            )));
        }
        if kernel.matrices() && self.matrices.is_none() {
            return Err(Error::Gpu(format!(
                "kernel {name} uses cooperative matrices, which this context was not opened \
                 with (GANLAB_MATRICES)"
            )));
        }
        let storage =
            |binding: u32, read_only: bool, dynamic: Option<u32>| wgpu::BindGroupLayoutEntry {
                binding,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Storage { read_only },
                    has_dynamic_offset: dynamic.is_some(),
                    min_binding_size: dynamic.and_then(|b| NonZeroU64::new(b.into())),
                },
                count: None,
            };
        let mut entries = Vec::new();
        if self.mode == ParamsMode::Arena {
            entries.push(storage(0, true, Some(kernel.params_bytes())));
        }
        for (i, b) in kernel.buffers().iter().enumerate() {
            entries.push(storage(i as u32 + 1, b.access == Access::Read, None));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(name),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(name),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: match self.mode {
                    ParamsMode::Immediate => kernel.params_bytes(),
                    ParamsMode::Arena => 0,
                },
            });
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(
                    kernel.wgsl(self.mode, self.matrices.as_ref()).into(),
                ),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(kernel.entry()),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu(format!(
                "kernel {name}#{} failed to compile: {e}",
                kernel.entry()
            )));
        }
        Counters::bump(&self.counters.pipelines_created);
        Ok(Compiled {
            pipeline,
            layout,
            name,
            dispatches: AtomicU64::new(0),
        })
    }

    fn bind_group(
        &self,
        compiled: &Compiled,
        kernel: &dyn KernelSource,
        arena: Option<&Arena>,
        buffers: &[&GpuBuffer],
    ) -> wgpu::BindGroup {
        let mut entries = Vec::with_capacity(buffers.len() + 1);
        if let Some(arena) = arena {
            entries.push(wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &arena.buffer,
                    offset: 0,
                    size: NonZeroU64::new(kernel.params_bytes().into()),
                }),
            });
        }
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.raw().as_entire_binding(),
            });
        }
        Counters::bump(&self.counters.bind_groups_created);
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel.name()),
            layout: &compiled.layout,
            entries: &entries,
        })
    }

    /// The params arena: one aligned slot per dispatch of a submit batch, rewritten per submit.
    fn new_arena(&self) -> Arena {
        let align = u64::from(self.limits.min_storage_buffer_offset_alignment);
        let slot = (MAX_PARAMS_BYTES as u64).div_ceil(align) * align;
        let buffer = self.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params arena"),
            size: slot * u64::from(MAX_RECORDED),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Arena { buffer, slot }
    }

    fn open_pass(&self, timer: Option<&mut Timer>) -> Open {
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: timer.and_then(Timer::next_pass),
            })
            .forget_lifetime();
        Counters::bump(&self.counters.passes);
        Open { pass, encoder }
    }

    /// Ends the open pass, lets `finish` append to the encoder (a read-back copy, a query
    /// resolve), writes the batch's params and submits. With nothing recorded and nothing to
    /// append, submits nothing.
    fn submit(
        &self,
        rec: &mut Recorder,
        finish: Option<&mut dyn FnMut(&mut wgpu::CommandEncoder)>,
    ) {
        let encoder = match (rec.open.take(), finish) {
            (None, None) => return,
            (Some(Open { pass, encoder }), finish) => {
                drop(pass);
                let mut encoder = encoder;
                if let Some(f) = finish {
                    f(&mut encoder);
                }
                encoder
            }
            (None, Some(f)) => {
                let mut encoder = self
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
                f(&mut encoder);
                encoder
            }
        };
        if let (Some(arena), false) = (&rec.arena, rec.arena_bytes.is_empty()) {
            self.queue.write_buffer(&arena.buffer, 0, &rec.arena_bytes);
        }
        rec.arena_bytes.clear();
        rec.recorded = 0;
        self.queue.submit([encoder.finish()]);
        Counters::bump(&self.counters.submits);
    }

    /// Submits the recorded kernels without waiting for them.
    pub fn flush(&self) {
        self.submit(&mut lock(&self.state).recorder, None);
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
        self.read_many(&[(buffer, bytes)])
    }

    /// Reads the first bytes of several buffers (each a multiple of 4) in one submit and one
    /// wait; returns them concatenated in order.
    pub fn read_many(&self, parts: &[(&wgpu::Buffer, u64)]) -> Result<Vec<u8>> {
        let bytes: u64 = parts.iter().map(|p| p.1).sum();
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let class = BufferPool::class_of(bytes);
        let staging = {
            let mut state = lock(&self.state);
            // Taken out while in use: another thread's read of the same size gets its own.
            let staging = state.staging.remove(&class).unwrap_or_else(|| {
                self.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("read-back"),
                    size: class,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            let mut copy = |e: &mut wgpu::CommandEncoder| {
                let mut at = 0;
                for &(buffer, len) in parts {
                    e.copy_buffer_to_buffer(buffer, 0, &staging, at, len);
                    at += len;
                }
            };
            self.submit(&mut state.recorder, Some(&mut copy));
            staging
        };
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("read-back never completed".into()))?
            .map_err(|e| Error::Gpu(format!("read-back failed: {e}")))?;
        let data = staging
            .slice(..bytes)
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("read-back mapping failed: {e}")))?
            .to_vec();
        staging.unmap();
        lock(&self.state).staging.insert(class, staging);
        Ok(data)
    }

    /// Starts GPU timing: every following pass writes begin/end timestamps (up to `passes`).
    /// Returns false when the adapter has no timestamp queries (callers fall back to wall time).
    pub fn start_timing(&self, passes: u32) -> bool {
        if !self.has_timestamps() {
            return false;
        }
        self.flush();
        lock(&self.state).recorder.timer = Some(Timer::new(&self.device, passes));
        true
    }

    /// Ends GPU timing and returns the summed kernel time of the timed passes in seconds.
    pub fn finish_timing(&self) -> Result<Option<f64>> {
        let resolved = {
            let mut state = lock(&self.state);
            let Some(timer) = state.recorder.timer.take() else {
                return Ok(None);
            };
            if timer.used_bytes() == 0 {
                return Ok(Some(0.0));
            }
            let buffer = timer.resolve_buffer(&self.device);
            Counters::bump(&self.counters.buffers_created);
            let mut resolve = |e: &mut wgpu::CommandEncoder| timer.resolve(e, &buffer);
            self.submit(&mut state.recorder, Some(&mut resolve));
            (buffer, timer.used_bytes())
        };
        let bytes = self.read(&resolved.0, resolved.1)?;
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
