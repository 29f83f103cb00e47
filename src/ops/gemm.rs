//! The GPU launcher shared by every GEMM-shaped kernel: `shaders/gemm.wgsl` holds the tiling,
//! and a mode supplies how A and B are read and C is written (plain matrices for matmul,
//! implicit im2col views for convolution and its gradients).
//!
//! Each mode comes as a set of kernels (`GemmKernels`): 64x64 tiles, 64x128 ("wide") tiles
//! and the thin kernel, each whole or as the first pass of a split-K, for products whose grid
//! is too small to fill a GPU or whose K is long (convolution weight gradients: a handful of
//! output tiles, K = batch x pixels). The split pass gives each of S workgroup layers one
//! slice of K and writes its partial sums to a scratch buffer; the reduce kernel adds the S
//! partials in a fixed order and stores through the mode, so results are bit-identical from
//! run to run (WGSL has no float atomics). [`plan`] picks the kernel and the split.
//!
//! Products with at most [`THIN`] rows or columns (a convolution with one output channel, a
//! dense layer with one output) run the thin kernel (`shaders/gemm_thin.wgsl`) instead of the
//! tiles, which would leave 60 of every 64 rows or columns idle; it splits K the same way.

use crate::device::{read, write, Binding, GpuBuffer, GpuContext, Kernel, KernelParams};
use crate::device::{KernelSource, Matrices};
use crate::{Error, Result};
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// Tile of C per workgroup and K per step (must match BM/BN/BK in gemm.wgsl and the tile
/// fragments below).
pub const TILE: usize = 64;
pub const BK: usize = 16;
/// Columns of the wide tile (64 x 128, 4 x 8 per thread).
pub const WIDE_TILE_N: usize = 128;
/// A product with at most this many rows (or else columns) is thin; the thin kernel gives
/// each workgroup this many of its wide side's indices (THIN and WIDE in gemm_thin.wgsl).
pub const THIN: usize = 4;
pub const THIN_WIDE: usize = 64;
/// A launch with fewer workgroups than this leaves most of a 100+ SM GPU idle...
pub const MIN_WORKGROUPS: usize = 256;
/// ...and one whose workgroups loop over more K-steps than this serialises on a few of them.
pub const MAX_K_STEPS: usize = 256;
/// Workgroups per grid dimension: WebGPU's default limit. Grid layers (batch x splits) a split
/// may reach, and tiles per side the matrix fragments may take.
const MAX_GRID: usize = 65_535;
/// A product below this many FLOPs takes microseconds however it is launched: it is only
/// split when its K is too long, never for the reduce kernel's extra launch.
pub const SMALL_FLOPS: f64 = 50e6;

/// A, B, C: every plain mode binds these.
pub(crate) const GEMM_BUFFERS: &[Binding] = &[read("a"), read("b"), write("c")];
/// The split-K pair also binds the partial sums (the same list for both, so they share a
/// bind group).
pub(crate) const SPLIT_BUFFERS: &[Binding] = &[read("a"), read("b"), write("c"), write("partial")];
/// With a bias folded into the store.
pub(crate) const BIAS_BUFFERS: &[Binding] = &[read("a"), read("b"), write("c"), read("bias")];
pub(crate) const SPLIT_BIAS_BUFFERS: &[Binding] = &[
    read("a"),
    read("b"),
    write("c"),
    write("partial"),
    read("bias"),
];

