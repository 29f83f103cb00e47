//! Every kernel the engine can generate, in both params modes, goes through naga as wgpu
//! would on each backend: WGSL validated, then translated to SPIR-V (Vulkan), MSL (Metal) and
//! HLSL (DX12). A translation bug then shows here, not on a Metal or DX12 user's machine.

use ganlab::device::{device_kernels, KernelSource, Matrices, ParamsMode};
use naga::back::{hlsl, msl, spv};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use std::collections::HashSet;

fn all_kernels() -> Vec<&'static dyn KernelSource> {
    let mut all: Vec<_> = device_kernels().collect();
    all.extend(ganlab::ops::kernels());
    all.extend(ganlab::optim::kernels());
    all
}

/// The fragments a matrix kernel is translated for: the two shapes adapters offer (16x16 f16,
/// as on NVIDIA's Vulkan driver, and 8x8 f32, as on Apple's simdgroup matrices) and their
/// emulation in plain WGSL.
const MATRICES: [Matrices; 3] = [
    Matrices {
        size: 16,
        half: true,
        emulated: false,
    },
    Matrices {
        size: 8,
        half: false,
        emulated: false,
    },
    Matrices {
        size: 16,
        half: true,
        emulated: true,
    },
];

/// Translates one kernel for every backend; the error names the stage that failed. Kernels on
/// cooperative matrices skip HLSL: naga cannot write them for it, and wgpu's DX12 backend does
/// not offer them.
fn translate(
    kernel: &dyn KernelSource,
    mode: ParamsMode,
    matrices: Option<&Matrices>,
) -> Result<(), String> {
    let source = kernel.wgsl(mode, matrices);
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| format!("WGSL: {}", e.emit_to_string(&source)))?;
    // Subgroup operations, f16 and cooperative matrices only where the kernel says it uses
    // them (wgpu then requires their features): a plain kernel that used them would fail here.
    let mut capabilities = Capabilities::IMMEDIATES;
    if kernel.subgroups() {
        capabilities |= Capabilities::SUBGROUP;
    }
    if let Some(m) = matrices.filter(|_| kernel.matrices()) {
        if m.half {
            capabilities |= Capabilities::SHADER_FLOAT16;
        }
        if !m.emulated {
            capabilities |= Capabilities::COOPERATIVE_MATRIX;
        }
    }
    let mut validator = Validator::new(ValidationFlags::all(), capabilities);
    if kernel.subgroups() {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    let info = validator
        .validate(&module)
        .map_err(|e| format!("validation: {}", e.emit_to_string(&source)))?;
    let entry = kernel.entry().to_string();
    let stage = naga::ShaderStage::Compute;

    spv::write_vec(
        &module,
        &info,
        &spv::Options::default(),
        Some(&spv::PipelineOptions {
            shader_stage: stage,
            entry_point: entry.clone(),
        }),
    )
    .map_err(|e| format!("SPIR-V: {e}"))?;

    // Immediates and the runtime-array sizes in buffers past the bindings, as wgpu lays them.
    let slots = kernel.buffers().len() as u8 + 1;
    let mut msl_options = msl::Options {
        lang_version: (2, 4),
        fake_missing_bindings: true,
        ..Default::default()
    };
    msl_options.per_entry_point_map.insert(
        entry.clone(),
        msl::EntryPointResources {
            immediates_buffer: Some(slots),
            sizes_buffer: Some(slots + 1),
            ..Default::default()
        },
    );
    msl::write_string(
        &module,
        &info,
        &msl_options,
        &msl::PipelineOptions {
            entry_point: Some((stage, entry.clone())),
            ..Default::default()
        },
    )
    .map_err(|e| format!("MSL: {e}"))?;
    if matrices.is_some_and(|m| kernel.matrices() && !m.emulated) {
        return Ok(());
    }

    let hlsl_options = hlsl::Options {
        shader_model: hlsl::ShaderModel::V6_0,
        fake_missing_bindings: true,
        immediates_target: Some(hlsl::BindTarget {
            space: 0,
            register: 0,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut out = String::new();
    hlsl::Writer::new(
        &mut out,
        &hlsl_options,
        &hlsl::PipelineOptions {
            entry_point: Some((stage, entry)),
        },
    )
    .write(&module, &info, None)
    .map_err(|e| format!("HLSL: {e}"))?;
    Ok(())
}

#[test]
fn every_kernel_translates_for_vulkan_metal_and_dx12_in_both_params_modes() {
    let kernels = all_kernels();
    let mut failures = Vec::new();
    for kernel in &kernels {
        let matrices: Vec<Option<&Matrices>> = match kernel.matrices() {
            true => MATRICES.iter().map(Some).collect(),
            false => vec![None],
        };
        for mode in [ParamsMode::Immediate, ParamsMode::Arena] {
            for &m in &matrices {
                if let Err(e) = translate(*kernel, mode, m) {
                    failures.push(format!(
                        "{}#{} ({mode:?}, {m:?}): {e}",
                        kernel.name(),
                        kernel.entry()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_kernel_list_covers_every_family_once() {
    let kernels = all_kernels();
    let mut seen = HashSet::new();
    for k in &kernels {
        assert!(
            seen.insert((k.name(), k.entry())),
            "{}#{} declared twice",
            k.name(),
            k.entry()
        );
    }
    // 15 unary, 9 x 2 binary, 2 x 3 reductions (per workgroup, plain and with subgroups, and
    // per thread), 4 convolution modes (forward, input gradient at stride 1 and by stride
    // phases, weight gradient), 3 upsampling-convolution phase modes and matmul (each tiled,
    // wide, on matrices and thin, whole or split-K, the thin ones also with subgroups, and the
    // split's reduce, plain and with subgroups; both conv forwards and matmul also tiled, wide,
    // on matrices, thin and reduce with a bias in the store, thin and reduce also with
    // subgroups), the phase
    // fold and im2col, strided copy, 2 dropout, 2 embedding, 2 resampling, 4 batch norm, 2 BCE,
    // fill and flat copy, 3 optimisers (their multi-tensor kernels, with the clip).
    let expected = 15 + 18 + 6 + 8 * 12 + 3 * 7 + 1 + 1 + 1 + 2 + 2 + 2 + 4 + 2 + 2 + 3;
    assert_eq!(kernels.len(), expected);
}

#[test]
fn a_broken_kernel_is_caught() {
    // The check itself can fail: WGSL that does not type-check is reported, naming the stage.
    static BROKEN: ganlab::device::Kernel<Broken> = ganlab::device::Kernel::new(
        "broken",
        &[ganlab::device::write("y")],
        &["@compute @workgroup_size(WG)\nfn main() { y[0] = p.n; }\n"],
    );
    ganlab::kernel_params! { struct Broken { n: u32 } }
    let err = translate(&BROKEN, ParamsMode::Immediate, None).unwrap_err();
    assert!(
        err.starts_with("WGSL") || err.starts_with("validation"),
        "{err}"
    );
}
