//! Where tensors live: the host CPU or one GPU context.

mod counters;
mod gpu;
mod kernel;
mod memory;
mod pool;
mod select;
mod timer;

pub use counters::CounterSnapshot;
pub use gpu::{with_subgroups, GpuContext};
pub use kernel::{
    read, write, Access, Binding, Kernel, KernelParams, KernelSource, Matrices, ParamsMode,
    WgslType, MAX_PARAMS_BYTES, WORKGROUP,
};
pub use pool::GpuBuffer;

/// The kernels of the device layer itself (fill, copy), for the portability test.
pub fn device_kernels() -> impl Iterator<Item = &'static dyn KernelSource> {
    gpu::kernels().into_iter()
}
pub use select::{list_adapters, AdapterRequest, MatrixRequest};

use crate::Result;
use std::fmt;
use std::sync::{Arc, OnceLock};

#[derive(Clone)]
pub enum Device {
    Cpu,
    Gpu(Arc<GpuContext>),
}

impl Device {
    /// Bytes of tensor storage alive on this device (CPU: in every thread) now, and the most
    /// since the last [`reset_tensor_peak`](Self::reset_tensor_peak).
    pub fn tensor_bytes(&self) -> (u64, u64) {
        match self {
            Device::Cpu => crate::cpu::live::bytes(),
            Device::Gpu(ctx) => {
                let c = ctx.counters();
                (c.tensor_bytes, c.peak_tensor_bytes)
            }
        }
    }

    /// Starts the peak of [`tensor_bytes`](Self::tensor_bytes) over from what is alive now.
    pub fn reset_tensor_peak(&self) {
        match self {
            Device::Cpu => crate::cpu::live::reset_peak(),
            Device::Gpu(ctx) => ctx.reset_peak(),
        }
    }

    /// The process-wide default GPU: the best adapter as chosen by [`AdapterRequest::from_env`]
    /// (`GANLAB_BACKEND`, `GANLAB_ADAPTER`). Created once and shared, so tensors made by
    /// different callers can meet in one op.
    pub fn gpu() -> Result<Device> {
        static DEFAULT: OnceLock<std::result::Result<Arc<GpuContext>, String>> = OnceLock::new();
        let ctx = DEFAULT.get_or_init(|| {
            GpuContext::new(&AdapterRequest::from_env())
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        match ctx {
            Ok(ctx) => Ok(Device::Gpu(ctx.clone())),
            Err(msg) => Err(crate::Error::Gpu(msg.clone())),
        }
    }

    /// Unit tests' GPU: the default one with outputs poisoned (NaN) first, or `None` where
    /// there is none and `GANLAB_ALLOW_NO_GPU=1` allows that (as in the integration tests).
    #[cfg(test)]
    pub(crate) fn test_gpu() -> Option<Arc<GpuContext>> {
        match Device::gpu() {
            Ok(Device::Gpu(ctx)) => {
                ctx.set_poison(true);
                Some(ctx)
            }
            Ok(Device::Cpu) => None,
            Err(_) if std::env::var("GANLAB_ALLOW_NO_GPU").as_deref() == Ok("1") => None,
            Err(e) => panic!("{e}\n(set GANLAB_ALLOW_NO_GPU=1 to run the CPU-only tests)"),
        }
    }

    /// A new GPU context on the adapter `req` selects (not shared with `Device::gpu()`).
    pub fn gpu_with(req: &AdapterRequest) -> Result<Device> {
        Ok(Device::Gpu(Arc::new(GpuContext::new(req)?)))
    }

    /// `"cpu"` or `"gpu"`, as the CLI spells them.
    pub fn from_name(name: &str) -> Result<Device> {
        match name {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Device::gpu(),
            other => Err(crate::Error::Invalid(format!(
                "unknown device \"{other}\" (expected cpu or gpu)"
            ))),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    pub fn same(&self, other: &Device) -> bool {
        match (self, other) {
            (Device::Cpu, Device::Cpu) => true,
            (Device::Gpu(a), Device::Gpu(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Submits recorded GPU work and waits for it; a no-op on the CPU.
    pub fn synchronize(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.synchronize(),
        }
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Gpu(ctx) => write!(f, "gpu({})", ctx.info().name),
        }
    }
}

/// The first `n` values of a GPU buffer (unit tests that dispatch kernels directly).
#[cfg(test)]
pub(crate) fn gpu_values(buffer: GpuBuffer, n: usize) -> Result<Vec<f32>> {
    let storage = std::rc::Rc::new(crate::tensor::Storage::Gpu(buffer));
    crate::Tensor::from_storage(storage, vec![n]).to_vec()
}