/// The tiled loop; a mode defines `load_a`, B's reads (`BCol`, `b_col`, `load_b_at`), `store`,
/// `a_k_fast`, `b_n_fast` and `k_limit(z)` (product z's K, at most p.k: a batch of products
/// of different depths), and its params start with m, n, k and hold k_split and splits.
pub(crate) const GEMM_CORE: &str = include_str!("../../shaders/gemm.wgsl");
/// The panels' staging into registers, shared by the tiled and matrix cores.
pub(crate) const GEMM_STAGE: &str = include_str!("../../shaders/gemm_stage.wgsl");
/// The tiled loop on cooperative-matrix fragments (its fragments from [`fragment_ops`]).
pub(crate) const MATRIX_CORE: &str = include_str!("../../shaders/gemm_matrix.wgsl");
/// The tile's columns and each thread's: the plain 64x64 tile and the wide 64x128 one.
pub(crate) const TILE_64: &str = "const BN: u32 = 64u;\nconst TN: u32 = 4u;\n";
pub(crate) const TILE_WIDE: &str = "const BN: u32 = 128u;\nconst TN: u32 = 8u;\n";
/// The whole of K, stored through the mode (after the epilogue).
pub(crate) const NO_SPLIT: &str = "fn batch_of(layer: u32) -> u32 {
    return layer;
}
fn k_begin(layer: u32) -> u32 {
    return 0u;
}
fn k_end(layer: u32) -> u32 {
    return k_limit(layer);
}
fn emit(layer: u32, row: u32, col: u32, v: f32) {
    store(layer, row, col, epilogue(row, col, v));
}
";
/// What happens to a finished sum before it is stored: nothing, or a per-row bias (a
/// convolution's per-channel bias, folded into the store instead of a broadcast add) and then
/// the activation the params name (`act`, `act_alpha`; none is 0).
pub(crate) const NO_EPILOGUE: &str = "fn epilogue(row: u32, col: u32, v: f32) -> f32 {
    return v;
}
";
pub(crate) const ROW_BIAS: &str = "fn epilogue(row: u32, col: u32, v: f32) -> f32 {
    return activate(v + bias[row]);
}
";
/// A per-column bias (a linear layer's, with samples as rows).
pub(crate) const COL_BIAS: &str = "fn epilogue(row: u32, col: u32, v: f32) -> f32 {
    return activate(v + bias[col]);
}
";
/// Layer l = batch * splits + slice of the grid takes K from slice * k_split (none past its
/// product's K); its sums go to partial[l].
pub(crate) const SPLIT: &str = "fn batch_of(layer: u32) -> u32 {
    return layer / p.splits;
}
fn k_begin(layer: u32) -> u32 {
    return (layer % p.splits) * p.k_split;
}
fn k_end(layer: u32) -> u32 {
    return min(k_limit(batch_of(layer)), (layer % p.splits + 1u) * p.k_split);
}
fn emit(layer: u32, row: u32, col: u32, v: f32) {
    partial[(layer * p.m + row) * p.n + col] = v;
}
";
pub(crate) const REDUCE: &str = include_str!("../../shaders/gemm_reduce.wgsl");
/// The split-K reduce with a workgroup per element and subgroup sums, for many slices of few
/// outputs.
pub(crate) const REDUCE_SUBGROUP: &str = include_str!("../../shaders/gemm_reduce_subgroup.wgsl");
/// A split-K reduce of at least this many slices over fewer than this many outputs takes a
/// workgroup per output where the device has subgroups: a thread per output would fill under
/// 256 workgroups and loop over every slice alone.
pub const WIDE_REDUCE_SPLITS: usize = 8;
pub const WIDE_REDUCE_OUTPUTS: usize = MIN_WORKGROUPS * 256;
pub(crate) const THIN_CORE: &str = include_str!("../../shaders/gemm_thin.wgsl");
/// The thin kernel's entry point and lane reduction: a shared-memory tree, or subgroupAdd
/// where the device has subgroups.
pub(crate) const THIN_PLAIN: &str = include_str!("../../shaders/gemm_thin_plain.wgsl");
pub(crate) const THIN_SUBGROUP: &str = include_str!("../../shaders/gemm_thin_subgroup.wgsl");

/// The matrix core's fragment types and operations for `m`: `frag_in` (A and B's type in
/// shared memory), `frag_a`, `frag_b`, `frag_c` and loads from the panels `As`, `Bs` and the
/// tile `Cs`, the multiply-add and the store into `Cs`. On hardware they are wgpu's
/// cooperative matrices (row-major loads and stores). Emulated, a fragment is its offset in
/// shared memory and the accumulators live in the tile itself: the subgroup's invocations
/// share out a fragment's elements and add their products in place, in f32 (the same sums in
/// plain WGSL).
pub(crate) fn fragment_ops(m: &Matrices) -> String {
    let (f, input) = (m.size, if m.half { "f16" } else { "f32" });
    let mut s = format!("const FRAG: u32 = {f}u;\nalias frag_in = {input};\n");
    if !m.emulated {
        s.push_str(&format!(
            "alias frag_a = coop_mat{f}x{f}<{input}, A>;
alias frag_b = coop_mat{f}x{f}<{input}, B>;
alias frag_c = coop_mat{f}x{f}<f32, C>;
fn frag_load_a(off: u32) -> frag_a {{
    return coopLoadT<frag_a>(&As[off], PITCH_A);
}}
fn frag_load_b(off: u32) -> frag_b {{
    return coopLoadT<frag_b>(&Bs[off], PITCH_B);
}}
fn frag_load_c(off: u32) -> frag_c {{
    return coopLoadT<frag_c>(&Cs[off], PITCH_C);
}}
fn frag_mma(a: frag_a, b: frag_b, c: frag_c) -> frag_c {{
    return coopMultiplyAdd(a, b, c);
}}
fn frag_store(c: frag_c, off: u32) {{
    coopStoreT(c, &Cs[off], PITCH_C);
}}
fn frag_setup(lane: u32, lanes: u32) {{}}
fn frag_dealers(subgroups: u32) -> u32 {{
    return subgroups;
}}
"
        ));
        return s;
    }
    // Dealt over at most 8 (8x8) or 4 (16x16) subgroups, as on NVIDIA (two fragments each) and
    // on 64-wide subgroups (four each): lavapipe's 8-wide subgroups would leave one each.
    s.push_str(&format!(
        "fn frag_dealers(subgroups: u32) -> u32 {{\n    return min(subgroups, {}u);\n}}\n",
        if f == 8 { 8 } else { 4 }
    ));
    s.push_str(
        "alias frag_a = u32;
alias frag_b = u32;
alias frag_c = u32;
var<private> frag_lane: u32;
var<private> frag_lanes: u32;
fn frag_setup(lane: u32, lanes: u32) {
    frag_lane = lane;
    frag_lanes = lanes;
}
fn frag_load_a(off: u32) -> frag_a {
    return off;
}
fn frag_load_b(off: u32) -> frag_b {
    return off;
}
fn frag_load_c(off: u32) -> frag_c {
    return off;
}
fn frag_mma(a: frag_a, b: frag_b, c: frag_c) -> frag_c {
    for (var i = frag_lane; i < FRAG * FRAG; i += frag_lanes) {
        let at = c + (i / FRAG) * PITCH_C + i % FRAG;
        var sum = Cs[at];
        for (var k = 0u; k < FRAG; k++) {
            sum += f32(As[a + (i / FRAG) * PITCH_A + k]) * f32(Bs[b + k * PITCH_B + i % FRAG]);
        }
        Cs[at] = sum;
    }
    return c;
}
fn frag_store(c: frag_c, off: u32) {
    for (var i = frag_lane; i < FRAG * FRAG; i += frag_lanes) {
        Cs[off + (i / FRAG) * PITCH_C + i % FRAG] = Cs[c + (i / FRAG) * PITCH_C + i % FRAG];
    }
}
",
    );
    s
}

