//! Autograd semantics: accumulation, no-grad scopes, detach, errors.

#![allow(clippy::cloned_ref_to_slice_refs)] // `grad(&[y.clone()], ..)` reads best in tests

mod common;

use ganlab::{grad, no_grad, Device, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

#[test]
fn a_tensor_used_twice_accumulates_both_paths() {
    // y = x * x + 3x: dy/dx = 2x + 3.
    let x = t(&[1.0, -2.0, 0.5], &[3]).with_grad();
    let y = x.mul(&x).unwrap().add(&x.mul_scalar(3.0).unwrap()).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec().unwrap(), vec![5.0, -1.0, 4.0]);
    // A second backward accumulates into the existing gradient, like PyTorch.
    let y = x.mul_scalar(2.0).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec().unwrap(), vec![7.0, 1.0, 6.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn no_grad_records_nothing_and_detach_cuts_the_graph() {
    let x = t(&[1.0, 2.0], &[2]).with_grad();
    let y = no_grad(|| x.mul_scalar(2.0).unwrap());
    assert!(!y.requires_grad());
    assert!(y.sum_all().unwrap().backward().is_err());
    let z = x.detach().mul(&x).unwrap().sum_all().unwrap();
    z.backward().unwrap();
    // Only the non-detached factor contributes: d/dx (c * x) = c.
    assert_eq!(x.grad().unwrap().to_vec().unwrap(), vec![1.0, 2.0]);
}

#[test]
fn grad_returns_none_for_unreached_inputs_and_checks_shapes() {
    let x = t(&[1.0, 2.0], &[2]).with_grad();
    let w = t(&[3.0], &[1]).with_grad();
    let y = x.mul_scalar(4.0).unwrap().sum_all().unwrap();
    let g = grad(&[y.clone()], None, &[x.clone(), w], false).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec().unwrap(), vec![4.0, 4.0]);
    assert!(g[1].is_none());
    // A non-scalar output without grad_outputs is a clear error, not a panic.
    let v = x.mul_scalar(2.0).unwrap();
    assert!(grad(&[v.clone()], None, &[x.clone()], false).is_err());
    let seed = t(&[1.0, -1.0], &[2]);
    let g = grad(&[v], Some(&[seed]), &[x], false).unwrap();
    assert_eq!(g[0].as_ref().unwrap().to_vec().unwrap(), vec![2.0, -2.0]);
}

#[test]
fn gradients_without_create_graph_are_constants() {
    let x = t(&[1.5], &[1]).with_grad();
    let y = x.pow(3.0).unwrap().sum_all().unwrap();
    let g = grad(&[y.clone()], None, &[x.clone()], false).unwrap()[0]
        .clone()
        .unwrap();
    assert!(!g.requires_grad());
    let g2 = grad(&[y], None, &[x.clone()], true).unwrap()[0]
        .clone()
        .unwrap();
    assert!(g2.requires_grad());
    // d/dx 3x^2 = 6x = 9.
    let h = grad(&[g2.sum_all().unwrap()], None, &[x], false).unwrap()[0]
        .clone()
        .unwrap();
    assert!((h.item().unwrap() - 9.0).abs() < 1e-5);
}

#[test]
fn shape_and_device_errors_are_values() {
    let a = t(&[1.0, 2.0, 3.0], &[3]);
    let b = t(&[1.0, 2.0], &[2]);
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("broadcast"), "{e}");
    assert!(a.reshape(&[2, 2]).is_err());
    assert!(a.matmul(&b).is_err());
    assert!(Tensor::from_vec(vec![1.0; 5], &[2, 3], &Device::Cpu).is_err());
    assert!(a.permute(&[1]).is_err());
    assert!(a.narrow(0, 2, 2).is_err());
}

#[test]
fn deep_graphs_do_not_overflow_the_stack() {
    let x = t(&[1.0], &[1]).with_grad();
    let mut y = x.clone();
    for _ in 0..20_000 {
        y = y.add_scalar(0.0).unwrap();
    }
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec().unwrap(), vec![1.0]);
}

#[test]
fn backward_frees_its_graph_and_a_second_pass_through_it_is_an_error() {
    // Like PyTorch's default retain_graph=False: the first backward uses the graph up.
    let x = t(&[1.0, -2.0, 0.5], &[3]).with_grad();
    let y = x.tanh().unwrap().mul(&x).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let first = x.grad().unwrap().to_vec().unwrap();
    let err = y.backward().unwrap_err().to_string();
    assert!(err.contains("a second time"), "{err}");
    assert_eq!(
        x.grad().unwrap().to_vec().unwrap(),
        first,
        "nothing accumulated"
    );
    // A new expression over the same leaves is a new graph.
    x.zero_grad();
    let y = x.tanh().unwrap().mul(&x).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    assert_eq!(x.grad().unwrap().to_vec().unwrap(), first);
    // A graph kept for double backward stays usable (retain_graph=create_graph).
    x.zero_grad();
    let y = x.tanh().unwrap().mul(&x).unwrap().sum_all().unwrap();
    y.backward_create_graph().unwrap();
    y.backward_create_graph().unwrap();
    let twice = x.grad().unwrap().to_vec().unwrap();
    for (a, b) in twice.iter().zip(&first) {
        assert!((a - 2.0 * b).abs() < 1e-6, "{a} vs 2 x {b}");
    }
}
