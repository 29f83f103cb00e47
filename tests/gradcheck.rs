//! Finite-difference gradient checks (central differences, f64 on the CPU) for every
//! differentiable op, first and second order.

#![allow(clippy::cloned_ref_to_slice_refs)] // `grad(&[y.clone()], ..)` reads best in tests

mod common;

use common::{fresh_rng, gradcheck, gradgradcheck, randn64, uniform64};
use ganlab::{Result, Tensor};

type Op = fn(&[Tensor]) -> Result<Tensor>;

/// (name, op, input shapes, positive inputs only)
fn cases() -> Vec<(&'static str, Op, Vec<Vec<usize>>, bool)> {
    let s = |v: &[&[usize]]| v.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
    vec![
        ("neg", |t| t[0].neg(), s(&[&[3, 4]]), false),
        ("exp", |t| t[0].exp(), s(&[&[3, 4]]), false),
        ("log", |t| t[0].log(), s(&[&[3, 4]]), true),
        ("sqrt", |t| t[0].sqrt(), s(&[&[3, 4]]), true),
        ("abs", |t| t[0].abs(), s(&[&[3, 4]]), false),
        ("tanh", |t| t[0].tanh(), s(&[&[3, 4]]), false),
        ("sigmoid", |t| t[0].sigmoid(), s(&[&[3, 4]]), false),
        ("relu", |t| t[0].relu(), s(&[&[3, 4]]), false),
        ("leaky_relu", |t| t[0].leaky_relu(0.2), s(&[&[3, 4]]), false),
        ("pow3", |t| t[0].pow(3.0), s(&[&[3, 4]]), false),
        ("pow-0.5", |t| t[0].pow(-0.5), s(&[&[3, 4]]), true),
        ("clamp", |t| t[0].clamp(-0.5, 0.5), s(&[&[3, 4]]), false),
        ("add_scalar", |t| t[0].add_scalar(2.0), s(&[&[3]]), false),
        ("mul_scalar", |t| t[0].mul_scalar(-1.5), s(&[&[3]]), false),
        (
            "add bcast",
            |t| t[0].add(&t[1]),
            s(&[&[2, 3, 4], &[3, 1]]),
            false,
        ),
        ("sub bcast", |t| t[0].sub(&t[1]), s(&[&[4], &[2, 4]]), false),
        (
            "mul bcast",
            |t| t[0].mul(&t[1]),
            s(&[&[2, 3, 4], &[1, 4]]),
            false,
        ),
        ("div bcast", |t| t[0].div(&t[1]), s(&[&[2, 3], &[3]]), true),
        (
            "sum axes",
            |t| t[0].sum(&[0, 2], false),
            s(&[&[2, 3, 4]]),
            false,
        ),
        ("sum all", |t| t[0].sum_all(), s(&[&[2, 3]]), false),
        (
            "mean keepdim",
            |t| t[0].mean(&[1], true),
            s(&[&[2, 3, 4]]),
            false,
        ),
        ("max axis", |t| t[0].max(1, false), s(&[&[3, 5]]), false),
        ("max_all", |t| t[0].max_all(), s(&[&[3, 5]]), false),
        ("sum_to", |t| t[0].sum_to(&[3, 1]), s(&[&[2, 3, 4]]), false),
        ("reshape", |t| t[0].reshape(&[4, 3]), s(&[&[2, 6]]), false),
        (
            "permute",
            |t| t[0].permute(&[2, 0, 1]),
            s(&[&[2, 3, 4]]),
            false,
        ),
        ("transpose", |t| t[0].transpose(0, 1), s(&[&[2, 3]]), false),
        ("expand", |t| t[0].expand(&[2, 3, 4]), s(&[&[3, 1]]), false),
        ("narrow", |t| t[0].narrow(1, 1, 2), s(&[&[2, 4, 3]]), false),
        ("pad", |t| t[0].pad(&[(1, 0), (0, 2)]), s(&[&[2, 3]]), false),
        (
            "concat",
            |t| Tensor::concat(&[&t[0], &t[1]], 1),
            s(&[&[2, 3], &[2, 2]]),
            false,
        ),
        (
            "matmul",
            |t| t[0].matmul(&t[1]),
            s(&[&[3, 4], &[4, 5]]),
            false,
        ),
        (
            "matmul batched bcast",
            |t| t[0].matmul(&t[1]),
            s(&[&[2, 3, 4], &[4, 2]]),
            false,
        ),
        (
            "matmul aT",
            |t| ganlab::ops::matmul_t(&t[0], &t[1], true, false),
            s(&[&[4, 3], &[4, 2]]),
            false,
        ),
        (
            "matmul bT",
            |t| ganlab::ops::matmul_t(&t[0], &t[1], false, true),
            s(&[&[3, 4], &[2, 4]]),
            false,
        ),
        (
            "matmul aT bT",
            |t| ganlab::ops::matmul_t(&t[0], &t[1], true, true),
            s(&[&[2, 4, 3], &[2, 2, 4]]),
            false,
        ),
    ]
}

