//! Adapter choice: the best hardware adapter by default, overridable by backend and name.

use crate::{Error, Result};
use wgpu::{Backends, DeviceType};

/// Which adapter to open. `from_env` reads `GANLAB_BACKEND` (vulkan, metal, dx12) and
/// `GANLAB_ADAPTER` (a case-insensitive substring of the adapter name).
#[derive(Clone, Debug, Default)]
pub struct AdapterRequest {
    pub backend: Option<String>,
    pub name: Option<String>,
}

impl AdapterRequest {
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        AdapterRequest {
            backend: get("GANLAB_BACKEND"),
            name: get("GANLAB_ADAPTER"),
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
                Some(other) => {
                    return Err(Error::Invalid(format!(
                        "unknown GPU backend \"{other}\" (expected vulkan, metal or dx12)"
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
