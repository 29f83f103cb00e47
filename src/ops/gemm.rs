//! The GPU launcher shared by every GEMM-shaped kernel: `shaders/gemm.wgsl` holds the tiling,
//! and a mode supplies how A and B are read and C is written (plain matrices for matmul,
//! implicit im2col views for convolution and its gradients). A mode is a kernel declaration
//! whose source is the mode's WGSL followed by [`GEMM_CORE`].

use crate::device::{read, write, Binding, GpuBuffer, GpuContext, Kernel, KernelParams};
use crate::{Error, Result};

/// Tile of C per workgroup (must match BM/BN in gemm.wgsl).
const TILE: usize = 64;

/// A, B, C: every mode binds these.
pub(crate) const GEMM_BUFFERS: &[Binding] = &[read("a"), read("b"), write("c")];

/// The tiled loop; a mode defines `load_a`, `load_b`, `store`, `a_k_fast` and `b_n_fast`, and
/// its params start with m, n, k.
pub(crate) const GEMM_CORE: &str = include_str!("../../shaders/gemm.wgsl");

/// Records C (m x n per batch) = A (m x k) * B (k x n) for `batch` batches.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_gemm<P: KernelParams>(
    ctx: &GpuContext,
    mode: &'static Kernel<P>,
    params: &P,
    m: usize,
    n: usize,
    batch: usize,
    a: &GpuBuffer,
    b: &GpuBuffer,
    c: &GpuBuffer,
) -> Result<()> {
    let max = ctx.limits().max_compute_workgroups_per_dimension as usize;
    let groups = [n.div_ceil(TILE), m.div_ceil(TILE), batch];
    if groups.iter().any(|&g| g > max) {
        return Err(Error::TooLarge {
            bytes: *groups.iter().max().unwrap_or(&0) as u64,
            limit: max as u64,
            limit_name: "GEMM workgroup grid (tiles or batches per dimension)",
        });
    }
    ctx.dispatch(mode, params, &[a, b, c], groups.map(|g| g as u32))
}
