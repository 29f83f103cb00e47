//! CPU matrix multiply (GEMM) for `f32` and `f64`.
//!
//! `C = A * B` (or `C += A * B`), with arbitrary element strides on `A` and `B` (so transposed
//! operands are just swapped strides) and a row-major contiguous `C`.
//!
//! # Design
//!
//! The classic BLIS / GotoBLAS structure, on each thread's share of C:
//!
//! ```text
//! for jc in 0..n step NC                  B panel (KC x NC) stays in L2
//!   for pc in 0..k step KC                one rank-KC update of C[.., jc..]
//!     pack B[pc.., jc..] into NR-wide column slivers
//!     for ic in 0..m step MC              A block (MC x KC) stays in L2
//!       pack A[ic.., pc..] into MR-tall row slivers
//!       for jr, for ir                    each B sliver stays in L1 while A slivers stream
//!         C[MR x NR] (+)= A sliver * B sliver   (accumulators in registers)
//! ```
//!
//! Packing copies each operand into the exact order the micro-kernel streams it (whatever the
//! caller's strides were), zero-padded to whole slivers, so the micro-kernel never deals with
//! strides or edges: partial tiles are computed into a scratch tile and only the valid part is
//! written back.
//!
//! Micro-kernels, picked at run time (never with `target-cpu=native`):
//! * `f32` AVX-512F: 8 x 32, sixteen `zmm` accumulators. 1.2-2x the AVX2 kernel on the target
//!   machine (a 2-core Xeon with AVX-512), and about 95% of its FMA peak on one core.
//! * `f32` AVX2 + FMA: 6 x 16, twelve `ymm` accumulators.
//! * portable: fixed-size array accumulators that LLVM vectorises for whatever the target has
//!   (SSE2 on baseline x86_64, NEON on aarch64). `f64` uses this body everywhere, compiled with
//!   AVX2 + FMA enabled when the CPU has them.
//!
//! Rows or columns of one (`m == 1` or `n == 1`) are matrix-vector products and skip packing.
//!
//! Threads: C is cut along its longer side into chunks that threads claim (see
//! `run_chunks`); each chunk is an independent blocked product with the thread's own packing
//! buffers, kept per thread and reused between calls. Products under twice [`PAR_MIN_WORK`]
//! multiply-adds run on the calling thread.
//!
//! The AVX-512 intrinsics need Rust 1.89 or later.

use super::simd::Level;
use super::team::{run_chunks, SyncPtr};
use std::cell::Cell;
use std::ops::{Add, Mul};

/// Multiply-adds (`m * n * k`) per thread: smaller products use fewer threads, and under twice
/// this a product runs on the calling thread alone. A spinning helper (`cpu::team`) joins
/// within a microsecond, but each chunk packs its own copy of an operand; below about 64^3
/// (~10 us on one core) that copy and the hand-off cost more than the second core saves
/// (96^3 when helpers had to be woken: gan b128 14.6 -> 14.1 ms).
pub const PAR_MIN_WORK: usize = 64 * 64 * 64;

/// Shortest side (rows or columns of C) of the chunks a parallel product is cut into, beyond
/// one per thread: each chunk packs its own copy of the other operand, which costs a few
/// percent at this length.
const MIN_CHUNK: usize = 768;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// `C = A * B` (or `C += A * B` when `p.accumulate`) for the product `p`, C m x n row-major
/// contiguous (len m*n). Any strides are allowed (so transposed operands are just swapped
/// strides); 0 sizes are fine.
///
/// # Panics
/// If A, B or `c` is too short for the given sizes and strides.
pub fn gemm_f32(p: Gemm<'_, f32>, c: &mut [f32]) {
    let kernel = Kernel::best_f32();
    gemm_f32_with(kernel, p, c);
}

/// Same contract as [`gemm_f32`], in `f64`.
pub fn gemm_f64(p: Gemm<'_, f64>, c: &mut [f64]) {
    let kernel = Kernel::best_f64();
    gemm_f64_with(kernel, p, c);
}

/// The dot product of two slices of one length, with this CPU's best kernel.
pub fn dot_f32(x: &[f32], y: &[f32]) -> f32 {
    dot_best(x, y)
}

/// Same contract as [`dot_f32`], in `f64`.
pub fn dot_f64(x: &[f64], y: &[f64]) -> f64 {
    dot_best(x, y)
}

fn dot_best<T: Element>(x: &[T], y: &[T]) -> T {
    assert_eq!(x.len(), y.len(), "dot: slices of different lengths");
    #[cfg(target_arch = "x86_64")]
    if Kernel::Avx2Fma.is_supported() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { x86::dot_avx2(x, y) };
    }
    dot::<T, false>(x, y)
}

/// Plain triple loop with the [`gemm_f32`] contract: the reference for tests and benchmarks.
pub fn gemm_naive_f32(p: Gemm<'_, f32>, c: &mut [f32]) {
    p.check(c.len());
    naive(&p, c);
}

/// Plain triple loop with the [`gemm_f64`] contract: the reference for tests and benchmarks.
pub fn gemm_naive_f64(p: Gemm<'_, f64>, c: &mut [f64]) {
    p.check(c.len());
    naive(&p, c);
}

/// A micro-kernel family. Public only so that tests and benchmarks can force each one; the
/// engine calls [`gemm_f32`] / [`gemm_f64`], which pick the best supported kernel.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, vectorised by LLVM for the compilation target's baseline features.
    Portable,
    /// x86_64 AVX2 + FMA.
    Avx2Fma,
    /// x86_64 AVX-512F (`f64` uses the AVX2 + FMA kernel for this choice).
    Avx512,
}

