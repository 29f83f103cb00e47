//! Every GPU kernel against its CPU reference on fresh random inputs of several shapes (odd
//! sizes included), with every GPU output buffer poisoned with NaN first.

#![allow(clippy::cloned_ref_to_slice_refs)] // `grad(&[y.clone()], ..)` reads best in tests

mod common;

use common::{assert_gpu_matches_cpu, assert_within_terms, fresh_rng, gpu, gpu_and_cpu, randn};
use ganlab::{Device, Result, Tensor};

const ELEMENTWISE: f64 = 1e-5;
const REDUCTION: f64 = 1e-4;
const SUMMATION: f64 = 1e-5;
const SHAPES: &[&[usize]] = &[
    &[1],
    &[7],
    &[257],
    &[3, 5],
    &[2, 3, 17],
    &[4, 1, 9, 33],
    &[70_001],
];

#[test]
fn activation_backward_kernels() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("activation_backward_kernels");
    type Op = fn(&Tensor) -> ganlab::Result<Tensor>;
    let ops: &[(&str, Op)] = &[
        ("tanh", |t| t.tanh()),
        ("sigmoid", |t| t.sigmoid()),
        ("relu", |t| t.relu()),
        ("leaky_relu", |t| t.leaky_relu(0.2)),
    ];
    for shape in SHAPES {
        for (name, op) in ops {
            // Within +-2: tanh's and sigmoid's derivatives come from their outputs (as in
            // PyTorch), and 1 - y^2 loses relative precision where y saturates.
            let x = Tensor::rand_uniform(shape, -2.0, 2.0, &mut rng, &Device::Cpu).unwrap();
            let w = randn(shape, &mut rng);
            let what = format!("{name} backward {shape:?}");
            assert_gpu_matches_cpu(&what, &gpu, &[x, w], ELEMENTWISE, |t| {
                let xl = t[0].detach().with_grad();
                let loss = op(&xl)?.mul(&t[1])?.sum_all()?;
                Ok(ganlab::grad(&[loss], None, &[xl], false)?[0]
                    .clone()
                    .unwrap())
            });
        }
    }
}

#[test]
fn unary_ops() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("unary_ops");
    type Op = fn(&Tensor) -> ganlab::Result<Tensor>;
    let ops: &[(&str, Op, bool)] = &[
        ("neg", |t| t.neg(), false),
        ("exp", |t| t.exp(), false),
        ("log", |t| t.log(), true),
        ("sqrt", |t| t.sqrt(), true),
        ("abs", |t| t.abs(), false),
        ("sign", |t| t.sign(), false),
        ("tanh", |t| t.tanh(), false),
        ("sigmoid", |t| t.sigmoid(), false),
        ("relu", |t| t.relu(), false),
        ("leaky_relu", |t| t.leaky_relu(0.2), false),
        ("pow2", |t| t.pow(2.0), false),
        ("pow3", |t| t.pow(3.0), false),
        ("pow-1.5", |t| t.pow(-1.5), true),
        ("square", |t| t.square(), false),
        ("clamp", |t| t.clamp(-0.5, 0.7), false),
        ("add_scalar", |t| t.add_scalar(1.25), false),
        ("mul_scalar", |t| t.mul_scalar(-3.5), false),
    ];
    for shape in SHAPES {
        for (name, op, positive) in ops {
            let mut x = randn(shape, &mut rng).mul_scalar(3.0).unwrap();
            if *positive {
                x = x.abs().unwrap().add_scalar(0.1).unwrap();
            }
            assert_gpu_matches_cpu(&format!("{name} {shape:?}"), &gpu, &[x], ELEMENTWISE, |t| {
                op(&t[0])
            });
        }
    }
}

