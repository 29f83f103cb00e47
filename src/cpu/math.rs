//! Elementary functions for the f32 CPU kernels, written without branches or calls so that a
//! loop over a slice vectorises (libm's are scalar calls: `tanhf` was 7% of an MLP-GAN step).
//! The f64 path keeps libm's, so gradient checks compare against correctly rounded values.

/// `tanh(x)` within 5e-7 (7 ulp near 1) of the exact value, odd, in [-1, 1], NaN for NaN.
///
/// A rational approximation on [-7.9, 7.9] (beyond, tanh rounds to +-1 in f32): an odd
/// degree-13 numerator over an even degree-6 denominator, with Eigen's minimax coefficients
/// (`ptanh_float`); below 4e-4, `x` itself is closer.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const CLAMP: f32 = 7.905_311;
    const TINY: f32 = 4e-4;
    const P: [f32; 7] = [
        4.893_524_6e-3,
        6.372_619_5e-4,
        1.485_722_4e-5,
        5.122_297_3e-8,
        -8.604_672e-11,
        2.000_188e-13,
        -2.760_768_4e-16,
    ];
    const Q: [f32; 4] = [4.893_525e-3, 2.268_434_7e-3, 1.185_347_1e-4, 1.198_258_4e-6];
    // `clamp` keeps a NaN (min/max would not).
    let c = x.clamp(-CLAMP, CLAMP);
    let c2 = c * c;
    let p = P.iter().rev().fold(0.0, |acc, &k| acc * c2 + k) * c;
    let q = Q.iter().rev().fold(0.0, |acc, &k| acc * c2 + k);
    let r = (p / q).clamp(-1.0, 1.0);
    if x.abs() < TINY {
        x
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tanh_is_within_5e7_of_the_exact_value_and_keeps_its_shape() {
        let mut worst = 0f64;
        for i in -2_000_000..=2_000_000 {
            let x = i as f32 * 5e-6; // [-10, 10]
            let y = super::tanh(x);
            let exact = f64::from(x).tanh();
            worst = worst.max((f64::from(y) - exact).abs());
            assert!(y.abs() <= 1.0, "tanh({x}) = {y}");
            assert_eq!(super::tanh(-x), -y, "odd at {x}");
        }
        assert!(worst < 5e-7, "worst error {worst}");
        for x in [1e-30f32, -3e-5, 1e-10] {
            assert_eq!(super::tanh(x), x);
        }
        assert_eq!(super::tanh(f32::INFINITY), 1.0);
        assert_eq!(super::tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(super::tanh(100.0), 1.0);
        assert!(super::tanh(f32::NAN).is_nan());
    }
}