impl Kernel {
    /// Every kernel family, in increasing order of preference.
    pub const ALL: [Kernel; 3] = [Kernel::Portable, Kernel::Avx2Fma, Kernel::Avx512];

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Portable => Level::Baseline,
            Kernel::Avx2Fma => Level::Avx2,
            Kernel::Avx512 => Level::Avx512,
        }
        .is_supported()
    }

    /// The kernels this CPU supports, in increasing order of preference.
    pub fn supported() -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .collect()
    }

    /// The kernel [`gemm_f32`] uses on this CPU.
    pub fn best_f32() -> Kernel {
        // `is_x86_feature_detected!` caches its answer, so this is a couple of loads.
        *Kernel::ALL
            .iter()
            .rev()
            .find(|k| k.is_supported())
            .unwrap_or(&Kernel::Portable)
    }

    /// The kernel [`gemm_f64`] uses on this CPU.
    pub fn best_f64() -> Kernel {
        // The f64 AVX-512 choice maps to the AVX2 kernel anyway.
        if Kernel::Avx2Fma.is_supported() {
            Kernel::Avx2Fma
        } else {
            Kernel::Portable
        }
    }
}

/// [`gemm_f32`] with a forced micro-kernel family.
///
/// # Panics
/// If the CPU does not support `kernel`, or on the same conditions as [`gemm_f32`].
#[doc(hidden)]
pub fn gemm_f32_with(kernel: Kernel, p: Gemm<'_, f32>, c: &mut [f32]) {
    p.check(c.len());
    gemm_generic(kernel, &p, c);
}

/// [`gemm_f64`] with a forced micro-kernel family.
///
/// # Panics
/// If the CPU does not support `kernel`, or on the same conditions as [`gemm_f64`].
#[doc(hidden)]
pub fn gemm_f64_with(kernel: Kernel, p: Gemm<'_, f64>, c: &mut [f64]) {
    p.check(c.len());
    gemm_generic(kernel, &p, c);
}

// ---------------------------------------------------------------------------------------------
// Problem description and validation
// ---------------------------------------------------------------------------------------------

/// A strided read-only matrix view: element (r, c) is `data[r * rs + c * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    pub fn new(data: &'a [T], rs: usize, cs: usize) -> Self {
        MatRef { data, rs, cs }
    }

    /// A row-major matrix with `cols` columns.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        MatRef {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The same matrix, transposed.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A K x N operand that is never stored: the packer gathers each row of a B panel as it packs
/// it (a convolution's im2col matrix, read straight from the image), so the matrix is never
/// written to memory and read back.
pub trait GatherRows<T>: Sync {
    /// Columns `j0..j0 + out.len()` of row `p`.
    fn gather(&self, p: usize, j0: usize, out: &mut [T]);
}

/// A B operand: a strided matrix, or rows gathered on demand, from column `col0` on.
#[derive(Clone, Copy)]
pub enum Operand<'a, T> {
    Mat(MatRef<'a, T>),
    Gathered {
        rows: &'a dyn GatherRows<T>,
        col0: usize,
    },
}

impl<T: std::fmt::Debug> std::fmt::Debug for Operand<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operand::Mat(m) => m.fmt(f),
            Operand::Gathered { col0, .. } => write!(f, "Gathered {{ col0: {col0} }}"),
        }
    }
}

impl<'a, T: Copy> Operand<'a, T> {
    /// The operand without its first `cols` columns.
    fn skip_cols(self, cols: usize) -> Self {
        match self {
            Operand::Mat(b) => Operand::Mat(MatRef {
                data: &b.data[cols * b.cs..],
                ..b
            }),
            Operand::Gathered { rows, col0 } => Operand::Gathered {
                rows,
                col0: col0 + cols,
            },
        }
    }
}

/// One product: C (m x n) = A (m x k) B (k x n), or C += A B when `accumulate`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm<'a, T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: MatRef<'a, T>,
    pub b: Operand<'a, T>,
    pub accumulate: bool,
}

/// Elements a `rows x cols` view with strides `(rs, cs)` spans, or `None` on overflow.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(rs)?
        .checked_add((cols - 1).checked_mul(cs)?)?
        .checked_add(1)
}

impl<'a, T> Gemm<'a, T> {
    /// C (m x n) = A (m x k) B (k x n), overwriting C.
    pub fn new((m, n, k): (usize, usize, usize), a: MatRef<'a, T>, b: MatRef<'a, T>) -> Self {
        Gemm {
            m,
            n,
            k,
            a,
            b: Operand::Mat(b),
            accumulate: false,
        }
    }

    /// C (m x n) = A (m x k) B (k x n), B's rows gathered by `rows` as they are packed.
    pub fn gathered(
        (m, n, k): (usize, usize, usize),
        a: MatRef<'a, T>,
        rows: &'a dyn GatherRows<T>,
    ) -> Self {
        Gemm {
            m,
            n,
            k,
            a,
            b: Operand::Gathered { rows, col0: 0 },
            accumulate: false,
        }
    }

    /// The same product, added to C.
    pub fn accumulating(self) -> Self {
        Gemm {
            accumulate: true,
            ..self
        }
    }

    /// Checks that every element of A, B and a C of `c_len` elements is in bounds: the
    /// kernels index without further checks.
    fn check(&self, c_len: usize) {
        let (m, n, k) = (self.m, self.n, self.k);
        check_operand("A", (m, k), &self.a);
        if let Operand::Mat(b) = &self.b {
            check_operand("B", (k, n), b);
        }
        let need_c = m.checked_mul(n).expect("gemm: m * n overflows usize");
        assert!(
            c_len >= need_c,
            "gemm: C slice too short: m={m} n={n} needs {need_c} elements, got {c_len}"
        );
    }
}