#[test]
fn activations_stay_finite_at_extreme_inputs() {
    let Some(gpu) = gpu() else { return };
    let x = Tensor::from_vec(
        vec![-1e4, -100.0, -60.0, 0.0, 60.0, 100.0, 1e4],
        &[7],
        &Device::Cpu,
    )
    .unwrap();
    for (name, op) in [
        ("sigmoid", Tensor::sigmoid as fn(&Tensor) -> _),
        ("tanh", Tensor::tanh),
    ] {
        let out = op(&x.to_device(&gpu).unwrap()).unwrap().to_vec().unwrap();
        assert!(out.iter().all(|v| v.is_finite()), "{name}: {out:?}");
        assert_gpu_matches_cpu(name, &gpu, std::slice::from_ref(&x), ELEMENTWISE, |t| {
            op(&t[0])
        });
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("binary_ops_with_broadcasting");
    let pairs: &[(&[usize], &[usize])] = &[
        (&[7], &[7]),
        (&[70_001], &[70_001]),
        (&[3, 5], &[5]),
        (&[3, 5], &[3, 1]),
        (&[2, 3, 17], &[1, 3, 1]),
        (&[4, 1, 9, 33], &[5, 1, 33]),
        (&[1], &[2, 3]),
        (&[], &[6, 5]),
    ];
    for (sa, sb) in pairs {
        let a = randn(sa, &mut rng);
        let b = randn(sb, &mut rng);
        // Keep divisors away from zero so the quotient is well conditioned.
        let b_div = b.abs().unwrap().add_scalar(0.5).unwrap();
        let what = |op: &str| format!("{op} {sa:?} {sb:?}");
        assert_gpu_matches_cpu(
            &what("add"),
            &gpu,
            &[a.clone(), b.clone()],
            ELEMENTWISE,
            |t| t[0].add(&t[1]),
        );
        assert_gpu_matches_cpu(
            &what("sub"),
            &gpu,
            &[a.clone(), b.clone()],
            ELEMENTWISE,
            |t| t[0].sub(&t[1]),
        );
        assert_gpu_matches_cpu(
            &what("mul"),
            &gpu,
            &[a.clone(), b.clone()],
            ELEMENTWISE,
            |t| t[0].mul(&t[1]),
        );
        assert_gpu_matches_cpu(&what("div"), &gpu, &[a.clone(), b_div], ELEMENTWISE, |t| {
            t[0].div(&t[1])
        });
        assert_gpu_matches_cpu(
            &what("eq"),
            &gpu,
            &[a.clone(), b.clone()],
            ELEMENTWISE,
            |t| t[0].eq_mask(&t[1]),
        );
        // a * [b > 0] equals a exactly where b > 0, so the mask holds both values.
        assert_gpu_matches_cpu(
            &what("eq mixed"),
            &gpu,
            &[a.clone(), b.clone()],
            ELEMENTWISE,
            |t| t[0].eq_mask(&t[0].mul(&t[1].sign()?.relu()?)?),
        );
    }
}

#[test]
fn reductions() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("reductions");
    let cases: &[(&[usize], &[isize])] = &[
        (&[7], &[0]),
        (&[300_007], &[0]),
        (&[3, 5], &[1]),
        (&[3, 5], &[0]),
        (&[2, 3, 17], &[0, 2]),
        (&[4, 3, 9, 33], &[0, 2, 3]),
        (&[5, 1000], &[1]),
        (&[1000, 5], &[0]),
        (&[64, 6272], &[0]),
        (&[2, 3, 4], &[]),
    ];
    // Long rows over few outputs take a workgroup each: with subgroup operations where the
    // device has them (lavapipe does), and with the shared-memory tree when forced off.
    for on in [true, false] {
        ganlab::device::with_subgroups(on, || {
            for (shape, axes) in cases {
                let x = randn(shape, &mut rng);
                let what = |op: &str| format!("{op} {shape:?} over {axes:?}, subgroups {on}");
                assert_sum_matches(&what("sum"), &gpu, &x, |t| t.sum(axes, false));
                assert_sum_matches(&what("sum keepdim"), &gpu, &x, |t| t.sum(axes, true));
                assert_sum_matches(&what("mean"), &gpu, &x, |t| t.mean(axes, false));
                // Small integers sum exactly in f32 in any order: a term dropped or counted
                // twice shows, however many there are.
                let ints = small_integers(shape, &mut rng);
                let (g, c) = gpu_and_cpu(&what("integer sum"), &gpu, &[ints], |t| {
                    t[0].sum(axes, false)
                });
                assert_eq!(g, c, "{}", what("integer sum"));
                if axes.len() == 1 {
                    assert_gpu_matches_cpu(
                        &what("max"),
                        &gpu,
                        std::slice::from_ref(&x),
                        REDUCTION,
                        |t| t[0].max(axes[0], false),
                    );
                }
            }
        });
    }
    let x = randn(&[3, 4, 5], &mut rng);
    assert_gpu_matches_cpu("max_all", &gpu, std::slice::from_ref(&x), REDUCTION, |t| {
        t[0].max_all()
    });
    assert_sum_matches("sum_to", &gpu, &x, |t| t.sum_to(&[4, 1]));
}

