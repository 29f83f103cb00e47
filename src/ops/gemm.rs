//! The GPU launcher shared by every GEMM-shaped kernel: `shaders/gemm.wgsl` holds the tiling,
//! and a mode supplies how A and B are read and C is written (plain matrices for matmul,
//! implicit im2col views for convolution and its gradients).

use crate::device::{GpuBuffer, GpuContext, Params};
use crate::{Error, Result};

/// Tile of C per workgroup (must match BM/BN in gemm.wgsl).
const TILE: usize = 64;

pub(crate) struct GemmMode {
    pub name: &'static str,
    /// WGSL defining `Params`, `load_a`, `load_b`, `store`.
    pub code: &'static str,
    /// WGSL bool expressions: is A contiguous along K, is B contiguous along N.
    pub a_k_fast: &'static str,
    pub b_n_fast: &'static str,
}

/// Records C (m x n per batch) = A (m x k) * B (k x n) for `batch` batches. `params` must
/// start with m, n, k, as every mode's `Params` does.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_gemm(
    ctx: &GpuContext,
    mode: &GemmMode,
    params: Params,
    m: usize,
    n: usize,
    batch: usize,
    a: &GpuBuffer,
    b: &GpuBuffer,
    c: &GpuBuffer,
) -> Result<()> {
    let pipeline = ctx.pipeline(&format!("gemm_{}", mode.name), "main", || {
        include_str!("../../shaders/gemm.wgsl")
            .replace("__MODE_CODE__", mode.code)
            .replace("__A_K_FAST__", mode.a_k_fast)
            .replace("__B_N_FAST__", mode.b_n_fast)
    })?;
    let max = ctx.limits().max_compute_workgroups_per_dimension as usize;
    let groups = [n.div_ceil(TILE), m.div_ceil(TILE), batch];
    if groups.iter().any(|&g| g > max) {
        return Err(Error::TooLarge {
            bytes: *groups.iter().max().unwrap_or(&0) as u64,
            limit: max as u64,
            limit_name: "GEMM workgroup grid (tiles or batches per dimension)",
        });
    }
    let groups = groups.map(|g| g as u32);
    ctx.launch(&pipeline, &params, &[a.raw(), b.raw(), c.raw()], groups)
}