/// A GEMM mode's params: split-K needs to set its slice of K, the number of slices and of
/// products (the batch) its reduce adds up.
pub(crate) trait GemmParams: KernelParams {
    fn set_split(&mut self, k_split: u32, splits: u32, products: u32);
}

/// One mode's kernels: the 64x64 tiles, the wide 64x128 tiles and the thin kernel, each whole
/// or as the first half of a split-K (whose reduce kernel is shared); where the mode takes a
/// bias, the kernels that store (tiled, wide, thin, reduce) again with the bias added in the
/// store.
pub(crate) struct GemmKernels<P: KernelParams> {
    pub plain: Kernel<P>,
    pub split: Kernel<P>,
    pub wide: Kernel<P>,
    pub wide_split: Kernel<P>,
    /// The tiles on cooperative-matrix fragments, where the context has them.
    pub matrix: Kernel<P>,
    pub matrix_split: Kernel<P>,
    pub thin: Kernel<P>,
    pub thin_split: Kernel<P>,
    /// The thin kernels with subgroup operations.
    pub thin_sg: Kernel<P>,
    pub thin_split_sg: Kernel<P>,
    pub reduce: Kernel<P>,
    /// The reduce with a workgroup per output and subgroup sums.
    pub reduce_sg: Kernel<P>,
    pub bias: Option<BiasKernels<P>>,
    /// An operand may be a gradient (a backward mode, or matmul, which serves both ways):
    /// such products stay off f16 fragments, where gradients below f16's range (6e-8) would
    /// flush to zero with no loss scaling to lift them.
    pub gradients: bool,
}

impl<P: KernelParams> GemmKernels<P> {
    /// The same kernels, marked as reading gradients.
    pub(crate) const fn reading_gradients(self) -> Self {
        GemmKernels {
            gradients: true,
            ..self
        }
    }
}

/// The kernels of a mode that store C, again with a bias (and activation) in the store.
pub(crate) struct BiasKernels<P: KernelParams> {
    pub tiled: Kernel<P>,
    pub wide: Kernel<P>,
    pub matrix: Kernel<P>,
    pub thin: Kernel<P>,
    pub thin_sg: Kernel<P>,
    pub reduce: Kernel<P>,
    pub reduce_sg: Kernel<P>,
}

impl<P: KernelParams> BiasKernels<P> {
    /// The kernel that runs `variant` whole (the thin one with subgroups where `subgroups`).
    fn body(&self, variant: Variant, subgroups: bool) -> &Kernel<P> {
        match (variant, subgroups) {
            (Variant::Tiled, _) => &self.tiled,
            (Variant::Wide, _) => &self.wide,
            (Variant::Matrix, _) => &self.matrix,
            (Variant::Thin, false) => &self.thin,
            (Variant::Thin, true) => &self.thin_sg,
        }
    }
}

impl<P: KernelParams> GemmKernels<P> {
    pub(crate) fn all(&'static self) -> Vec<&'static dyn KernelSource> {
        let mut all: Vec<&'static dyn KernelSource> = vec![
            &self.plain,
            &self.split,
            &self.wide,
            &self.wide_split,
            &self.matrix,
            &self.matrix_split,
            &self.thin,
            &self.thin_split,
            &self.thin_sg,
            &self.thin_split_sg,
            &self.reduce,
            &self.reduce_sg,
        ];
        if let Some(b) = &self.bias {
            all.extend([
                &b.tiled as &dyn KernelSource,
                &b.wide,
                &b.matrix,
                &b.thin,
                &b.thin_sg,
                &b.reduce,
                &b.reduce_sg,
            ]);
        }
        all
    }

    /// The kernel that runs `variant`, whole (`split` false) or as split-K's first pass, the
    /// thin one with subgroups where `subgroups`.
    fn body(&self, variant: Variant, split: bool, subgroups: bool) -> &Kernel<P> {
        match (variant, split, subgroups) {
            (Variant::Tiled, false, _) => &self.plain,
            (Variant::Tiled, true, _) => &self.split,
            (Variant::Wide, false, _) => &self.wide,
            (Variant::Wide, true, _) => &self.wide_split,
            (Variant::Matrix, false, _) => &self.matrix,
            (Variant::Matrix, true, _) => &self.matrix_split,
            (Variant::Thin, false, false) => &self.thin,
            (Variant::Thin, true, false) => &self.thin_split,
            (Variant::Thin, false, true) => &self.thin_sg,
            (Variant::Thin, true, true) => &self.thin_split_sg,
        }
    }
}