/// Each output of a sum within `SUMMATION` times the sum of its terms' magnitudes, the bound
/// rounding error obeys in any order of summation. An error relative to the result itself
/// (`REDUCTION`) is unbounded where the terms cancel: the GPU's sums of 300,007 normals are
/// off by about 3e-4, so a draw summing to under 3 failed it, about one run in a hundred
/// (CI did once).
fn assert_sum_matches(what: &str, gpu: &Device, x: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    let (g, c) = gpu_and_cpu(what, gpu, std::slice::from_ref(x), |t| f(&t[0]));
    let scale = f(&x.abs().unwrap()).unwrap().to_vec_f64().unwrap();
    assert_within_terms(what, &g, &c, &scale, SUMMATION);
}

/// Integers in -8..=8 as an f32 CPU tensor.
fn small_integers(shape: &[usize], rng: &mut ganlab::Rng) -> Tensor {
    let x = Tensor::rand_uniform(shape, -8.5, 8.5, rng, &Device::Cpu).unwrap();
    let ints = x.to_vec().unwrap().iter().map(|v| v.round()).collect();
    Tensor::from_vec(ints, shape, &Device::Cpu).unwrap()
}

#[test]
fn layout_ops() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("layout_ops");
    let x = randn(&[2, 3, 5, 7], &mut rng);
    let y = randn(&[2, 4, 5, 7], &mut rng);
    let one = [x.clone()];
    let exact = 0.0;
    assert_gpu_matches_cpu("permute", &gpu, &one, exact, |t| {
        t[0].permute(&[3, 1, 0, 2])
    });
    assert_gpu_matches_cpu("transpose", &gpu, &one, exact, |t| t[0].transpose(-1, -2));
    assert_gpu_matches_cpu("reshape", &gpu, &one, exact, |t| t[0].reshape(&[6, 35]));
    assert_gpu_matches_cpu("flatten", &gpu, &one, exact, |t| t[0].flatten(1));
    assert_gpu_matches_cpu("narrow", &gpu, &one, exact, |t| t[0].narrow(2, 1, 3));
    assert_gpu_matches_cpu("narrow last", &gpu, &one, exact, |t| t[0].narrow(-1, 6, 1));
    assert_gpu_matches_cpu("pad", &gpu, &one, exact, |t| {
        t[0].pad(&[(0, 0), (1, 2), (0, 1), (3, 0)])
    });
    assert_gpu_matches_cpu("expand", &gpu, &[randn(&[3, 1, 7], &mut rng)], exact, |t| {
        t[0].expand(&[2, 3, 5, 7])
    });
    assert_gpu_matches_cpu("concat", &gpu, &[x.clone(), y], exact, |t| {
        Tensor::concat(&[&t[0], &t[1]], 1)
    });
    assert_gpu_matches_cpu("concat last", &gpu, &[x.clone(), x], exact, |t| {
        Tensor::concat(&[&t[0], &t[1]], -1)
    });
}

