//! Small dense symmetric linear algebra in f64, for the Frechet distance: a cyclic Jacobi
//! eigendecomposition (robust and accurate for the few-hundred-dimensional covariances of
//! feature vectors) and the square root of a symmetric positive semi-definite matrix.

/// Eigenvalues and eigenvectors of the symmetric n x n matrix `a` (row-major). Returns
/// (values, vectors) with eigenvector j in column j of `vectors`.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n, "matrix must be n x n");
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = m
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                // The rotation that zeroes m[p][q] (Golub & Van Loan, sym.schur2).
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

/// The symmetric square root of a symmetric positive semi-definite matrix; eigenvalues that
/// round-off made slightly negative are treated as zero.
pub fn sqrt_psd(a: &[f64], n: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(a, n);
    let roots: Vec<f64> = values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = (0..n)
                .map(|k| vectors[i * n + k] * roots[k] * vectors[j * n + k])
                .sum();
        }
    }
    out
}

/// Plain n x n matrix product.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotation R (Givens in two planes) so that R diag(d) R^T is a dense symmetric matrix.
    fn rotated(d: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let n = d.len();
        let (c1, s1, c2, s2) = (0.6f64, 0.8f64, 0.28f64, 0.96f64);
        let mut r = vec![0.0; n * n];
        for i in 0..n {
            r[i * n + i] = 1.0;
        }
        let g1 = {
            let mut g = r.clone();
            g[0] = c1;
            g[1] = -s1;
            g[n] = s1;
            g[n + 1] = c1;
            g
        };
        let g2 = {
            let mut g = r.clone();
            g[n + 1] = c2;
            g[n + 2] = -s2;
            g[2 * n + 1] = s2;
            g[2 * n + 2] = c2;
            g
        };
        let r = matmul(&g1, &g2, n);
        let mut dm = vec![0.0; n * n];
        for i in 0..n {
            dm[i * n + i] = d[i];
        }
        let rt: Vec<f64> = (0..n * n).map(|k| r[(k % n) * n + k / n]).collect();
        (matmul(&matmul(&r, &dm, n), &rt, n), r)
    }

    #[test]
    fn square_root_of_a_known_matrix() {
        // S = R diag(1, 4, 9) R^T has the square root R diag(1, 2, 3) R^T.
        let (s, _) = rotated(&[1.0, 4.0, 9.0]);
        let (want, _) = rotated(&[1.0, 2.0, 3.0]);
        let got = sqrt_psd(&s, 3);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
        let back = matmul(&got, &got, 3);
        for (b, v) in back.iter().zip(&s) {
            assert!((b - v).abs() < 1e-12);
        }
    }

    #[test]
    fn eigenvalues_of_a_known_matrix() {
        let (s, _) = rotated(&[0.5, -2.0, 7.0]);
        let (mut values, _) = symmetric_eigen(&s, 3);
        values.sort_by(f64::total_cmp);
        for (v, w) in values.iter().zip([-2.0, 0.5, 7.0]) {
            assert!((v - w).abs() < 1e-12, "{values:?}");
        }
    }
}