/// Declares a mode's kernels from its WGSL fragments (loads, store); `with row_bias` or
/// `with col_bias` adds the variants that add a per-row or per-column bias in the store, then
/// the activation the params name (the mode's params declare `act` and `act_alpha`).
macro_rules! gemm_kernels {
    ($name:literal, [$($fragment:expr),* $(,)?] $(, with $bias:ident)?) => {{
        use $crate::ops::gemm::*;
        GemmKernels {
            plain: gemm_kernels!(@kernel concat!($name), GEMM_BUFFERS, "main",
                [$($fragment),*], [NO_EPILOGUE, NO_SPLIT, TILE_64, GEMM_CORE, GEMM_STAGE]),
            split: gemm_kernels!(@kernel concat!($name, "_splitk"), SPLIT_BUFFERS, "main",
                [$($fragment),*], [NO_EPILOGUE, SPLIT, TILE_64, GEMM_CORE, GEMM_STAGE]),
            wide: gemm_kernels!(@kernel concat!($name, "_wide"), GEMM_BUFFERS, "main",
                [$($fragment),*], [NO_EPILOGUE, NO_SPLIT, TILE_WIDE, GEMM_CORE, GEMM_STAGE]),
            wide_split: gemm_kernels!(@kernel concat!($name, "_wide_splitk"), SPLIT_BUFFERS,
                "main", [$($fragment),*], [NO_EPILOGUE, SPLIT, TILE_WIDE, GEMM_CORE, GEMM_STAGE]),
            matrix: gemm_kernels!(@kernel concat!($name, "_matrix"), GEMM_BUFFERS, "main",
                [$($fragment),*], [NO_EPILOGUE, NO_SPLIT, MATRIX_CORE, GEMM_STAGE])
                .with_matrices(fragment_ops),
            matrix_split: gemm_kernels!(@kernel concat!($name, "_matrix_splitk"),
                SPLIT_BUFFERS, "main", [$($fragment),*],
                [NO_EPILOGUE, SPLIT, MATRIX_CORE, GEMM_STAGE]).with_matrices(fragment_ops),
            thin: gemm_kernels!(@kernel concat!($name, "_thin"), GEMM_BUFFERS, "thin",
                [$($fragment),*], [NO_EPILOGUE, NO_SPLIT, THIN_PLAIN, THIN_CORE]),
            thin_split: gemm_kernels!(@kernel concat!($name, "_thin_splitk"), SPLIT_BUFFERS,
                "thin", [$($fragment),*], [NO_EPILOGUE, SPLIT, THIN_PLAIN, THIN_CORE]),
            thin_sg: gemm_kernels!(@kernel concat!($name, "_thin_sg"), GEMM_BUFFERS, "thin",
                [$($fragment),*], [NO_EPILOGUE, NO_SPLIT, THIN_SUBGROUP, THIN_CORE])
                .with_subgroups(),
            thin_split_sg: gemm_kernels!(@kernel concat!($name, "_thin_splitk_sg"),
                SPLIT_BUFFERS, "thin", [$($fragment),*],
                [NO_EPILOGUE, SPLIT, THIN_SUBGROUP, THIN_CORE]).with_subgroups(),
            reduce: gemm_kernels!(@kernel concat!($name, "_splitk_reduce"), SPLIT_BUFFERS,
                "reduce_splits", [$($fragment),*], [NO_EPILOGUE, REDUCE]),
            reduce_sg: gemm_kernels!(@kernel concat!($name, "_splitk_reduce_sg"),
                SPLIT_BUFFERS, "reduce_splits", [$($fragment),*],
                [NO_EPILOGUE, REDUCE_SUBGROUP]).with_subgroups(),
            bias: gemm_kernels!(@bias $name, [$($fragment),*] $($bias)?),
            gradients: false,
        }
    }};
    (@kernel $name:expr, $buffers:expr, $entry:literal, [$($fragment:expr),*],
        [$($tail:expr),*]) => {
        $crate::device::Kernel::new($name, $buffers, &[$($fragment,)* $($tail,)*]).entry($entry)
    };
    (@bias $name:literal, [$($fragment:expr),*]) => { None };
    (@bias $name:literal, [$($fragment:expr),*] row_bias) => {
        gemm_kernels!(@with $name, [$($fragment),*], ROW_BIAS)
    };
    (@bias $name:literal, [$($fragment:expr),*] col_bias) => {
        gemm_kernels!(@with $name, [$($fragment),*], COL_BIAS)
    };
    (@with $name:literal, [$($fragment:expr),*], $epilogue:expr) => {{
        use $crate::ops::activation::{ACTIVATE, FUNCTIONS};
        Some(BiasKernels {
            tiled: gemm_kernels!(@kernel concat!($name, "_bias"), BIAS_BUFFERS, "main",
                [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, NO_SPLIT, TILE_64, GEMM_CORE, GEMM_STAGE]),
            wide: gemm_kernels!(@kernel concat!($name, "_wide_bias"), BIAS_BUFFERS, "main",
                [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, NO_SPLIT, TILE_WIDE, GEMM_CORE, GEMM_STAGE]),
            matrix: gemm_kernels!(@kernel concat!($name, "_matrix_bias"), BIAS_BUFFERS, "main",
                [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, NO_SPLIT, MATRIX_CORE, GEMM_STAGE])
                .with_matrices(fragment_ops),
            thin: gemm_kernels!(@kernel concat!($name, "_thin_bias"), BIAS_BUFFERS, "thin",
                [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, NO_SPLIT, THIN_PLAIN, THIN_CORE]),
            thin_sg: gemm_kernels!(@kernel concat!($name, "_thin_sg_bias"), BIAS_BUFFERS,
                "thin", [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, NO_SPLIT, THIN_SUBGROUP, THIN_CORE])
                .with_subgroups(),
            reduce: gemm_kernels!(@kernel concat!($name, "_splitk_reduce_bias"),
                SPLIT_BIAS_BUFFERS, "reduce_splits", [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, REDUCE]),
            reduce_sg: gemm_kernels!(@kernel concat!($name, "_splitk_reduce_sg_bias"),
                SPLIT_BIAS_BUFFERS, "reduce_splits", [$($fragment),*],
                [$epilogue, FUNCTIONS, ACTIVATE, REDUCE_SUBGROUP]).with_subgroups(),
        })
    }};
}
pub(crate) use gemm_kernels;