#[test]
fn matmul_shapes_transposes_and_batches() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("matmul_shapes_transposes_and_batches");
    // (batch of a, batch of b, m, k, n): sizes straddle the 64x64x16 tiles.
    type Case = (&'static [usize], &'static [usize], usize, usize, usize);
    let cases: &[Case] = &[
        (&[], &[], 1, 1, 1),
        (&[], &[], 1, 100, 1),
        (&[], &[], 17, 33, 9),
        (&[], &[], 64, 64, 64),
        (&[], &[], 65, 129, 63),
        (&[], &[], 130, 17, 200),
        (&[], &[], 5, 0, 3),
        (&[3], &[3], 7, 19, 70),
        (&[3], &[], 33, 20, 11),
        (&[], &[2, 2], 9, 31, 5),
        (&[2, 1], &[1, 3], 6, 7, 8),
    ];
    for &(ba, bb, m, k, n) in cases {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut sa = ba.to_vec();
            sa.extend(if ta { [k, m] } else { [m, k] });
            let mut sb = bb.to_vec();
            sb.extend(if tb { [n, k] } else { [k, n] });
            let a = randn(&sa, &mut rng);
            let b = randn(&sb, &mut rng);
            // Relative to the sums of |a||b|, not to results that cancel: a single dot
            // product of 100 terms can come out near zero, where f32 rounding in another
            // order is a large share of it.
            let product = |a: &Tensor, b: &Tensor| ganlab::ops::matmul_t(a, b, ta, tb);
            let norm = |t: Tensor| {
                t.to_vec()
                    .unwrap()
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            };
            let exact = norm(product(&a, &b).unwrap());
            let magnitude = norm(product(&a.abs().unwrap(), &b.abs().unwrap()).unwrap());
            let cancelled = f64::from(magnitude / exact.max(f32::MIN_POSITIVE)).max(1.0);
            assert_gpu_matches_cpu(
                &format!(
                    "matmul {sa:?}{} @ {sb:?}{}",
                    if ta { "T" } else { "" },
                    if tb { "T" } else { "" }
                ),
                &gpu,
                &[a, b],
                REDUCTION * cancelled,
                |t| product(&t[0], &t[1]),
            );
        }
    }
}

#[test]
fn creation_and_transfer_round_trip() {
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("creation_and_transfer_round_trip");
    let x = randn(&[3, 1001], &mut rng);
    let back = x.to_device(&gpu).unwrap().to_device(&Device::Cpu).unwrap();
    assert_eq!(back.to_vec().unwrap(), x.to_vec().unwrap());
    let full = Tensor::full(&[5, 77], -2.5, &gpu)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(full.iter().all(|&v| v == -2.5));
    let zeros = Tensor::zeros(&[1000], &gpu).unwrap().to_vec().unwrap();
    assert!(zeros.iter().all(|&v| v == 0.0));
}

/// Every GEMM variant (tiled, wide, thin; whole or split-K) on ragged shapes: K prime, M = 1,
/// N = 1, 4 rows or columns (the thin kernel's most), sizes that are not multiples of the tile;
/// transposed and plain operands (each side of the thin kernel in both thread layouts).
#[test]
fn every_gemm_variant_matches_cpu() {
    use ganlab::ops::gemm::{with_splits, with_variant, Variant};
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("every_gemm_variant_matches_cpu");
    for (m, k, n) in [
        (1, 997, 70),
        (65, 997, 1),
        (33, 130, 129),
        (4, 211, 300),
        (150, 67, 3),
    ] {
        // A as m x k, and as k x m read transposed; B as k x n, and as n x k read transposed.
        let as_ = [randn(&[m, k], &mut rng), randn(&[k, m], &mut rng)];
        let bs = [randn(&[k, n], &mut rng), randn(&[n, k], &mut rng)];
        let layouts = [(false, false), (false, true), (true, false)];
        for variant in [Variant::Tiled, Variant::Wide, Variant::Thin] {
            for splits in [1, 2, 5, 63] {
                for (ta, tb) in layouts {
                    let inputs = [as_[ta as usize].clone(), bs[tb as usize].clone()];
                    with_variant(variant, || {
                        with_splits(splits, || {
                            assert_gpu_matches_cpu(
                                &format!("{m}x{k}x{n} {variant:?} / {splits}, a^T {ta} b^T {tb}"),
                                &gpu,
                                &inputs,
                                REDUCTION,
                                |t| ganlab::ops::matmul_t(&t[0], &t[1], ta, tb),
                            )
                        })
                    });
                }
            }
        }
    }
}

