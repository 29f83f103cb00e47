//! Placeholder reference GEMM (replaced by the blocked kernel).
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    rs_a: usize,
    cs_a: usize,
    b: &[f32],
    rs_b: usize,
    cs_b: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..k {
                s += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
            }
            if accumulate {
                c[i * n + j] += s
            } else {
                c[i * n + j] = s
            }
        }
    }
}
#[allow(clippy::too_many_arguments)]
pub fn gemm_f64(
    m: usize,
    n: usize,
    k: usize,
    a: &[f64],
    rs_a: usize,
    cs_a: usize,
    b: &[f64],
    rs_b: usize,
    cs_b: usize,
    c: &mut [f64],
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f64;
            for p in 0..k {
                s += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
            }
            if accumulate {
                c[i * n + j] += s
            } else {
                c[i * n + j] = s
            }
        }
    }
}
#[allow(clippy::too_many_arguments)]
pub fn gemm_naive_f32(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    rs_a: usize,
    cs_a: usize,
    b: &[f32],
    rs_b: usize,
    cs_b: usize,
    c: &mut [f32],
    accumulate: bool,
) {
    gemm_f32(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, c, accumulate)
}