/// Which kernel a GEMM runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// 64x64 tiles of C per workgroup.
    Tiled,
    /// 64x128 tiles (4x8 per thread): where the grid still fills the device.
    Wide,
    /// At most [`THIN`] rows or columns: [`THIN_WIDE`] indices of the other side per
    /// workgroup.
    Thin,
    /// 4F x 4F tiles on F x F cooperative-matrix fragments (tensor cores), where the context
    /// was opened with them (`GANLAB_MATRICES`).
    Matrix,
}

/// How one GEMM is launched: its shape and the grid the plan chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GemmLaunch {
    pub kernel: &'static str,
    pub variant: Variant,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch: usize,
    /// Slices of K (1: no split-K).
    pub splits: usize,
    /// Workgroups of the GEMM pass.
    pub workgroups: usize,
    /// K-steps (of BK) each workgroup loops over.
    pub k_steps: usize,
    /// A kernel of this launch used subgroup operations: the thin kernel's lanes, or the
    /// split-K reduce (a workgroup per output where many slices meet few outputs).
    pub subgroups: bool,
    /// The side of the cooperative-matrix fragments (0 unless the variant is `Matrix`).
    pub fragment: usize,
}

impl GemmLaunch {
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.batch) as f64
    }

    /// The GEMM pass's grid: (x, y, z) workgroups.
    fn grid(&self) -> [usize; 3] {
        match self.variant {
            Variant::Tiled => [
                self.n.div_ceil(TILE),
                self.m.div_ceil(TILE),
                self.batch * self.splits,
            ],
            Variant::Wide => [
                self.n.div_ceil(WIDE_TILE_N),
                self.m.div_ceil(TILE),
                self.batch * self.splits,
            ],
            Variant::Thin => [
                wide(self.m, self.n).div_ceil(THIN_WIDE),
                1,
                self.batch * self.splits,
            ],
            Variant::Matrix => [
                self.n.div_ceil(4 * self.fragment),
                self.m.div_ceil(4 * self.fragment),
                self.batch * self.splits,
            ],
        }
    }
}

/// The wide side of a thin product: N where M is thin (checked first, as the kernel does),
/// else M.
fn wide(m: usize, n: usize) -> usize {
    if m <= THIN {
        n
    } else {
        m
    }
}

/// The launch for C (m x n, `batch` of them) = A (m x k) B (k x n).
///
/// A product with at most [`THIN`] rows or columns runs the thin kernel; any other the
/// matrix tiles where the context has `fragment`s (F x F cooperative matrices) and their grid
/// fits `MAX_GRID`, else the wide
/// tiles where they still give [`MIN_WORKGROUPS`] workgroups, else the 64x64 tiles.
/// K is split when a workgroup would loop over more than [`MAX_K_STEPS`] steps, or
/// when the grid has fewer than [`MIN_WORKGROUPS`] workgroups and the batch of products is not
/// small ([`SMALL_FLOPS`]), as far as the partial sums (`max_partial` floats) allow. A batch
/// shares the grid's third dimension with the slices (batch x splits layers).
pub fn plan(
    kernel: &'static str,
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    max_partial: usize,
    fragment: Option<usize>,
) -> GemmLaunch {
    let thin_shape = m.min(n) <= THIN;
    let wide_fills = m.div_ceil(TILE) * n.div_ceil(WIDE_TILE_N) * batch >= MIN_WORKGROUPS;
    let variant = match FORCED_VARIANT.with(Cell::get) {
        Some(forced @ (Variant::Tiled | Variant::Wide)) => forced,
        _ if thin_shape => Variant::Thin,
        // 8x8 fragments tile C by 32x32, a quarter of the tiles' area: where that grid would
        // pass the limit, the tiles may still fit.
        _ if fragment.is_some_and(|f| m.max(n).div_ceil(4 * f) <= MAX_GRID) => Variant::Matrix,
        _ if wide_fills => Variant::Wide,
        _ => Variant::Tiled,
    };
    let mut launch = GemmLaunch {
        kernel,
        variant,
        m,
        n,
        k,
        batch,
        splits: 1,
        workgroups: 0,
        k_steps: 0,
        subgroups: false,
        fragment: fragment.filter(|_| variant == Variant::Matrix).unwrap_or(0),
    };
    let groups: usize = launch.grid().iter().product();
    let steps = k.div_ceil(BK).max(1);
    let mut slice = steps;
    if let Some(forced) = FORCED_SPLITS.with(Cell::get) {
        slice = steps.div_ceil(forced.clamp(1, steps));
    } else if groups > 0 {
        let small = 2.0 * ((m * n * k * batch) as f64) < SMALL_FLOPS;
        let fill = if small {
            1
        } else {
            MIN_WORKGROUPS.div_ceil(groups)
        };
        let want = fill.max(steps.div_ceil(MAX_K_STEPS));
        if want > 1 {
            slice = (steps / want).max(1);
            // The partial sums fit one binding, and the layers WebGPU's default grid limit.
            while slice < steps
                && (steps.div_ceil(slice) * batch * m * n > max_partial
                    || steps.div_ceil(slice) * batch > MAX_GRID)
            {
                slice += 1;
            }
        }
    }
    launch.splits = steps.div_ceil(slice);
    launch.workgroups = groups * launch.splits;
    launch.k_steps = slice;
    launch
}

