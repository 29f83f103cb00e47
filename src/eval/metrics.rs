//! Inception Score, Frechet distance and class coverage, computed in f64 from a classifier's
//! outputs: softmax probabilities (IS, class histogram) and penultimate features (FID).

use super::linalg::{matmul, sqrt_psd};

/// Mean and unbiased covariance (d x d, row-major) of `n` feature rows of length `d`.
pub fn mean_and_covariance(features: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = features.len() / d.max(1);
    let mut mean = vec![0.0; d];
    for row in features.chunks(d) {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut cov = vec![0.0; d * d];
    for row in features.chunks(d) {
        let c: Vec<f64> = row
            .iter()
            .zip(&mean)
            .map(|(&x, m)| f64::from(x) - m)
            .collect();
        for i in 0..d {
            for j in i..d {
                cov[i * d + j] += c[i] * c[j];
            }
        }
    }
    let denom = (n.max(2) - 1) as f64;
    for i in 0..d {
        for j in i..d {
            cov[i * d + j] /= denom;
            cov[j * d + i] = cov[i * d + j];
        }
    }
    (mean, cov)
}

/// Frechet distance between N(mu1, s1) and N(mu2, s2):
/// ||mu1 - mu2||^2 + Tr(s1 + s2 - 2 (s1 s2)^(1/2)). The trace of (s1 s2)^(1/2) is taken as
/// Tr((r s2 r)^(1/2)) with r = s1^(1/2), a symmetric PSD matrix, so only symmetric
/// eigendecompositions are needed.
pub fn frechet_distance(mu1: &[f64], s1: &[f64], mu2: &[f64], s2: &[f64]) -> f64 {
    let d = mu1.len();
    let mean_term: f64 = mu1.iter().zip(mu2).map(|(a, b)| (a - b).powi(2)).sum();
    let r = sqrt_psd(s1, d);
    let mid = matmul(&matmul(&r, s2, d), &r, d);
    // Symmetrise away round-off before the eigendecomposition.
    let mid: Vec<f64> = (0..d * d)
        .map(|k| 0.5 * (mid[k] + mid[(k % d) * d + k / d]))
        .collect();
    let root = sqrt_psd(&mid, d);
    let trace = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
    (mean_term + trace(s1) + trace(s2) - 2.0 * trace(&root)).max(0.0)
}

/// Frechet distance between two sets of feature rows.
pub fn frechet_distance_of(a: &[f32], b: &[f32], d: usize) -> f64 {
    let (m1, s1) = mean_and_covariance(a, d);
    let (m2, s2) = mean_and_covariance(b, d);
    frechet_distance(&m1, &s1, &m2, &s2)
}

/// Inception Score exp(E_x KL(p(y|x) || p(y))) of `probs` (rows of k class probabilities),
/// as mean and standard deviation over `splits` equal parts (the usual 10).
pub fn inception_score(probs: &[f32], k: usize, splits: usize) -> (f64, f64) {
    let n = probs.len() / k.max(1);
    let splits = splits.clamp(1, n.max(1));
    let scores: Vec<f64> = (0..splits)
        .map(|s| {
            let part = &probs[s * n / splits * k..(s + 1) * n / splits * k];
            let rows = part.len() / k;
            let mut marginal = vec![0.0; k];
            for row in part.chunks(k) {
                for (m, &p) in marginal.iter_mut().zip(row) {
                    *m += f64::from(p) / rows as f64;
                }
            }
            let kl: f64 = part
                .chunks(k)
                .map(|row| {
                    row.iter()
                        .zip(&marginal)
                        .filter(|(&p, _)| p > 0.0)
                        .map(|(&p, &m)| f64::from(p) * (f64::from(p).ln() - m.ln()))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / rows as f64;
            kl.exp()
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let var = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64;
    (mean, var.sqrt())
}

/// Class coverage of a sample: histogram of predicted classes, how many classes hold at
/// least 1% of the samples, and KL(histogram || uniform) in nats (0 when perfectly balanced,
/// ln k when every sample is one class).
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    pub histogram: Vec<usize>,
    pub classes_covered: usize,
    pub kl_to_uniform: f64,
}

pub fn class_coverage(predicted: &[usize], k: usize) -> Coverage {
    let mut histogram = vec![0; k];
    for &c in predicted {
        if c < k {
            histogram[c] += 1;
        }
    }
    let n = predicted.len().max(1) as f64;
    let covered = histogram
        .iter()
        .filter(|&&c| c as f64 >= (0.01 * n).max(1.0))
        .count();
    let kl = histogram
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            p * (p * k as f64).ln()
        })
        .sum();
    Coverage {
        histogram,
        classes_covered: covered,
        kl_to_uniform: kl,
    }
}

/// Index of the largest probability in each row.
pub fn argmax_rows(probs: &[f32], k: usize) -> Vec<usize> {
    probs
        .chunks(k)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
                    if p > best.1 {
                        (i, p)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inception_score_extremes() {
        // One-hot predictions spread evenly over 10 classes: IS = 10.
        let k = 10;
        let probs: Vec<f32> = (0..1000)
            .flat_map(|i| (0..k).map(move |c| if c == i % k { 1.0 } else { 0.0 }))
            .collect();
        let (mean, std) = inception_score(&probs, k, 10);
        assert!((mean - 10.0).abs() < 1e-9 && std < 1e-9, "{mean} {std}");
        // The same prediction for every sample: IS = 1.
        let constant: Vec<f32> = (0..1000).flat_map(|_| [0.5, 0.3, 0.2]).collect();
        assert!((inception_score(&constant, 3, 10).0 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn frechet_distance_of_gaussians_with_known_answer() {
        // N(mu, I) vs N(0, 4I) in d dims: ||mu||^2 + d (1 + 4 - 2*2) = ||mu||^2 + d.
        let d = 4;
        let eye: Vec<f64> = (0..d * d)
            .map(|k| if k % (d + 1) == 0 { 1.0 } else { 0.0 })
            .collect();
        let four: Vec<f64> = eye.iter().map(|v| 4.0 * v).collect();
        let mu = vec![1.0, -2.0, 0.5, 0.0];
        let fd = frechet_distance(&mu, &eye, &[0.0; 4], &four);
        assert!((fd - (5.25 + 4.0)).abs() < 1e-10, "{fd}");
    }

    #[test]
    fn frechet_distance_is_zero_on_itself_and_grows_with_noise() {
        let mut state = 12345u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let d = 8;
        let a: Vec<f32> = (0..2000 * d).map(|_| next() as f32).collect();
        assert!(frechet_distance_of(&a, &a, d) < 1e-9);
        let mut last = 0.0;
        for noise in [0.1, 0.3, 1.0] {
            let b: Vec<f32> = a.iter().map(|&x| x + (noise * next()) as f32).collect();
            let fd = frechet_distance_of(&a, &b, d);
            assert!(fd > last, "noise {noise}: {fd} <= {last}");
            last = fd;
        }
    }

    #[test]
    fn coverage_reports_collapse() {
        let collapsed = class_coverage(&[3; 500], 10);
        assert_eq!(collapsed.classes_covered, 1);
        assert!((collapsed.kl_to_uniform - 10f64.ln()).abs() < 1e-12);
        let balanced = class_coverage(&(0..500).map(|i| i % 10).collect::<Vec<_>>(), 10);
        assert_eq!(balanced.classes_covered, 10);
        assert!(balanced.kl_to_uniform.abs() < 1e-12);
        assert_eq!(
            argmax_rows(&[0.1, 0.7, 0.2, 0.9, 0.05, 0.05], 3),
            vec![1, 0]
        );
    }
}
