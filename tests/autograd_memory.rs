//! Backward frees activations as it goes (one test per process: it reads the global count of
//! live CPU tensor bytes, which other tests running beside it would move).

use ganlab::cpu::live;
use ganlab::{Device, Rng, Tensor};

#[test]
fn backward_frees_each_activation_once_it_has_been_used() {
    const N: usize = 1 << 16; // 256 KiB per activation
    const LAYERS: usize = 12;
    let mut rng = Rng::seed(5);
    let x = Tensor::randn(&[N], 0.0, 1.0, &mut rng, &Device::Cpu)
        .unwrap()
        .with_grad();
    let mut h = x.clone();
    for _ in 0..LAYERS {
        h = h.tanh().unwrap();
    }
    let loss = h.sum_all().unwrap();
    drop(h);
    let (before, _) = live::bytes();
    loss.backward().unwrap();
    let (after, _) = live::bytes();
    let activation = (N * 4) as u64;
    // The twelve activations are gone although `loss` still holds the graph's root; only x and
    // its gradient are left of the step (`before` counted x and the activations).
    assert!(
        after + (LAYERS as u64 - 1) * activation <= before,
        "live {before} -> {after} bytes"
    );
    assert_eq!(x.grad().unwrap().shape(), &[N]);
}
