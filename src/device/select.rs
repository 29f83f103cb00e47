//! Adapter choice: the best hardware adapter by default, overridable by backend and name.

use super::kernel::Matrices;
use crate::{Error, Result};
use wgpu::{Backends, DeviceType};

/// Which adapter to open and how. `from_env` reads `GANLAB_BACKEND` (vulkan, metal, dx12, or
/// noop: wgpu's backend that validates and tracks every call but runs no kernel, for measuring
/// host overhead; never chosen otherwise), `GANLAB_ADAPTER` (a case-insensitive substring of
/// the adapter name), `GANLAB_PARAMS` (`arena` forces the params arena where immediates exist),
/// `GANLAB_POOL_MB` (the buffer pool's cap; by default 3/4 of the device memory) and
/// `GANLAB_MATRICES` (see [`MatrixRequest`]).
#[derive(Clone, Debug, Default)]
pub struct AdapterRequest {
    pub backend: Option<String>,
    pub name: Option<String>,
    pub params: Option<String>,
    pub pool_bytes: Option<u64>,
    /// `GANLAB_MATRICES`, read as a [`MatrixRequest`] when the context opens.
    pub matrices: Option<String>,
}

/// Whether GEMMs run on cooperative matrices (tensor cores). Off by default: the path has not
/// yet been measured on hardware. `GANLAB_MATRICES=on` uses the adapter's (an error where it
/// offers none); `emulate` (and `emulate16`) builds the same kernels with plain WGSL standing in
/// for 8x8 (16x16) fragments, to test their tiling on any adapter with subgroups, with f16
/// inputs where the adapter has f16 unless the value ends in `-f32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatrixRequest {
    #[default]
    Off,
    On,
    Emulate {
        size: u32,
        /// f16 inputs where the adapter has f16.
        half: bool,
    },
}

impl MatrixRequest {
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Ok(MatrixRequest::Off),
            "on" | "1" => Ok(MatrixRequest::On),
            other => {
                let (size, half) = match other.strip_suffix("-f32") {
                    Some(rest) => (rest, false),
                    None => (other, true),
                };
                let size = match size {
                    "emulate" | "emulate8" => 8,
                    "emulate16" => 16,
                    _ => {
                        return Err(Error::Invalid(format!(
                            "GANLAB_MATRICES=\"{other}\" (expected off, on, emulate or \
                             emulate16, the last two optionally with -f32)"
                        )))
                    }
                };
                Ok(MatrixRequest::Emulate { size, half })
            }
        }
    }

    /// The fragments a context on `adapter` builds its matrix kernels for, if any: on
    /// hardware the first shape the adapter offers of 16x16 f16, 8x8 f32, 8x8 f16 and
    /// 16x16 f32 (square, f32 sums); emulated, f16 inputs where the adapter has f16.
    pub(crate) fn resolve(self, adapter: &wgpu::Adapter) -> Result<Option<Matrices>> {
        let info = adapter.get_info();
        let features = adapter.features();
        let half = features.contains(wgpu::Features::SHADER_F16);
        if self == MatrixRequest::Off {
            return Ok(None);
        }
        // The 16 fragments of a tile go round the workgroup's 256 / size subgroups, at most
        // four each.
        if !features.contains(wgpu::Features::SUBGROUP) || info.subgroup_max_size > 64 {
            return Err(Error::Invalid(format!(
                "cooperative matrices need subgroups of at most 64 invocations; {} has {}",
                info.name,
                match features.contains(wgpu::Features::SUBGROUP) {
                    true => format!("up to {}", info.subgroup_max_size),
                    false => "none".into(),
                }
            )));
        }
        if let MatrixRequest::Emulate { size, half: wanted } = self {
            return Ok(Some(Matrices {
                size,
                half: half && wanted,
                emulated: true,
            }));
        }
        if !features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
            return Err(Error::Invalid(format!(
                "GANLAB_MATRICES=on, but wgpu offers no cooperative matrices on {} (it \
                 reports these shapes: {}; Vulkan also needs VK_KHR_cooperative_matrix and the \
                 Vulkan memory model)",
                info.name,
                describe_shapes(&adapter.cooperative_matrix_properties())
            )));
        }
        use wgpu::CooperativeScalarType::{F16, F32};
        let offered = adapter.cooperative_matrix_properties();
        let wanted = [(16, F16), (8, F32), (8, F16), (16, F32)];
        let pick = wanted.into_iter().find(|&(size, ab)| {
            (ab == F32 || half)
                && offered.iter().any(|c| {
                    c.m_size == size
                        && c.n_size == size
                        && c.k_size == size
                        && c.ab_type == ab
                        && c.cr_type == F32
                })
        });
        match pick {
            Some((size, ab)) => Ok(Some(Matrices {
                size,
                half: ab == F16,
                emulated: false,
            })),
            None => Err(Error::Invalid(format!(
                "GANLAB_MATRICES=on, but {} offers no cooperative-matrix shape ganlab uses \
                 (16x16 or 8x8 with f32 sums; it offers {})",
                info.name,
                describe_shapes(&offered)
            ))),
        }
    }
}

/// Cooperative-matrix shapes as `MxNxK A->C` (f32 sums of f16 products: `16x16x16 F16->F32`),
/// or "none".
pub(crate) fn describe_shapes(shapes: &[wgpu::CooperativeMatrixProperties]) -> String {
    if shapes.is_empty() {
        return "none".into();
    }
    let shapes: Vec<String> = shapes
        .iter()
        .map(|c| {
            format!(
                "{}x{}x{} {:?}->{:?}",
                c.m_size, c.n_size, c.k_size, c.ab_type, c.cr_type
            )
        })
        .collect();
    shapes.join(", ")
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
            matrices: get("GANLAB_MATRICES"),
        }
    }

    pub(crate) fn matrix_request(&self) -> Result<MatrixRequest> {
        self.matrices
            .as_deref()
            .map_or(Ok(MatrixRequest::Off), MatrixRequest::parse)
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

#[cfg(test)]
mod tests {
    use super::{AdapterRequest, MatrixRequest};

    #[test]
    fn matrix_requests_read_as_documented_and_a_typo_is_an_error() {
        let read = |s: Option<&str>| {
            AdapterRequest {
                matrices: s.map(Into::into),
                ..Default::default()
            }
            .matrix_request()
        };
        assert_eq!(read(None).unwrap(), MatrixRequest::Off);
        assert_eq!(read(Some("ON")).unwrap(), MatrixRequest::On);
        let emulate = |size, half| MatrixRequest::Emulate { size, half };
        assert_eq!(read(Some("emulate")).unwrap(), emulate(8, true));
        assert_eq!(read(Some("emulate16")).unwrap(), emulate(16, true));
        assert_eq!(read(Some("emulate16-f32")).unwrap(), emulate(16, false));
        let err = read(Some("yes")).unwrap_err().to_string();
        assert!(
            err.contains("GANLAB_MATRICES=\"yes\"") && err.contains("emulate16"),
            "{err}"
        );
    }
}