/// Panics unless the `rows x cols` view `mat` lies inside its slice.
fn check_operand<T>(name: &str, (rows, cols): (usize, usize), mat: &MatRef<T>) {
    let need = span(rows, cols, mat.rs, mat.cs)
        .unwrap_or_else(|| panic!("gemm: {name} strides overflow usize"));
    assert!(
        mat.data.len() >= need,
        "gemm: {name} slice too short: {rows}x{cols} with strides ({}, {}) needs {need} \
         elements, got {}",
        mat.rs,
        mat.cs,
        mat.data.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Element types
// ---------------------------------------------------------------------------------------------

/// What the generic code needs from `f32` / `f64`.
trait Element: Copy + Send + Sync + 'static + Add<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;

    /// `self * a + b`, fused when `FUSED` (only worth it where the CPU has FMA: elsewhere the
    /// fused form is a slow library call).
    fn madd<const FUSED: bool>(self, a: Self, b: Self) -> Self;

    /// Takes this thread's packing buffer, leaving an empty one behind: should a call ever
    /// re-enter on the same thread, it allocates its own rather than aliasing this one.
    fn take_buffer() -> Vec<Self>;

    /// Gives the packing buffer back for the next call on this thread.
    fn put_buffer(buf: Vec<Self>);

    /// Runs the packed, blocked product with the `kernel` family's micro-kernel for this type.
    fn blocked(kernel: Kernel, p: &Gemm<Self>, c: &mut [Self], threads: usize);
}

thread_local! {
    static PACK_F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static PACK_F64: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

impl Element for f32 {
    const ZERO: Self = 0.0;

    #[inline(always)]
    fn madd<const FUSED: bool>(self, a: Self, b: Self) -> Self {
        if FUSED {
            self.mul_add(a, b)
        } else {
            self * a + b
        }
    }

    fn take_buffer() -> Vec<Self> {
        PACK_F32.with(Cell::take)
    }

    fn put_buffer(buf: Vec<Self>) {
        PACK_F32.with(|cell| cell.set(buf));
    }

    fn blocked(kernel: Kernel, p: &Gemm<Self>, c: &mut [Self], threads: usize) {
        match kernel {
            Kernel::Portable => gemm_blocked::<f32, 6, 16, Portable>(p, c, threads),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => gemm_blocked::<f32, 6, 16, x86::Avx2F32>(p, c, threads),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => gemm_blocked::<f32, 8, 32, x86::Avx512F32>(p, c, threads),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("kernel support is checked before dispatch"),
        }
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;

    #[inline(always)]
    fn madd<const FUSED: bool>(self, a: Self, b: Self) -> Self {
        if FUSED {
            self.mul_add(a, b)
        } else {
            self * a + b
        }
    }

    fn take_buffer() -> Vec<Self> {
        PACK_F64.with(Cell::take)
    }

    fn put_buffer(buf: Vec<Self>) {
        PACK_F64.with(|cell| cell.set(buf));
    }

    fn blocked(kernel: Kernel, p: &Gemm<Self>, c: &mut [Self], threads: usize) {
        match kernel {
            Kernel::Portable => gemm_blocked::<f64, 4, 8, Portable>(p, c, threads),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma | Kernel::Avx512 => {
                gemm_blocked::<f64, 6, 8, x86::Avx2F64>(p, c, threads)
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("kernel support is checked before dispatch"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Top-level dispatch
// ---------------------------------------------------------------------------------------------

fn gemm_generic<T: Element>(kernel: Kernel, p: &Gemm<T>, c: &mut [T]) {
    assert!(
        kernel.is_supported(),
        "gemm: kernel {kernel:?} is not supported by this CPU"
    );
    let (m, n, k) = (p.m, p.n, p.k);
    if m == 0 || n == 0 {
        return;
    }
    let c = &mut c[..m * n];
    if k == 0 {
        if !p.accumulate {
            c.fill(T::ZERO);
        }
        return;
    }
    if let (Operand::Gathered { .. }, true) = (p.b, n == 1) {
        // The matrix-vector product streams B as it lies: gather it first (a single row of A
        // takes the packed path, which gathers B panel by panel).
        return with_dense_b(p, |p| gemm_generic(kernel, p, c));
    }
    // Threads only for products big enough to pay for the fork-join, at most one per
    // PAR_MIN_WORK multiply-adds.
    let threads = (m * n).saturating_mul(k) / PAR_MIN_WORK;
    let threads = threads.clamp(1, super::team::threads());
    let fused = kernel != Kernel::Portable;
    match p.b {
        // C (m x 1) = A (m x k) * b (k).
        Operand::Mat(b) if n == 1 => gemv(p.a, b, k, c, p.accumulate, fused, threads),
        // C^T (n x 1) = B^T (n x k) * a^T (k).
        Operand::Mat(b) if m == 1 => gemv(b.t(), p.a.t(), k, c, p.accumulate, fused, threads),
        _ => T::blocked(kernel, p, c, threads),
    }
}

/// Runs `f` on the same product with a gathered B written out as a row-major matrix (for the
/// paths that do not pack B); a stored B is passed as it is.
fn with_dense_b<T: Element, R>(p: &Gemm<T>, f: impl FnOnce(&Gemm<T>) -> R) -> R {
    let Operand::Gathered { rows, col0 } = p.b else {
        return f(p);
    };
    let mut dense = vec![T::ZERO; p.k * p.n];
    for (row, out) in dense.chunks_exact_mut(p.n.max(1)).enumerate() {
        rows.gather(row, col0, out);
    }
    f(&Gemm {
        b: Operand::Mat(MatRef::rows(&dense, p.n)),
        ..*p
    })
}

fn naive<T: Element>(p: &Gemm<T>, c: &mut [T]) {
    with_dense_b(p, |p| naive_dense(p, c));
}

fn naive_dense<T: Element>(p: &Gemm<T>, c: &mut [T]) {
    let Operand::Mat(b) = p.b else {
        unreachable!("with_dense_b gathers B")
    };
    let a = p.a;
    for i in 0..p.m {
        for j in 0..p.n {
            let mut sum = T::ZERO;
            for l in 0..p.k {
                sum = sum + a.data[i * a.rs + l * a.cs] * b.data[l * b.rs + j * b.cs];
            }
            let dst = &mut c[i * p.n + j];
            *dst = if p.accumulate { *dst + sum } else { sum };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matrix-vector products (m == 1 or n == 1)
// ---------------------------------------------------------------------------------------------

/// Rows of `y` per chunk of a parallel [`gemv`].
const GEMV_ROWS_PER_TASK: usize = 64;

/// `y (+)= X v` where X is `y.len() x k` and `v` is the first column of the `k x 1` view `v`.
///
/// A product with a single row or column has no reuse for packing to exploit: it streams X once.
fn gemv<T: Element>(
    x: MatRef<T>,
    v: MatRef<T>,
    k: usize,
    y: &mut [T],
    accumulate: bool,
    fused: bool,
    threads: usize,
) {
    let rows_of = |i0: usize, ys: &mut [T]| {
        #[cfg(target_arch = "x86_64")]
        if fused {
            // SAFETY: `fused` is only set for kernels whose support (AVX2 + FMA) was checked.
            unsafe { x86::gemv_rows_avx2(x, v, k, i0, ys, accumulate) };
            return;
        }
        let _ = fused;
        gemv_rows::<T, false>(x, v, k, i0, ys, accumulate);
    };
    let rows = y.len();
    let chunks = rows.div_ceil(GEMV_ROWS_PER_TASK);
    let y_ptr = SyncPtr(y.as_mut_ptr());
    let chunk = |t: usize| {
        let i0 = t * GEMV_ROWS_PER_TASK;
        let len = GEMV_ROWS_PER_TASK.min(rows - i0);
        // SAFETY: rows i0..i0 + len of `y`, which no other chunk touches.
        rows_of(i0, unsafe {
            std::slice::from_raw_parts_mut(y_ptr.get().add(i0), len)
        });
    };
    run_chunks(chunks, threads, &chunk);
}

/// Rows `i0 .. i0 + y.len()` of [`gemv`].
#[inline(always)]
fn gemv_rows<T: Element, const FUSED: bool>(
    x: MatRef<T>,
    v: MatRef<T>,
    k: usize,
    i0: usize,
    y: &mut [T],
    accumulate: bool,
) {
    let rows = y.len();
    if x.cs == 1 && v.rs == 1 {
        // Contiguous rows against a contiguous vector: dot products.
        let vk = &v.data[..k];
        for (i, yi) in y.iter_mut().enumerate() {
            let row = &x.data[(i0 + i) * x.rs..][..k];
            let s = dot::<T, FUSED>(row, vk);
            *yi = if accumulate { *yi + s } else { s };
        }
    } else if x.rs == 1 {
        // Contiguous columns: y += X[:, l] * v[l], one column at a time.
        if !accumulate {
            y.fill(T::ZERO);
        }
        for l in 0..k {
            let vl = v.data[l * v.rs];
            let col = &x.data[i0 + l * x.cs..][..rows];
            for (yi, &xi) in y.iter_mut().zip(col) {
                *yi = xi.madd::<FUSED>(vl, *yi);
            }
        }
    } else {
        for (i, yi) in y.iter_mut().enumerate() {
            let base = (i0 + i) * x.rs;
            let mut s = T::ZERO;
            for l in 0..k {
                s = x.data[base + l * x.cs].madd::<FUSED>(v.data[l * v.rs], s);
            }
            *yi = if accumulate { *yi + s } else { s };
        }
    }
}

/// Dot product with 32 independent partial sums, so LLVM can vectorise and hide FMA latency.
#[inline(always)]
fn dot<T: Element, const FUSED: bool>(x: &[T], y: &[T]) -> T {
    const LANES: usize = 32;
    let mut acc = [T::ZERO; LANES];
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..LANES {
            acc[l] = xs[l].madd::<FUSED>(ys[l], acc[l]);
        }
    }
    let mut s = T::ZERO;
    for (&xi, &yi) in xr.iter().zip(yr) {
        s = xi.madd::<FUSED>(yi, s);
    }
    // Pairwise reduction of the partial sums.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] = acc[l] + acc[l + width];
        }
    }
    acc[0] + s
}

// ---------------------------------------------------------------------------------------------
// Packed, blocked GEMM
// ---------------------------------------------------------------------------------------------

/// A register-blocked micro-kernel and the cache blocking that goes with it.
///
/// `MR` is the number of rows of C per micro-tile (the A sliver height), `NR` the number of
/// columns (the B sliver width). They are const parameters rather than associated consts so that
/// the packing and edge-tile code can be monomorphised on them.
trait MicroKernel<T: Element, const MR: usize, const NR: usize>: PackAlongK<T> {
    /// Depth of one rank-k update: an A sliver (MR x KC) plus a B sliver (KC x NR) fit in L1.
    const KC: usize;
    /// Rows of an A block (MC x KC), sized for L2. A multiple of MR.
    const MC: usize;
    /// Columns of a B panel (KC x NC), sized for L2 / L3. A multiple of NR.
    const NC: usize;

    /// Computes the MR x NR tile `C = A_s * B_s` (`C += A_s * B_s` when `load_c`), where
    /// `A_s[i, p] = a[p * MR + i]` and `B_s[p, j] = b[p * NR + j]` for `p < kc`, and
    /// `C[i, j] = c[i * rs_c + j]`.
    ///
    /// # Safety
    /// `a` must be valid for `kc * MR` reads, `b` for `kc * NR` reads, `c` for reads and writes
    /// of the whole tile, and the CPU must support the kernel's target features.
    unsafe fn run(kc: usize, a: *const T, b: *const T, c: *mut T, rs_c: usize, load_c: bool);
}

/// Packing of slivers whose rows run along k (a row-major A, a column-major B), which is a
/// transpose: kernel families may override it with CPU-specific code.
trait PackAlongK<T: Element>: Sync {
    /// `d[p * W + i] = src[base + i * rs + p]` for `i < valid` (`<= W`) and `p < kc`; other
    /// rows of `d` are left alone.
    ///
    /// # Safety
    /// The CPU must support the kernel family's target features.
    unsafe fn pack_along_k<const W: usize>(
        d: &mut [T],
        src: &[T],
        base: usize,
        rs: usize,
        valid: usize,
        kc: usize,
    ) {
        pack_along_k::<T, W>(d, src, base, rs, 0..valid, 0..kc);
    }
}

/// Portable [`PackAlongK::pack_along_k`] for rows `rows` and steps `steps` only.
#[inline(always)]
fn pack_along_k<T: Element, const W: usize>(
    d: &mut [T],
    src: &[T],
    base: usize,
    rs: usize,
    rows: std::ops::Range<usize>,
    steps: std::ops::Range<usize>,
) {
    for i in rows {
        let row = &src[base + i * rs..][steps.clone()];
        for (dp, &v) in d.chunks_exact_mut(W).skip(steps.start).zip(row) {
            dp[i] = v;
        }
    }
}

/// Splits this thread's packing buffer into an A pack of `a_len` and a B pack of `b_len`
/// elements, both starting on a 64-byte (cache line) boundary.
fn pack_buffers<T: Element>(buf: &mut Vec<T>, a_len: usize, b_len: usize) -> (&mut [T], &mut [T]) {
    let line = 64 / std::mem::size_of::<T>();
    let a_room = a_len.next_multiple_of(line);
    let need = line + a_room + b_len;
    if buf.len() < need {
        buf.clear();
        buf.resize(need, T::ZERO);
    }
    // `align_offset` may in theory give up (usize::MAX); any offset is still correct, only
    // slower, and `line` elements of slack are reserved for it.
    let off = buf.as_ptr().align_offset(64).min(line);
    let (a, rest) = buf[off..].split_at_mut(a_room);
    (&mut a[..a_len], &mut rest[..b_len])
}

/// Step `p` of every `W`-wide sliver of a `kc`-deep pack from `run`, the step's values across
/// the slivers (zero-padding the last sliver).
#[inline(always)]
fn pack_step<T: Element, const W: usize>(dst: &mut [T], kc: usize, p: usize, run: &[T]) {
    for (s, src) in run.chunks(W).enumerate() {
        let d = &mut dst[s * W * kc + p * W..][..W];
        if src.len() == W {
            // W is a constant, so this is a few vector moves, not a `memcpy` call.
            d.copy_from_slice(src);
        } else {
            d[..src.len()].copy_from_slice(src);
            d[src.len()..].fill(T::ZERO);
        }
    }
}

/// Packs `len` rows of the view `x` (element (i, p) is `x.data[base + i * x.rs + p * x.cs]`,
/// `i < len`, `p < kc`) into `W`-wide slivers: `dst[(i / W) * W * kc + p * W + i % W] = X[i, p]`,
/// zero-padding the last sliver to `W` rows. `dst` must hold `len.div_ceil(W) * W * kc` elements.
///
/// An A block is rows of A; a B panel is columns of B, i.e. rows of the view B^T.
///
/// # Safety
/// The CPU must support `P`'s target features.
unsafe fn pack_panel<T: Element, const W: usize, P: PackAlongK<T>>(
    dst: &mut [T],
    kc: usize,
    x: MatRef<T>,
    base: usize,
    len: usize,
) {
    let dst = &mut dst[..len.div_ceil(W) * W * kc];
    if x.rs == 1 {
        // The W rows of a sliver are contiguous at each step p (a row-major B, a column-major
        // A). Walk p in the outer loop so the source is read in long contiguous runs across all
        // the slivers: reading one sliver at a time would touch a different page at every step
        // and defeat the hardware prefetchers.
        for p in 0..kc {
            pack_step::<T, W>(dst, kc, p, &x.data[base + p * x.cs..][..len]);
        }
        return;
    }
    for (s, d) in dst.chunks_exact_mut(W * kc).enumerate() {
        let valid = W.min(len - s * W);
        if valid < W {
            d.fill(T::ZERO);
        }
        let sbase = base + s * W * x.rs;
        if x.cs == 1 {
            // Each sliver row is contiguous along k (a row-major A, a column-major B).
            // SAFETY: forwarded caller contract.
            unsafe { P::pack_along_k::<W>(d, x.data, sbase, x.rs, valid, kc) };
        } else {
            for (p, dp) in d.chunks_exact_mut(W).enumerate() {
                for (i, di) in dp[..valid].iter_mut().enumerate() {
                    *di = x.data[sbase + i * x.rs + p * x.cs];
                }
            }
        }
    }
}

/// The packed product on up to `threads` threads.
///
/// C is cut along its longer side into chunks of whole slivers, and each thread runs the whole
/// blocked algorithm on the chunks it claims, with its own packing buffers. One fork-join per
/// call, with no synchronisation inside, matters more here than sharing packed panels: waking
/// the pool costs tens of microseconds, which a fork-join per packed block would pay dozens of
/// times per call. The price is that every chunk packs its own copy of the operand along the
/// uncut (shorter) side, so chunks are kept at least [`MIN_CHUNK`] long.
///
/// The chunks are shared out by [`run_chunks`].
fn gemm_blocked<T, const MR: usize, const NR: usize, K>(p: &Gemm<T>, c: &mut [T], threads: usize)
where
    T: Element,
    K: MicroKernel<T, MR, NR>,
{
    let (m, n, k) = (p.m, p.n, p.k);
    let (a, b) = (p.a, p.b);
    let c_ptr = SyncPtr(c.as_mut_ptr());
    let split_n = n >= m;
    let (len, w) = if split_n { (n, NR) } else { (m, MR) };
    let slivers = len.div_ceil(w);
    let threads = threads.min(slivers);
    if threads <= 1 {
        // SAFETY: `c` holds the whole m x n row-major C.
        unsafe { blocked_serial::<T, MR, NR, K>(m, n, k, a, b, c_ptr, n, p.accumulate) };
        return;
    }
    let chunks = (len / MIN_CHUNK).clamp(threads, slivers);
    let chunk = |t: usize| {
        let (s0, s1) = (slivers * t / chunks, slivers * (t + 1) / chunks);
        let (r0, r1) = (s0 * w, (s1 * w).min(len));
        if split_n {
            let b = b.skip_cols(r0);
            // SAFETY: columns r0..r1 of C, which no other chunk touches.
            unsafe {
                let c = SyncPtr(c_ptr.get().add(r0));
                blocked_serial::<T, MR, NR, K>(m, r1 - r0, k, a, b, c, n, p.accumulate);
            }
        } else {
            let a = MatRef {
                data: &a.data[r0 * a.rs..],
                ..a
            };
            // SAFETY: rows r0..r1 of C, which no other chunk touches.
            unsafe {
                let c = SyncPtr(c_ptr.get().add(r0 * n));
                blocked_serial::<T, MR, NR, K>(r1 - r0, n, k, a, b, c, n, p.accumulate);
            }
        }
    };
    run_chunks(chunks, threads, &chunk);
}

/// The BLIS loop nest around micro-kernel `K`, on the calling thread: `C (+)= A * B` for the
/// `m x n` block of C at `c` with row stride `rs_c`.
///
/// # Safety
/// `c` must be valid for reads and writes of that block, and nothing else may access it during
/// the call. `K` must be supported by the CPU.
#[allow(clippy::too_many_arguments)]
unsafe fn blocked_serial<T, const MR: usize, const NR: usize, K>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<T>,
    b: Operand<T>,
    c: SyncPtr<T>,
    rs_c: usize,
    accumulate: bool,
) where
    T: Element,
    K: MicroKernel<T, MR, NR>,
{
    const { assert!(K::MC % MR == 0 && K::NC % NR == 0) };
    let kc_max = K::KC.min(k);
    let a_len = K::MC.min(m.next_multiple_of(MR)) * kc_max;
    let b_len = K::NC.min(n.next_multiple_of(NR)) * kc_max;
    let mut buf = T::take_buffer();
    let (apack, bpack) = pack_buffers(&mut buf, a_len, b_len);
    // A gathered row of a panel lands here before it is cut into slivers.
    let mut line = match b {
        Operand::Gathered { .. } => vec![T::ZERO; K::NC.min(n)],
        Operand::Mat(_) => Vec::new(),
    };

    for jc in (0..n).step_by(K::NC) {
        let nc = K::NC.min(n - jc);
        for pc in (0..k).step_by(K::KC) {
            let kc = K::KC.min(k - pc);
            // The first rank-k update overwrites C unless the caller asked to accumulate.
            let load_c = accumulate || pc > 0;
            match b {
                Operand::Mat(b) => {
                    // B^T, so that a B sliver is packed like an A sliver (rows of the view).
                    let bt = b.t();
                    // SAFETY: the caller guarantees the CPU supports `K`.
                    unsafe { pack_panel::<T, NR, K>(bpack, kc, bt, jc * bt.rs + pc * bt.cs, nc) };
                }
                Operand::Gathered { rows, col0 } => {
                    let line = &mut line[..nc];
                    for p in 0..kc {
                        rows.gather(pc + p, col0 + jc, line);
                        pack_step::<T, NR>(bpack, kc, p, line);
                    }
                }
            }
            for ic in (0..m).step_by(K::MC) {
                let mc = K::MC.min(m - ic);
                // SAFETY: as above.
                unsafe { pack_panel::<T, MR, K>(apack, kc, a, ic * a.rs + pc * a.cs, mc) };
                // SAFETY: (ic, jc) is inside the block (the caller's contract covers the rest).
                unsafe {
                    let c_blk = c.get().add(ic * rs_c + jc);
                    macro_kernel::<T, MR, NR, K>(mc, nc, kc, apack, bpack, c_blk, rs_c, load_c);
                }
            }
        }
    }
    T::put_buffer(buf);
}

/// All micro-tiles of the `mc x nc` block of C at `c` (row stride `rs_c`), from a packed A block
/// and B panel: for each B sliver (kept in L1), every A sliver of the block (streamed from L2).
///
/// # Safety
/// As [`blocked_serial`], for this block.
#[allow(clippy::too_many_arguments)]
unsafe fn macro_kernel<T, const MR: usize, const NR: usize, K>(
    mc: usize,
    nc: usize,
    kc: usize,
    apack: &[T],
    bpack: &[T],
    c: *mut T,
    rs_c: usize,
    load_c: bool,
) where
    T: Element,
    K: MicroKernel<T, MR, NR>,
{
    for (jr, b) in bpack[..nc.div_ceil(NR) * NR * kc]
        .chunks_exact(NR * kc)
        .enumerate()
    {
        let j0 = jr * NR;
        let cols = NR.min(nc - j0);
        for (ir, a) in apack[..mc.div_ceil(MR) * MR * kc]
            .chunks_exact(MR * kc)
            .enumerate()
        {
            let i0 = ir * MR;
            let rows = MR.min(mc - i0);
            // SAFETY: (i0, j0) is inside the block; the slivers have the lengths `run` reads;
            // the caller guarantees the rest.
            unsafe {
                let ct = c.add(i0 * rs_c + j0);
                if rows == MR && cols == NR {
                    K::run(kc, a.as_ptr(), b.as_ptr(), ct, rs_c, load_c);
                } else {
                    // Edge tile: compute the full tile into scratch, write back the valid part.
                    let mut tmp = [[T::ZERO; NR]; MR];
                    K::run(
                        kc,
                        a.as_ptr(),
                        b.as_ptr(),
                        tmp.as_mut_ptr().cast(),
                        NR,
                        false,
                    );
                    for (i, row) in tmp.iter().enumerate().take(rows) {
                        let dst = std::slice::from_raw_parts_mut(ct.add(i * rs_c), cols);
                        if load_c {
                            dst.iter_mut().zip(row).for_each(|(d, &s)| *d = *d + s);
                        } else {
                            dst.copy_from_slice(&row[..cols]);
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Portable micro-kernel
// ---------------------------------------------------------------------------------------------

/// Plain-Rust MR x NR micro-kernel with fixed-size accumulators that LLVM keeps in vector
/// registers. Used on CPUs without AVX2 (and for `f64`, see `x86::Avx2F64`).
struct Portable;

impl<T: Element> PackAlongK<T> for Portable {}

impl<T: Element, const MR: usize, const NR: usize> MicroKernel<T, MR, NR> for Portable {
    const KC: usize = 256;
    const MC: usize = MR * 24;
    const NC: usize = NR * 128;

    unsafe fn run(kc: usize, a: *const T, b: *const T, c: *mut T, rs_c: usize, load_c: bool) {
        // SAFETY: forwarded caller contract.
        unsafe { portable_tile::<T, MR, NR, false>(kc, a, b, c, rs_c, load_c) }
    }
}

/// Body of the portable kernel, `FUSED` selecting `mul_add` (for callers compiled with FMA).
///
/// # Safety
/// As [`MicroKernel::run`].
#[inline(always)]
unsafe fn portable_tile<T: Element, const MR: usize, const NR: usize, const FUSED: bool>(
    kc: usize,
    a: *const T,
    b: *const T,
    c: *mut T,
    rs_c: usize,
    load_c: bool,
) {
    // SAFETY: the caller guarantees these extents.
    let (a, b) = unsafe {
        (
            std::slice::from_raw_parts(a, kc * MR),
            std::slice::from_raw_parts(b, kc * NR),
        )
    };
    let mut acc = [[T::ZERO; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (row, &ai) in acc.iter_mut().zip(ap) {
            for (x, &bj) in row.iter_mut().zip(bp) {
                *x = ai.madd::<FUSED>(bj, *x);
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: the caller guarantees the tile's rows are valid for NR reads and writes.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(i * rs_c), NR) };
        if load_c {
            dst.iter_mut().zip(row).for_each(|(d, &s)| *d = *d + s);
        } else {
            dst.copy_from_slice(row);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// x86_64 micro-kernels
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{gemv_rows, pack_along_k, portable_tile, Element, MatRef, MicroKernel, PackAlongK};
    use core::arch::x86_64::*;

    /// Starts pulling a `rows x cols` tile of C into L1, so that the read-modify-write at the end
    /// of the micro-kernel does not stall on it: once C outgrows L2 that stall cost 10-20%.
    ///
    /// # Safety
    /// `c` and `rs_c` must describe a valid tile (prefetches do not fault, but the address
    /// arithmetic must stay in bounds).
    #[inline(always)]
    unsafe fn prefetch_tile(c: *const f32, rs_c: usize, rows: usize, cols: usize) {
        for i in 0..rows {
            // SAFETY: the first and last element of each tile row are in bounds.
            unsafe {
                let row = c.add(i * rs_c);
                _mm_prefetch::<_MM_HINT_T0>(row.cast());
                _mm_prefetch::<_MM_HINT_T0>(row.add(cols - 1).cast());
            }
        }
    }

    /// [`PackAlongK`] for `f32` with 8 x 8 AVX transposes: loads run along k, stores along the
    /// sliver width. Packing a transposed B this way instead of element by element made the
    /// (64 x 512) * (784 x 512)^T product 1.5x faster.
    ///
    /// # Safety
    /// The CPU must support AVX.
    #[target_feature(enable = "avx")]
    unsafe fn pack_along_k_avx<const W: usize>(
        d: &mut [f32],
        src: &[f32],
        base: usize,
        rs: usize,
        valid: usize,
        kc: usize,
    ) {
        // Whole 8 x 8 blocks with vector code; the ragged rows and steps element by element.
        let rows8 = valid - valid % 8;
        let steps8 = kc - kc % 8;
        if rows8 > 0 && steps8 > 0 {
            assert!(base + (valid - 1) * rs + kc <= src.len() && kc * W <= d.len());
            let (s, dp) = (src.as_ptr(), d.as_mut_ptr());
            for i0 in (0..rows8).step_by(8) {
                for p0 in (0..steps8).step_by(8) {
                    // SAFETY: rows i0..i0 + 8 <= valid and steps p0..p0 + 8 <= kc are in bounds
                    // of `src` by the assert; stores go to rows p0..p0 + 8 of `d`, lanes
                    // i0..i0 + 8 <= W, in bounds of `d`.
                    unsafe {
                        let at = |j: usize| s.add(base + (i0 + j) * rs + p0);
                        let r = [
                            _mm256_loadu_ps(at(0)),
                            _mm256_loadu_ps(at(1)),
                            _mm256_loadu_ps(at(2)),
                            _mm256_loadu_ps(at(3)),
                            _mm256_loadu_ps(at(4)),
                            _mm256_loadu_ps(at(5)),
                            _mm256_loadu_ps(at(6)),
                            _mm256_loadu_ps(at(7)),
                        ];
                        for (q, v) in transpose_8x8(r).into_iter().enumerate() {
                            _mm256_storeu_ps(dp.add((p0 + q) * W + i0), v);
                        }
                    }
                }
            }
        }
        pack_along_k::<f32, W>(d, src, base, rs, 0..rows8, steps8..kc);
        pack_along_k::<f32, W>(d, src, base, rs, rows8..valid, 0..kc);
    }

    /// Transposes an 8 x 8 block held as eight rows.
    #[inline(always)]
    unsafe fn transpose_8x8(r: [__m256; 8]) -> [__m256; 8] {
        // SAFETY: only called from functions with AVX enabled.
        unsafe {
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ]
        }
    }

    /// `f32` AVX2 + FMA, 6 x 16: twelve ymm accumulators, two B loads and six broadcasts per
    /// step along k (16 of the 16 ymm registers).
    pub(super) struct Avx2F32;

    impl PackAlongK<f32> for Avx2F32 {
        unsafe fn pack_along_k<const W: usize>(
            d: &mut [f32],
            src: &[f32],
            base: usize,
            rs: usize,
            valid: usize,
            kc: usize,
        ) {
            // SAFETY: this kernel family implies AVX2, hence AVX.
            unsafe { pack_along_k_avx::<W>(d, src, base, rs, valid, kc) }
        }
    }

    impl MicroKernel<f32, 6, 16> for Avx2F32 {
        // A sliver 6 KiB + B sliver 16 KiB of a 48 KiB L1d.
        const KC: usize = 256;
        // A block 6 * 64 * 256 * 4 = 384 KiB of a 2 MiB L2.
        const MC: usize = 6 * 64;
        // B panel 256 * 1024 * 4 = 1 MiB.
        const NC: usize = 16 * 64;

        unsafe fn run(kc: usize, a: *const f32, b: *const f32, c: *mut f32, rs: usize, ld: bool) {
            // SAFETY: forwarded caller contract (which includes AVX2 + FMA support).
            unsafe { kernel_avx2_6x16(kc, a, b, c, rs, ld) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel_avx2_6x16(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        load_c: bool,
    ) {
        // SAFETY: the caller guarantees `a`/`b` hold kc steps of packed slivers and `c` a full
        // 6 x 16 tile with row stride `rs_c`.
        unsafe {
            prefetch_tile(c, rs_c, 6, 16);
            let mut acc = [[_mm256_setzero_ps(); 2]; 6];
            let (mut a, mut b) = (a, b);
            for _ in 0..kc {
                let b0 = _mm256_loadu_ps(b);
                let b1 = _mm256_loadu_ps(b.add(8));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.add(i));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                }
                a = a.add(6);
                b = b.add(16);
            }
            for (i, row) in acc.iter().enumerate() {
                let cr = c.add(i * rs_c);
                let (mut lo, mut hi) = (row[0], row[1]);
                if load_c {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(cr));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(cr.add(8)));
                }
                _mm256_storeu_ps(cr, lo);
                _mm256_storeu_ps(cr.add(8), hi);
            }
        }
    }

    /// `f32` AVX-512F, 8 x 32: sixteen zmm accumulators, two B loads and eight (memory-operand)
    /// broadcasts per step along k.
    pub(super) struct Avx512F32;

    impl PackAlongK<f32> for Avx512F32 {
        unsafe fn pack_along_k<const W: usize>(
            d: &mut [f32],
            src: &[f32],
            base: usize,
            rs: usize,
            valid: usize,
            kc: usize,
        ) {
            // SAFETY: this kernel family is only used with AVX2 (hence AVX) present.
            unsafe { pack_along_k_avx::<W>(d, src, base, rs, valid, kc) }
        }
    }

    impl MicroKernel<f32, 8, 32> for Avx512F32 {
        // A sliver 8 KiB + B sliver 32 KiB of a 48 KiB L1d. (KC 192..384, MC 192..768 and
        // NC 512..4096 all measured within noise of this on a 2-core Xeon with 2 MiB of L2.)
        const KC: usize = 256;
        // A block 384 KiB.
        const MC: usize = 8 * 48;
        // B panel 1 MiB.
        const NC: usize = 32 * 32;

        unsafe fn run(kc: usize, a: *const f32, b: *const f32, c: *mut f32, rs: usize, ld: bool) {
            // SAFETY: forwarded caller contract (which includes AVX-512F support).
            unsafe { kernel_avx512::<8>(kc, a, b, c, rs, ld) }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel_avx512<const MR: usize>(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        load_c: bool,
    ) {
        // SAFETY: the caller guarantees `a`/`b` hold kc steps of packed slivers and `c` a full
        // MR x 32 tile with row stride `rs_c`.
        unsafe {
            prefetch_tile(c, rs_c, MR, 32);
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            let (mut a, mut b) = (a, b);
            for _ in 0..kc {
                let b0 = _mm512_loadu_ps(b);
                let b1 = _mm512_loadu_ps(b.add(16));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*a.add(i));
                    row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
                }
                a = a.add(MR);
                b = b.add(32);
            }
            for (i, row) in acc.iter().enumerate() {
                let cr = c.add(i * rs_c);
                let (mut lo, mut hi) = (row[0], row[1]);
                if load_c {
                    lo = _mm512_add_ps(lo, _mm512_loadu_ps(cr));
                    hi = _mm512_add_ps(hi, _mm512_loadu_ps(cr.add(16)));
                }
                _mm512_storeu_ps(cr, lo);
                _mm512_storeu_ps(cr.add(16), hi);
            }
        }
    }

    /// `f64` 6 x 8: the portable body compiled with AVX2 + FMA (LLVM vectorises it to twelve
    /// ymm accumulators). `f64` is for gradient checks, where this is plenty.
    pub(super) struct Avx2F64;

    impl PackAlongK<f64> for Avx2F64 {}

    impl MicroKernel<f64, 6, 8> for Avx2F64 {
        const KC: usize = 256;
        const MC: usize = 6 * 32;
        const NC: usize = 8 * 128;

        unsafe fn run(kc: usize, a: *const f64, b: *const f64, c: *mut f64, rs: usize, ld: bool) {
            // SAFETY: forwarded caller contract (which includes AVX2 + FMA support).
            unsafe { kernel_avx2_f64(kc, a, b, c, rs, ld) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel_avx2_f64(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        rs_c: usize,
        load_c: bool,
    ) {
        // SAFETY: forwarded caller contract.
        unsafe { portable_tile::<f64, 6, 8, true>(kc, a, b, c, rs_c, load_c) }
    }

    /// [`dot`] compiled with AVX2 + FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_avx2<T: Element>(x: &[T], y: &[T]) -> T {
        super::dot::<T, true>(x, y)
    }

    /// [`gemv_rows`] compiled with AVX2 + FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemv_rows_avx2<T: Element>(
        x: MatRef<T>,
        v: MatRef<T>,
        k: usize,
        i0: usize,
        y: &mut [T],
        accumulate: bool,
    ) {
        gemv_rows::<T, true>(x, v, k, i0, y, accumulate);
    }
}