thread_local! {
    static RECORDED: RefCell<Option<Vec<GemmLaunch>>> = const { RefCell::new(None) };
    static FORCED_SPLITS: Cell<Option<usize>> = const { Cell::new(None) };
    static FORCED_VARIANT: Cell<Option<Variant>> = const { Cell::new(None) };
}

/// Runs `f` with every GEMM on this thread forced to `variant` where it can run it (the thin
/// kernel only takes products with at most [`THIN`] rows or columns, and the matrix fragments
/// are the plan's choice anyway wherever the context has them; the others then get the plan's
/// choice): tests and benches compare the variants this way.
pub fn with_variant<T>(variant: Variant, f: impl FnOnce() -> T) -> T {
    crate::scoped::with_cell(&FORCED_VARIANT, Some(variant), f)
}

/// Runs `f` with every GEMM on this thread split into `splits` slices of K (at most one per
/// K-step; 1: never split): tests and benches force each variant this way.
pub fn with_splits<T>(splits: usize, f: impl FnOnce() -> T) -> T {
    crate::scoped::with_cell(&FORCED_SPLITS, Some(splits), f)
}

/// Runs `f` and returns, with its result, every GEMM launch it planned on this thread (for
/// tests and benches: the shapes of a training step and the grids chosen for them).
pub fn record_launches<T>(f: impl FnOnce() -> T) -> (T, Vec<GemmLaunch>) {
    /// Puts the outer recording back, also when `f` panics.
    struct Restore(Option<Option<Vec<GemmLaunch>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                RECORDED.with(|r| r.replace(previous));
            }
        }
    }
    let mut restore = Restore(Some(RECORDED.with(|r| r.replace(Some(Vec::new())))));
    let out = f();
    let previous = restore.0.take().unwrap_or_default();
    let launches = RECORDED.with(|r| r.replace(previous)).unwrap_or_default();
    (out, launches)
}