/// A batch of products split along K (K = 431, 27 K-steps), tiled and thin: the grid's layers
/// are batch x slices and the reduce adds each product's slices (with 9 slices, by its
/// subgroup kernel where the device has one); broadcast and transposed operands.
#[test]
fn batched_products_split_along_k_match_cpu() {
    use ganlab::device::with_subgroups;
    use ganlab::ops::gemm::{record_launches, with_splits};
    let Some(gpu) = gpu() else { return };
    let Device::Gpu(ctx) = &gpu else { return };
    let has = ctx.has_subgroups();
    let mut rng = fresh_rng("batched_products_split_along_k_match_cpu");
    let (b, bt) = (randn(&[3, 431, 66], &mut rng), randn(&[66, 431], &mut rng));
    // 70 rows take the tiles, 2 the thin kernel.
    for a in [
        randn(&[3, 70, 431], &mut rng),
        randn(&[3, 2, 431], &mut rng),
    ] {
        for (on, splits) in [true, false]
            .into_iter()
            .flat_map(|on| [1, 2, 9].map(|s| (on, s)))
        {
            for (b, tb) in [(&b, false), (&bt, true)] {
                let m = a.shape()[1];
                let what = format!("3 x {m}x431x66, b^T {tb}, {splits} splits, subgroups {on}");
                let ((), launches) = record_launches(|| {
                    with_subgroups(on, || {
                        with_splits(splits, || {
                            let inputs = [a.clone(), b.clone()];
                            assert_gpu_matches_cpu(&what, &gpu, &inputs, REDUCTION, |t| {
                                ganlab::ops::matmul_t(&t[0], &t[1], false, tb)
                            })
                        })
                    })
                });
                let l = launches.first().expect("a GEMM ran");
                assert_eq!((l.batch, l.splits), (3, splits), "{what}");
                let thin = l.variant == ganlab::ops::gemm::Variant::Thin;
                assert_eq!(thin, m == 2, "{what}");
                assert_eq!(l.subgroups, on && has && (splits == 9 || thin), "{what}");
            }
        }
    }
}

/// A linear layer (input, weight, bias) with output gradient t[3]: its output and its three
/// gradients, concatenated.
fn linear_and_grads(t: &[Tensor]) -> ganlab::Result<Tensor> {
    let leaves: Vec<Tensor> = t[..3].iter().map(|v| v.detach().with_grad()).collect();
    let y = leaves[0].linear(&leaves[1], Some(&leaves[2]))?;
    let g = ganlab::grad(&[y.clone()], Some(&[t[3].clone()]), &leaves, false)?;
    let mut parts = vec![y.flatten(0)?];
    parts.extend(g.into_iter().map(|g| g.unwrap().flatten(0).unwrap()));
    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
}

#[test]
fn linear_with_its_bias_in_the_gemm_store_matches_cpu() {
    use ganlab::ops::gemm::{with_splits, with_variant, Variant};
    let Some(gpu) = gpu() else { return };
    let mut rng = fresh_rng("linear_with_its_bias_in_the_gemm_store_matches_cpu");
    for (m, k, n) in [(1, 100, 6272), (64, 4096, 1), (33, 130, 129)] {
        let inputs = [
            randn(&[m, k], &mut rng),
            randn(&[n, k], &mut rng),
            randn(&[n], &mut rng),
            randn(&[m, n], &mut rng),
        ];
        for variant in [Variant::Tiled, Variant::Wide, Variant::Thin] {
            for splits in [1, 3] {
                with_variant(variant, || {
                    with_splits(splits, || {
                        let what = format!("linear {m}x{k} -> {n}, {variant:?}, {splits} splits");
                        assert_gpu_matches_cpu(&what, &gpu, &inputs, REDUCTION, linear_and_grads)
                    })
                });
            }
        }
    }
}

