//! Checks `gemm_f32` / `gemm_f64` (with every micro-kernel this CPU supports) against the naive
//! triple loop on random operands of many shapes, layouts and strides.

use ganlab::cpu::gemm::{
    gemm_f32, gemm_f32_with, gemm_f64, gemm_f64_with, gemm_naive_f32, gemm_naive_f64, GatherRows,
    Gemm, Kernel, MatRef, Operand,
};

/// xorshift64*: deterministic, dependency-free test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f64> {
        (0..len).map(|_| self.uniform()).collect()
    }
}

/// How an operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row-major with `pad` extra elements per row.
    Rows(usize),
    /// Column-major (a transposed operand) with `pad` extra elements per column.
    Cols(usize),
    /// Neither stride is 1.
    Strided,
}

impl Layout {
    /// `(rs, cs)` for a `rows x cols` matrix.
    fn strides(self, rows: usize, cols: usize) -> (usize, usize) {
        match self {
            Layout::Rows(pad) => (cols + pad, 1),
            Layout::Cols(pad) => (1, rows + pad),
            Layout::Strided => (2 * cols + 3, 2),
        }
    }
}

/// Elements a `rows x cols` matrix with strides `(rs, cs)` spans.
fn span(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// Relative L2 error of `got` against `want`.
fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let (mut diff, mut norm) = (0.0, 0.0);
    for (&g, &w) in got.iter().zip(want) {
        diff += (g - w) * (g - w);
        norm += w * w;
    }
    if norm == 0.0 {
        // All-zero reference (k == 0): only exact zeros pass.
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

/// One random product: operands, strides and a pre-filled C.
struct Case {
    m: usize,
    n: usize,
    k: usize,
    a: Vec<f64>,
    rs_a: usize,
    cs_a: usize,
    b: Vec<f64>,
    rs_b: usize,
    cs_b: usize,
    c0: Vec<f64>,
    accumulate: bool,
}

impl Case {
    #[allow(clippy::too_many_arguments)]
    fn new(
        rng: &mut Rng,
        m: usize,
        n: usize,
        k: usize,
        la: Layout,
        lb: Layout,
        accumulate: bool,
    ) -> Self {
        let (rs_a, cs_a) = la.strides(m, k);
        let (rs_b, cs_b) = lb.strides(k, n);
        let a = rng.vec(span(m, k, rs_a, cs_a));
        let b = rng.vec(span(k, n, rs_b, cs_b));
        // Non-accumulating calls must overwrite every element, so start from NaN.
        let c0 = if accumulate {
            rng.vec(m * n)
        } else {
            vec![f64::NAN; m * n]
        };
        Case {
            m,
            n,
            k,
            a,
            rs_a,
            cs_a,
            b,
            rs_b,
            cs_b,
            c0,
            accumulate,
        }
    }

    /// The f64 naive reference, computed from the f32-rounded operands when `from_f32`.
    fn reference(&self, from_f32: bool) -> Vec<f64> {
        let round = |v: &[f64]| -> Vec<f64> {
            if from_f32 {
                v.iter().map(|&x| x as f32 as f64).collect()
            } else {
                v.to_vec()
            }
        };
        let mut c = round(&self.c0);
        let (a, b) = (round(&self.a), round(&self.b));
        gemm_naive_f64(self.problem(&a, &b), &mut c);
        c
    }

    /// This case's product over `a` and `b` (its operands, in either type).
    fn problem<'a, T>(&self, a: &'a [T], b: &'a [T]) -> Gemm<'a, T> {
        Gemm {
            m: self.m,
            n: self.n,
            k: self.k,
            a: MatRef::new(a, self.rs_a, self.cs_a),
            b: Operand::Mat(MatRef::new(b, self.rs_b, self.cs_b)),
            accumulate: self.accumulate,
        }
    }

    /// The product with B gathered row by row through [`GatherRows`] instead of read as a
    /// matrix, in f32 and f64, with `kernel`.
    fn run_gathered(&self, kernel: Kernel) -> (Vec<f64>, Vec<f64>) {
        fn run<T: Copy + Sync>(
            case: &Case,
            b: &[T],
            a: &[T],
            c: &mut [T],
            gemm: impl Fn(Gemm<'_, T>, &mut [T]),
        ) {
            let rows = Strided(MatRef::new(b, case.rs_b, case.cs_b));
            let p = Gemm {
                accumulate: case.accumulate,
                ..Gemm::gathered(
                    (case.m, case.n, case.k),
                    MatRef::new(a, case.rs_a, case.cs_a),
                    &rows,
                )
            };
            gemm(p, c);
        }
        let f = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
        let (a, b, mut c) = (f(&self.a), f(&self.b), f(&self.c0));
        run(self, &b, &a, &mut c, |p, c| gemm_f32_with(kernel, p, c));
        let mut c64 = self.c0.clone();
        run(self, &self.b, &self.a, &mut c64, |p, c| {
            gemm_f64_with(kernel, p, c)
        });
        (c.iter().map(|&x| x as f64).collect(), c64)
    }

    fn run_f32(&self, kernel: Option<Kernel>) -> Vec<f64> {
        let f = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
        let (a, b, mut c) = (f(&self.a), f(&self.b), f(&self.c0));
        match kernel {
            Some(kern) => gemm_f32_with(kern, self.problem(&a, &b), &mut c),
            None => gemm_f32(self.problem(&a, &b), &mut c),
        }
        c.iter().map(|&x| x as f64).collect()
    }

    fn run_f64(&self, kernel: Option<Kernel>) -> Vec<f64> {
        let mut c = self.c0.clone();
        let (a, b) = (&self.a, &self.b);
        match kernel {
            Some(kern) => gemm_f64_with(kern, self.problem(a, b), &mut c),
            None => gemm_f64(self.problem(a, b), &mut c),
        }
        c
    }

    fn describe(&self) -> String {
        format!(
            "m={} n={} k={} rs_a={} cs_a={} rs_b={} cs_b={} accumulate={}",
            self.m, self.n, self.k, self.rs_a, self.cs_a, self.rs_b, self.cs_b, self.accumulate
        )
    }
}

/// Checks f32 and f64 results of every kernel (and the default entry points) for one case.
fn check(case: &Case) {
    let want32 = case.reference(true);
    let want64 = case.reference(false);
    let kernels = Kernel::supported().into_iter().map(Some);
    for kernel in std::iter::once(None).chain(kernels) {
        let got = case.run_f32(kernel);
        assert!(
            got.iter().all(|x| x.is_finite()),
            "f32 {kernel:?}: non-finite output (element not written?) for {}",
            case.describe()
        );
        let err = rel_err(&got, &want32);
        assert!(
            err <= 1e-5,
            "f32 {kernel:?}: rel err {err:e} for {}",
            case.describe()
        );
        let got = case.run_f64(kernel);
        let err = rel_err(&got, &want64);
        assert!(
            err <= 1e-12,
            "f64 {kernel:?}: rel err {err:e} for {}",
            case.describe()
        );
    }
}

/// A stored matrix handed to the GEMM row by row, as a convolution's im2col rows are.
struct Strided<'a, T>(MatRef<'a, T>);

impl<T: Copy + Sync> GatherRows<T> for Strided<'_, T> {
    fn gather(&self, p: usize, j0: usize, out: &mut [T]) {
        let b = self.0;
        for (j, o) in out.iter_mut().enumerate() {
            *o = b.data[p * b.rs + (j0 + j) * b.cs];
        }
    }
}

/// B gathered through [`GatherRows`] gives the reference's product with every kernel: the
/// packed paths (one thread, and cut into column chunks across threads) and the
/// matrix-vector paths, which gather B whole first.
#[test]
fn gathered_b_matches_the_reference() {
    let mut rng = Rng::new(11);
    let shapes = [
        (7, 9, 5),
        (64, 784, 1152),
        (5, 3300, 150),
        (800, 900, 20),
        (3, 1500, 20),
        (300, 1, 1000),
        (1, 1000, 300),
        (33, 47, 300),
    ];
    for (idx, &(m, n, k)) in shapes.iter().enumerate() {
        let (la, lb) = (ALL_LAYOUTS[idx % 3], ALL_LAYOUTS[(idx + 1) % 3]);
        let case = Case::new(&mut rng, m, n, k, la, lb, idx % 2 == 1);
        let (want32, want64) = (case.reference(true), case.reference(false));
        for kernel in Kernel::supported() {
            let (got32, got64) = case.run_gathered(kernel);
            let (e32, e64) = (rel_err(&got32, &want32), rel_err(&got64, &want64));
            assert!(
                got32.iter().all(|x| x.is_finite()) && e32 <= 1e-5 && e64 <= 1e-12,
                "{kernel:?}: rel err {e32:e} (f32), {e64:e} (f64) for {}",
                case.describe()
            );
        }
    }
}

const ALL_LAYOUTS: [Layout; 3] = [Layout::Rows(0), Layout::Cols(0), Layout::Strided];

#[test]
fn tiny_and_degenerate_sizes() {
    let mut rng = Rng::new(1);
    let sizes = [0, 1, 2, 3, 5, 7];
    for &m in &sizes {
        for &n in &sizes {
            for &k in &sizes {
                for accumulate in [false, true] {
                    let case = Case::new(
                        &mut rng,
                        m,
                        n,
                        k,
                        Layout::Rows(0),
                        Layout::Rows(0),
                        accumulate,
                    );
                    check(&case);
                }
            }
        }
    }
}

#[test]
fn zero_k_clears_or_keeps_c() {
    let a: [f32; 0] = [];
    let mut c = [f32::NAN; 6];
    gemm_f32(
        Gemm::new((2, 3, 0), MatRef::new(&a, 0, 0), MatRef::new(&a, 0, 0)),
        &mut c,
    );
    assert_eq!(c, [0.0; 6]);
    let mut c = [1.5f64; 6];
    gemm_f64(
        Gemm::new((2, 3, 0), MatRef::new(&[], 0, 0), MatRef::new(&[], 0, 0)).accumulating(),
        &mut c,
    );
    assert_eq!(c, [1.5; 6]);
}

#[test]
fn awkward_sizes_all_transposes() {
    let mut rng = Rng::new(2);
    let sizes = [1, 3, 7, 17, 63, 65, 127, 129];
    for (idx, &m) in sizes.iter().enumerate() {
        for (jdx, &n) in sizes.iter().enumerate() {
            // k walks through the sizes too, without a full cube of cases.
            let k = sizes[(idx + 2 * jdx) % sizes.len()];
            for la in [Layout::Rows(0), Layout::Cols(0)] {
                for lb in [Layout::Rows(0), Layout::Cols(0)] {
                    let accumulate = (idx + jdx) % 2 == 0;
                    check(&Case::new(&mut rng, m, n, k, la, lb, accumulate));
                }
            }
        }
    }
}

#[test]
fn padded_and_strided_layouts() {
    let mut rng = Rng::new(3);
    let layouts = [
        Layout::Rows(3),
        Layout::Cols(5),
        Layout::Strided,
        Layout::Rows(0),
    ];
    for &(m, n, k) in &[
        (17, 65, 63),
        (65, 17, 129),
        (7, 300, 33),
        (63, 1, 65),
        (1, 63, 17),
    ] {
        for la in layouts {
            for lb in layouts {
                for accumulate in [false, true] {
                    check(&Case::new(&mut rng, m, n, k, la, lb, accumulate));
                }
            }
        }
    }
}

#[test]
fn crosses_cache_blocks() {
    // Sizes past KC (256), MC (<= 384) and NC (<= 2048) of every kernel, with ragged edges.
    let mut rng = Rng::new(4);
    let shapes = [
        (257, 300, 129),
        (300, 257, 513),
        (129, 65, 1000),
        (400, 33, 300),
        (9, 2100, 260),
        (33, 4200, 17),
    ];
    for (idx, &(m, n, k)) in shapes.iter().enumerate() {
        let la = ALL_LAYOUTS[idx % 3];
        let lb = ALL_LAYOUTS[(idx + 1) % 3];
        check(&Case::new(&mut rng, m, n, k, la, lb, idx % 2 == 1));
        check(&Case::new(
            &mut rng,
            m,
            n,
            k,
            Layout::Rows(0),
            Layout::Rows(0),
            idx % 2 == 0,
        ));
    }
}

#[test]
fn parallel_chunking_and_serial_blocks() {
    // Products above the thread cut-off are cut into chunks along the longer side of C; cover
    // several chunks each way, chunks wider than NC (1024) and taller than MC (384), and
    // serial products (under the cut-off) that cross NC and MC.
    let mut rng = Rng::new(8);
    let shapes = [
        (2400, 10, 400), // split along m, three chunks
        (800, 900, 20),  // split along n, chunks taller than MC
        (5, 3300, 150),  // split along n, four chunks
        (3, 1500, 20),   // serial, crosses NC = 1024
        (2, 2100, 7),    // serial, crosses NC = 2048 (portable kernel)
        (500, 3, 30),    // serial, crosses MC = 384
        (3000, 1, 1000), // parallel matrix-vector, contiguous rows
        (1, 5000, 700),  // parallel vector-matrix
    ];
    for (idx, &(m, n, k)) in shapes.iter().enumerate() {
        let la = ALL_LAYOUTS[idx % 3];
        let lb = ALL_LAYOUTS[(idx + 2) % 3];
        check(&Case::new(&mut rng, m, n, k, la, lb, idx % 2 == 0));
        check(&Case::new(
            &mut rng,
            m,
            n,
            k,
            Layout::Rows(0),
            Layout::Rows(0),
            idx % 2 == 1,
        ));
    }
}

#[test]
fn gan_shapes() {
    let mut rng = Rng::new(5);
    let shapes = [
        (64, 6272, 100, Layout::Rows(0), Layout::Rows(0)),
        (64, 1, 6272, Layout::Rows(0), Layout::Rows(0)),
        (64, 512, 784, Layout::Rows(0), Layout::Rows(0)),
        // Transposed-A weight gradient: (64 x 512)^T * (64 x 784).
        (512, 784, 64, Layout::Cols(0), Layout::Rows(0)),
        // Transposed-B input gradient: (64 x 784) * (512 x 784)^T.
        (64, 512, 784, Layout::Rows(0), Layout::Cols(0)),
        (64, 784, 1152, Layout::Rows(0), Layout::Rows(0)),
    ];
    for (m, n, k, la, lb) in shapes {
        check(&Case::new(&mut rng, m, n, k, la, lb, false));
    }
}

#[test]
fn vector_shapes() {
    // m == 1 and n == 1 take the matrix-vector path; cover its three stride cases.
    let mut rng = Rng::new(6);
    for &(m, n, k) in &[
        (1, 1, 1),
        (1, 1000, 300),
        (300, 1, 1000),
        (200, 1, 7),
        (1, 130, 5),
    ] {
        for la in ALL_LAYOUTS {
            for lb in ALL_LAYOUTS {
                for accumulate in [false, true] {
                    check(&Case::new(&mut rng, m, n, k, la, lb, accumulate));
                }
            }
        }
    }
}

#[test]
fn nested_calls_from_rayon_tasks() {
    // The engine may call gemm from inside its own parallel loops; per-thread packing buffers
    // must cope with a rayon worker re-entering gemm while another call on it is in progress.
    use rayon::prelude::*;
    let (m, n, k) = (130, 150, 170);
    let mut rng = Rng::new(7);
    let a: Vec<f32> = rng.vec(m * k).iter().map(|&x| x as f32).collect();
    let b: Vec<f32> = rng.vec(k * n).iter().map(|&x| x as f32).collect();
    let p = Gemm::new((m, n, k), MatRef::rows(&a, k), MatRef::rows(&b, n));
    let mut want = vec![0.0f32; m * n];
    gemm_naive_f32(p, &mut want);
    let results: Vec<Vec<f32>> = (0..8)
        .into_par_iter()
        .map(|_| {
            let mut c = vec![f32::NAN; m * n];
            gemm_f32(p, &mut c);
            c
        })
        .collect();
    let want: Vec<f64> = want.iter().map(|&x| x as f64).collect();
    for c in results {
        let got: Vec<f64> = c.iter().map(|&x| x as f64).collect();
        assert!(rel_err(&got, &want) <= 1e-5);
    }
}

#[test]
fn larger_than_needed_c_is_left_alone_past_m_n() {
    let a = [1.0f32, 2.0, 3.0, 4.0];
    let b = [1.0f32, 0.0, 0.0, 1.0];
    let mut c = [9.0f32; 6];
    gemm_f32(
        Gemm::new((2, 2, 2), MatRef::new(&a, 2, 1), MatRef::new(&b, 2, 1)),
        &mut c,
    );
    assert_eq!(c, [1.0, 2.0, 3.0, 4.0, 9.0, 9.0]);
}

#[test]
#[should_panic(expected = "A slice too short")]
fn short_a_panics() {
    let mut c = [0.0f32; 4];
    gemm_f32(
        Gemm::new(
            (2, 2, 2),
            MatRef::new(&[1.0; 3], 2, 1),
            MatRef::new(&[1.0; 4], 2, 1),
        ),
        &mut c,
    );
}

#[test]
#[should_panic(expected = "B slice too short")]
fn short_b_panics() {
    let mut c = [0.0f64; 4];
    // Transposed B (rs_b = 1, cs_b = 3) spans 1 * 1 + 1 * 3 + 1 = 5 elements.
    gemm_f64(
        Gemm::new(
            (2, 2, 2),
            MatRef::new(&[1.0; 4], 2, 1),
            MatRef::new(&[1.0; 4], 1, 3),
        ),
        &mut c,
    );
}

#[test]
#[should_panic(expected = "C slice too short")]
fn short_c_panics() {
    let mut c = [0.0f32; 3];
    gemm_f32(
        Gemm::new(
            (2, 2, 2),
            MatRef::new(&[1.0; 4], 2, 1),
            MatRef::new(&[1.0; 4], 2, 1),
        ),
        &mut c,
    );
}

#[test]
#[should_panic(expected = "A slice too short")]
fn naive_checks_bounds_too() {
    let mut c = [0.0f32; 4];
    gemm_naive_f32(
        Gemm::new(
            (2, 2, 2),
            MatRef::new(&[1.0; 3], 2, 1),
            MatRef::new(&[1.0; 4], 2, 1),
        ),
        &mut c,
    );
}

#[test]
fn portable_kernel_is_always_supported() {
    assert!(Kernel::Portable.is_supported());
    assert!(Kernel::supported().contains(&Kernel::Portable));
    assert!(Kernel::best_f32().is_supported());
    assert!(Kernel::best_f64().is_supported());
}