fn inputs(shapes: &[Vec<usize>], positive: bool, rng: &mut ganlab::Rng) -> Vec<Tensor> {
    shapes
        .iter()
        .map(|s| {
            if positive {
                uniform64(s, 0.5, 2.0, rng)
            } else {
                randn64(s, rng)
            }
        })
        .collect()
}

#[test]
fn first_order_matches_finite_differences() {
    let mut rng = fresh_rng("first_order_matches_finite_differences");
    for (name, op, shapes, positive) in cases() {
        let xs = inputs(&shapes, positive, &mut rng);
        gradcheck(name, &xs, op, &mut rng);
    }
}

#[test]
fn second_order_matches_finite_differences() {
    let mut rng = fresh_rng("second_order_matches_finite_differences");
    for (name, op, shapes, positive) in cases() {
        let xs = inputs(&shapes, positive, &mut rng);
        gradgradcheck(name, &xs, op, &mut rng);
    }
}

/// The WGAN-GP shape of computation: P(theta) = ||d f / d x||^2 for a small MLP
/// f(x) = sum(W2 leaky_relu(W1 x + b1) + b2); dP/dtheta by double backward vs finite differences.
#[test]
fn input_gradient_norm_of_mlp_differentiates_wrt_parameters() {
    let mut rng = fresh_rng("input_gradient_norm_of_mlp");
    let x = randn64(&[5, 3], &mut rng);
    let params = vec![
        randn64(&[3, 4], &mut rng),
        randn64(&[4], &mut rng),
        randn64(&[4, 1], &mut rng),
        randn64(&[1], &mut rng),
    ];
    let penalty = |p: &[Tensor], x: &Tensor, create_graph: bool| -> Tensor {
        let x = x.detach().with_grad();
        let h = x
            .matmul(&p[0])
            .unwrap()
            .add(&p[1])
            .unwrap()
            .leaky_relu(0.2)
            .unwrap();
        let f = h
            .matmul(&p[2])
            .unwrap()
            .add(&p[3])
            .unwrap()
            .sum_all()
            .unwrap();
        let gx = ganlab::grad(&[f], None, &[x], true).unwrap()[0]
            .clone()
            .unwrap();
        let pen = gx.square().unwrap().sum_all().unwrap();
        if create_graph {
            pen
        } else {
            pen.detach()
        }
    };
    let leaves: Vec<Tensor> = params.iter().map(|t| t.detach().with_grad()).collect();
    let pen = penalty(&leaves, &x, true);
    pen.backward().unwrap();
    let analytic: Vec<Option<Tensor>> = leaves.iter().map(Tensor::grad).collect();
    // b2 does not affect d f / d x: its gradient must be absent or zero.
    let loss = |ps: &[Tensor]| penalty(ps, &x, false).to_vec_f64().unwrap()[0];
    common::compare_with_fd(
        "||df/dx||^2 of an MLP",
        &params,
        &analytic,
        &loss,
        1e-6,
        1e-6,
    );
    // W1 and W2 must actually receive a gradient (the test would pass vacuously otherwise).
    assert!(leaves[0].grad().is_some() && leaves[2].grad().is_some());
}