/// Products, batched and transposed operands and a linear layer with its bias and gradients on
/// cooperative-matrix fragments: emulated (8x8 and 16x16, f16 inputs where the adapter has
/// f16) and, where the adapter offers them, on the hardware's; whole and split along K.
#[test]
fn products_on_matrix_fragments_match_cpu() {
    use ganlab::ops::gemm::{record_launches, with_splits};
    let mut rng = fresh_rng("products_on_matrix_fragments_match_cpu");
    // Ragged (K prime, sides that are not multiples of the tiles), five rows (the least that
    // are not thin), a batch with a broadcast, transposed B.
    let products = [
        (
            randn(&[33, 131], &mut rng),
            randn(&[131, 129], &mut rng),
            false,
        ),
        (
            randn(&[5, 997], &mut rng),
            randn(&[70, 997], &mut rng),
            true,
        ),
        (
            randn(&[3, 70, 431], &mut rng),
            randn(&[3, 431, 66], &mut rng),
            false,
        ),
        (
            randn(&[3, 70, 431], &mut rng),
            randn(&[66, 431], &mut rng),
            true,
        ),
    ];
    let layer = [
        randn(&[33, 130], &mut rng),
        randn(&[129, 130], &mut rng),
        randn(&[129], &mut rng),
        randn(&[33, 129], &mut rng),
    ];
    let requests = ["emulate", "emulate-f32", "emulate16-f32", "on"];
    for (request, m) in common::MatrixContext::open_all(&requests) {
        let (gpu, tol) = (&m.gpu, m.tol);
        let ((), launches) = record_launches(|| {
            for splits in [1, 3] {
                for (a, b, tb) in &products {
                    let what = format!(
                        "{request} {:?} x {:?} b^T {tb} / {splits}",
                        a.shape(),
                        b.shape()
                    );
                    with_splits(splits, || {
                        assert_gpu_matches_cpu(&what, gpu, &[a.clone(), b.clone()], tol, |t| {
                            ganlab::ops::matmul_t(&t[0], &t[1], false, *tb)
                        })
                    });
                }
                let what = format!("{request} linear / {splits}");
                with_splits(splits, || {
                    assert_gpu_matches_cpu(&what, gpu, &layer, tol, linear_and_grads)
                });
            }
        });
        // matmul may carry gradients: on f16 fragments (the default emulation where the
        // adapter has f16) it keeps the tiles.
        let on = m.assert_placed(request, &launches);
        assert!(m.half || on >= 10, "{request}: {on} launches on fragments");
    }
}

/// The thin kernel with its lanes added by subgroup operations (the default where the device
/// has them, as lavapipe does) and by the shared-memory tree (forced): both match the CPU, in
/// both thread layouts (K-fast and wide-fast operands), split or whole, with a bias in the
/// store, and a convolution with one output channel. With 63 slices of K the split-K reduce
/// takes its subgroup kernel (a workgroup per output) too.
#[test]
fn thin_gemms_with_and_without_subgroups_match_cpu() {
    use ganlab::device::with_subgroups;
    use ganlab::ops::gemm::{record_launches, with_splits};
    let Some(gpu) = gpu() else { return };
    let Device::Gpu(ctx) = &gpu else { return };
    let has = ctx.has_subgroups();
    let mut rng = fresh_rng("thin_gemms_with_and_without_subgroups_match_cpu");
    let (a, at) = (randn(&[3, 997], &mut rng), randn(&[997, 3], &mut rng));
    let (b, bt) = (randn(&[997, 300], &mut rng), randn(&[300, 997], &mut rng));
    let (x, w, bias) = (
        randn(&[2, 5, 9, 11], &mut rng),
        randn(&[1, 5, 3, 3], &mut rng),
        randn(&[1], &mut rng),
    );
    for on in [true, false] {
        for splits in [1, 7, 63] {
            let what = |s: &str| format!("{s}, subgroups {on}, {splits} splits");
            let check =
                |name: &str, inputs: &[Tensor], f: &dyn Fn(&[Tensor]) -> ganlab::Result<Tensor>| {
                    let ((), launches) = record_launches(|| {
                        with_subgroups(on, || {
                            with_splits(splits, || {
                                assert_gpu_matches_cpu(&what(name), &gpu, inputs, REDUCTION, f)
                            })
                        })
                    });
                    assert!(
                        launches.iter().all(|l| l.subgroups == (on && has)),
                        "{}: {launches:?}",
                        what(name)
                    );
                };
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let inputs = [
                    [&a, &at][ta as usize].clone(),
                    [&b, &bt][tb as usize].clone(),
                ];
                check(
                    &format!("3 x 997 x 300, a^T {ta} b^T {tb}"),
                    &inputs,
                    &|t| ganlab::ops::matmul_t(&t[0], &t[1], ta, tb),
                );
            }
            let inputs = [bt.clone(), a.clone(), randn(&[3], &mut fresh_rng("bias"))];
            check("linear 300 x 997 -> 3 with bias", &inputs, &|t| {
                t[0].linear(&t[1], Some(&t[2]))
            });
            let inputs = [x.clone(), w.clone(), bias.clone()];
            check("conv 5 -> 1 channel", &inputs, &|t| {
                t[0].conv2d(&t[1], Some(&t[2]), 1, ganlab::ops::Padding::Same)
            });
        }
    }
}