/// Records C (m x n per batch) = A (m x k) * B (k x n) for `batch` batches, plus the bias in
/// the store when given (modes declared `with row_bias` or `with col_bias`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_gemm<P: GemmParams>(
    ctx: &Arc<GpuContext>,
    kernels: &'static GemmKernels<P>,
    params: &P,
    (m, n, k): (usize, usize, usize),
    batch: usize,
    [a, b, c]: [&GpuBuffer; 3],
    bias: Option<&GpuBuffer>,
) -> Result<()> {
    let max_partial = (ctx.limits().max_storage_buffer_binding_size / 4) as usize;
    let subgroups = ctx.subgroups_enabled();
    let fragment = ctx
        .matrices()
        .filter(|f| subgroups && !(f.half && kernels.gradients))
        .map(|f| f.size as usize);
    let mut launch = plan(kernels.plain.name, m, n, k, batch, max_partial, fragment);
    let thin_sg = subgroups && launch.variant == Variant::Thin;
    let outputs = batch * m * n;
    let wide_reduce =
        subgroups && launch.splits >= WIDE_REDUCE_SPLITS && outputs < WIDE_REDUCE_OUTPUTS;
    launch.subgroups = thin_sg || wide_reduce || launch.variant == Variant::Matrix;
    RECORDED.with(|r| {
        if let Some(v) = r.borrow_mut().as_mut() {
            v.push(launch);
        }
    });
    let max = ctx.limits().max_compute_workgroups_per_dimension as usize;
    let groups = launch.grid();
    if groups.iter().any(|&g| g > max) {
        return Err(Error::TooLarge {
            bytes: *groups.iter().max().unwrap_or(&0) as u64,
            limit: max as u64,
            limit_name: "GEMM workgroup grid (tiles or batches per dimension)",
        });
    }
    let groups = groups.map(|g| g as u32);
    let with_bias = match (bias, &kernels.bias) {
        (None, _) => None,
        (Some(bias), Some(kernels)) => Some((bias, kernels)),
        (Some(_), None) => {
            return Err(Error::Gpu(format!(
                "{} has no bias variant",
                kernels.plain.name
            )))
        }
    };
    let body = kernels.body(launch.variant, launch.splits > 1, thin_sg);
    if launch.splits == 1 {
        return match with_bias {
            None => ctx.dispatch(body, params, &[a, b, c], groups),
            Some((bias, kernels)) => {
                let kernel = kernels.body(launch.variant, thin_sg);
                ctx.dispatch(kernel, params, &[a, b, c, bias], groups)
            }
        };
    }
    let mut params = *params;
    params.set_split(
        (launch.k_steps * BK) as u32,
        launch.splits as u32,
        batch as u32,
    );
    let partial = ctx.alloc(launch.splits * outputs)?;
    ctx.dispatch(body, &params, &[a, b, c, &partial], groups)?;
    // A thread per output, or (wide_reduce) a workgroup per output.
    let grid = if wide_reduce {
        ctx.grid_for_groups(outputs)?
    } else {
        ctx.grid(outputs)?
    };
    match (with_bias, wide_reduce) {
        (None, false) => ctx.dispatch(&kernels.reduce, &params, &[a, b, c, &partial], grid),
        (None, true) => ctx.dispatch(&kernels.reduce_sg, &params, &[a, b, c, &partial], grid),
        (Some((bias, kernels)), false) => {
            ctx.dispatch(&kernels.reduce, &params, &[a, b, c, &partial, bias], grid)
        }
        (Some((bias, kernels)), true) => ctx.dispatch(
            &kernels.reduce_sg,
            &params,
            &[a, b, c, &partial, bias],
            grid,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{plan, with_splits, with_variant, Variant, BK, MAX_K_STEPS, MIN_WORKGROUPS};

    const ROOM: usize = usize::MAX;

    #[test]
    fn weight_gradients_are_split_until_they_fill_the_gpu() {
        // DCGAN G conv2 dW at batch 64: 18 tiles, 3,136 K-steps unsplit.
        let l = plan("w", 64, 1152, 50_176, 1, ROOM, None);
        assert!(l.splits > 1 && l.workgroups >= MIN_WORKGROUPS && l.k_steps <= MAX_K_STEPS);
        assert!(
            l.splits * l.k_steps * BK >= 50_176,
            "the slices cover K: {l:?}"
        );
        // A big, square-ish product is left alone.
        assert_eq!(plan("f", 1024, 4096, 512, 1, ROOM, None).splits, 1);
        // The partial sums must fit one binding: fewer, longer slices then.
        let tight = plan("w", 64, 1152, 50_176, 1, 64 * 1152 * 4, None);
        assert!(tight.splits <= 4, "{tight:?}");
    }

    #[test]
    fn products_with_four_rows_or_columns_or_fewer_run_thin() {
        // DCGAN G conv3 forward at batch 64: one output channel, 50,176 pixels.
        let f = plan("f", 1, 50_176, 576, 1, ROOM, None);
        assert_eq!((f.variant, f.workgroups, f.splits), (Variant::Thin, 784, 1));
        // Its weight gradient: 9 workgroups of 64 taps, so K is split to fill the GPU.
        let w = plan("w", 1, 576, 50_176, 1, ROOM, None);
        assert_eq!(w.variant, Variant::Thin);
        assert!(
            w.workgroups >= MIN_WORKGROUPS && w.k_steps <= MAX_K_STEPS,
            "{w:?}"
        );
        // N thin (a dense layer with one output): M is the wide side.
        assert_eq!(plan("d", 130, 1, 4096, 1, ROOM, None).workgroups, 3);
        // Five rows stay tiled; a batch of thin products runs thin, a layer per product.
        assert_eq!(
            plan("t", 5, 5000, 64, 1, ROOM, None).variant,
            Variant::Tiled
        );
        let b = plan("b", 1, 5000, 64, 4, ROOM, None);
        assert_eq!((b.variant, b.workgroups), (Variant::Thin, 79 * 4));
        let tiled = with_variant(Variant::Tiled, || plan("f", 1, 50_176, 576, 1, ROOM, None));
        assert_eq!((tiled.variant, tiled.workgroups), (Variant::Tiled, 784));
    }

    #[test]
    fn wide_tiles_where_they_still_fill_the_gpu() {
        // DCGAN G conv2 forward at batch 64: 392 wide tiles.
        let l = plan("f", 64, 50_176, 1152, 1, ROOM, None);
        assert_eq!((l.variant, l.workgroups, l.splits), (Variant::Wide, 392, 1));
        // G conv1 forward: 196 wide tiles would not fill it; 392 plain ones do.
        let l = plan("f", 128, 12_544, 1152, 1, ROOM, None);
        assert_eq!((l.variant, l.workgroups), (Variant::Tiled, 392));
        let forced = with_variant(Variant::Wide, || {
            plan("f", 128, 12_544, 1152, 1, ROOM, None)
        });
        assert_eq!(forced.variant, Variant::Wide);
    }

    #[test]
    fn matrix_fragments_take_every_product_that_is_not_thin() {
        // DCGAN G conv2 forward at batch 64 on 16x16 fragments: 64 x 64 tiles, 784 of them.
        let l = plan("f", 64, 50_176, 1152, 1, ROOM, Some(16));
        assert_eq!(
            (l.variant, l.fragment, l.workgroups),
            (Variant::Matrix, 16, 784)
        );
        // 8x8 fragments: 32 x 32 tiles.
        let l = plan("f", 64, 50_176, 1152, 1, ROOM, Some(8));
        assert_eq!((l.variant, l.workgroups), (Variant::Matrix, 2 * 1568));
        // Its weight gradient is split as the tiles' is; thin products stay thin.
        let w = plan("w", 64, 1152, 50_176, 1, ROOM, Some(16));
        assert!(w.splits > 1 && w.workgroups >= MIN_WORKGROUPS && w.k_steps <= MAX_K_STEPS);
        let thin = plan("f", 1, 50_176, 576, 1, ROOM, Some(16));
        assert_eq!((thin.variant, thin.fragment), (Variant::Thin, 0));
        // Forcing the tiles compares them with the fragments on one context.
        let tiled = with_variant(Variant::Tiled, || {
            plan("f", 64, 50_176, 1152, 1, ROOM, Some(16))
        });
        assert_eq!((tiled.variant, tiled.fragment), (Variant::Tiled, 0));
        // A product whose 32x32 grid would pass the grid limit where the wide tiles' fits
        // (2.5M columns: 78,125 matrix tiles across, 19,532 wide ones) takes the tiles.
        let long = plan("f", 64, 2_500_000, 64, 1, ROOM, Some(8));
        assert_eq!((long.variant, long.fragment), (Variant::Wide, 0));
        assert!(long.grid().iter().all(|&g| g <= super::MAX_GRID));
        let fits = plan("f", 64, 2_000_000, 64, 1, ROOM, Some(8));
        assert_eq!(fits.variant, Variant::Matrix);
    }

    #[test]
    fn forced_splits_apply_to_batched_products_too() {
        with_splits(3, || {
            let l = plan("f", 5, 5, 100, 1, ROOM, None); // 7 K-steps in slices of 3
            assert_eq!((l.splits, l.k_steps), (3, 3));
            let b = plan("f", 5, 5, 100, 2, ROOM, None);
            assert_eq!((b.splits, b.workgroups), (3, 6), "batch x splits layers");
            assert_eq!(plan("f", 5, 5, 10, 1, ROOM, None).splits, 1, "one K-step");
        });
        assert_eq!(
            plan("f", 5, 5, 100, 1, ROOM, None).splits,
            1,
            "small: not split"
        );
    }

    #[test]
    fn a_batch_of_long_products_is_split() {
        // A weight gradient by upsampling phases: 4 products of 64 x 512 x 12,544.
        let l = plan("w", 64, 512, 12_544, 4, ROOM, None);
        assert!(l.splits > 1 && l.workgroups >= MIN_WORKGROUPS, "{l:?}");
        assert!(l.k_steps <= MAX_K_STEPS && l.splits * l.k_steps * BK >= 12_544);
        let tight = plan("w", 64, 512, 12_544, 4, 2 * 4 * 64 * 512, None);
        assert!(
            tight.splits <= 2,
            "the partial sums of every product fit: {tight:?}"
        );
    }

    /// The thin kernel and the split-K reduce with subgroups, forced onto their paths for
    /// partial subgroups (which lavapipe's full subgroups never take): both match the CPU.
    #[test]
    fn subgroup_kernels_partial_subgroup_paths_match_cpu() -> crate::Result<()> {
        use crate::cpu::gemm::{gemm_naive_f32, Gemm, MatRef};
        use crate::device::{gpu_values, Device};
        use crate::ops::matmul::{MatmulParams, MATMUL};
        let Some(ctx) = Device::test_gpu() else {
            return Ok(());
        };
        if !ctx.has_subgroups() {
            return Ok(());
        }
        let mut rng = crate::Rng::seed(7);
        let mut draw = |n: usize| -> Vec<f32> {
            rng.normal_vec(n, 0.0, 1.0)
                .into_iter()
                .map(|v| v as f32)
                .collect()
        };
        let close = |got: &[f32], want: &[f32], what: &str| {
            assert_eq!(got.len(), want.len(), "{what}");
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() < 1e-3 * (1.0 + w.abs()),
                    "{what}[{i}]: {g} vs {w}"
                );
            }
        };
        // The thin kernel, each side thin: C (m x n) = A (m x k) B (k x n), both row-major.
        let thin = MATMUL.thin_sg.partial_subgroups_copy();
        for (m, k, n) in [(3, 997, 300), (300, 997, 2)] {
            let (a, b) = (draw(m * k), draw(k * n));
            let mut want = vec![0.0; m * n];
            let cpu = Gemm::new((m, n, k), MatRef::rows(&a, k), MatRef::rows(&b, n));
            gemm_naive_f32(cpu, &mut want);
            let (ab, bb, c) = (ctx.upload(&a)?, ctx.upload(&b)?, ctx.alloc(m * n)?);
            let u = |v: usize| v as u32;
            let params = MatmulParams {
                m: u(m),
                n: u(n),
                k: u(k),
                a_rs: u(k),
                a_cs: 1,
                b_rs: u(n),
                b_cs: 1,
                ..Default::default()
            };
            let groups = u(m.max(n).div_ceil(super::THIN_WIDE));
            ctx.dispatch(thin, &params, &[&ab, &bb, &c], [groups, 1, 1])?;
            close(&gpu_values(c, m * n)?, &want, &format!("thin {m}x{k}x{n}"));
        }
        // The split-K reduce: 70 slices (more than its 64 threads) of 2 products of 3 x 5.
        let (splits, products, mn) = (70, 2, 15);
        let partial = draw(splits * products * mn);
        let want: Vec<f32> = (0..products * mn)
            .map(|i| {
                let (p, e) = (i / mn, i % mn);
                (0..splits)
                    .map(|z| partial[(p * splits + z) * mn + e])
                    .sum()
            })
            .collect();
        let params = MatmulParams {
            m: 3,
            n: 5,
            splits: splits as u32,
            products: products as u32,
            ..Default::default()
        };
        let dummy = ctx.upload(&[0.0])?;
        let (pb, c) = (ctx.upload(&partial)?, ctx.alloc(products * mn)?);
        let reduce = MATMUL.reduce_sg.partial_subgroups_copy();
        let grid = ctx.grid_for_groups(products * mn)?;
        ctx.dispatch(reduce, &params, &[&dummy, &dummy, &c, &pb], grid)?;
        close(&gpu_values(c, products * mn)?, &want, "split-K reduce");
        Ok(())
    }
}
