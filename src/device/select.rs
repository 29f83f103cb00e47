//! Adapter choice: the best hardware adapter by default, overridable by backend and name.

use crate::{Error, Result};
use wgpu::{Backends, DeviceType};

/// Which adapter to open and how. `from_env` reads `GANLAB_BACKEND` (vulkan, metal, dx12, or
/// noop: wgpu's backend that validates and tracks every call but runs no kernel, for measuring
/// host overhead; never chosen otherwise), `GANLAB_ADAPTER` (a case-insensitive substring of
/// the adapter name), `GANLAB_PARAMS` (`arena` forces the params arena where immediates exist)
/// and `GANLAB_POOL_MB` (the buffer pool's cap; by default 3/4 of the device memory).
#[derive(Clone, Debug, Default)]
pub struct AdapterRequest {
    pub backend: Option<String>,
    pub name: Option<String>,
    pub params: Option<String>,
    pub pool_bytes: Option<u64>,
}

impl AdapterRequest {
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        AdapterRequest {
            backend: get("GANLAB_BACKEND"),
            name: get("GANLAB_ADAPTER"),
            params: get("GANLAB_PARAMS"),
            pool_bytes: get("GANLAB_POOL_MB")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|mb| mb << 20),
        }
    }

    pub(crate) fn backends(&self) -> Result<Backends> {
        Ok(
            match self
                .backend
                .as_deref()
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None => Backends::VULKAN | Backends::METAL | Backends::DX12,
                Some("vulkan") => Backends::VULKAN,
                Some("metal") => Backends::METAL,
                Some("dx12") => Backends::DX12,
                Some("noop") => Backends::NOOP,
                Some(other) => {
                    return Err(Error::Invalid(format!(
                        "unknown GPU backend \"{other}\" (expected vulkan, metal, dx12 or noop)"
                    )))
                }
            },
        )
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = &self.backend {
            parts.push(format!("backend {b}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name containing \"{n}\""));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" matching {}", parts.join(" and "))
        }
    }

    /// Picks an adapter: filtered by name, then ranked discrete > integrated > virtual > software.
    pub(crate) fn choose(&self, instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
        let adapters = pollster::block_on(instance.enumerate_adapters(self.backends()?));
        let wanted = self.name.as_ref().map(|n| n.to_lowercase());
        adapters
            .into_iter()
            .filter(|a| {
                wanted
                    .as_ref()
                    .is_none_or(|w| a.get_info().name.to_lowercase().contains(w))
            })
            .min_by_key(|a| rank(a.get_info().device_type))
            .ok_or_else(|| Error::NoAdapter {
                filter: self.describe(),
            })
    }
}

fn rank(t: DeviceType) -> u8 {
    match t {
        DeviceType::DiscreteGpu => 0,
        DeviceType::IntegratedGpu => 1,
        DeviceType::VirtualGpu => 2,
        DeviceType::Other => 3,
        DeviceType::Cpu => 4,
    }
}

pub(crate) fn new_instance(backends: Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    if backends.contains(Backends::NOOP) {
        // Real limits: the backend's "maximally permissive" defaults overflow wgpu-core's
        // validation. Immediates as Vulkan guarantees them, so it measures the usual path.
        desc.backend_options.noop = wgpu::NoopBackendOptions {
            enable: true,
            // Buffers as large as a data-centre GPU takes (wgpu's default 128 MiB binding is a
            // portability floor, not what the memory estimate of a big step should hit).
            limits: Some(wgpu::Limits {
                max_immediate_size: crate::device::MAX_PARAMS_BYTES as u32,
                max_storage_buffer_binding_size: 1 << 31,
                max_buffer_size: 1 << 32,
                ..wgpu::Limits::default()
            }),
            features: Some(wgpu::Features::IMMEDIATES),
            ..Default::default()
        };
    }
    wgpu::Instance::new(desc)
}

/// Every adapter the enabled backends can see, best first.
pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    let backends = Backends::VULKAN | Backends::METAL | Backends::DX12;
    let instance = new_instance(backends);
    let mut infos: Vec<_> = pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| a.get_info())
        .collect();
    infos.sort_by_key(|i| rank(i.device_type));
    infos
}
