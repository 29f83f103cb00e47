//! Device layer: adapter selection errors, limits, the buffer pool, batched submission.

#![allow(clippy::cloned_ref_to_slice_refs)] // `grad(&[y.clone()], ..)` reads best in tests

mod common;

use common::gpu;
use ganlab::device::AdapterRequest;
use ganlab::{Device, Error, Tensor};

#[test]
fn an_unmatched_adapter_request_says_how_to_get_one() {
    let req = AdapterRequest {
        backend: None,
        name: Some("no-such-adapter-name-xyz".into()),
        ..Default::default()
    };
    let err = Device::gpu_with(&req).unwrap_err();
    assert!(matches!(err, Error::NoAdapter { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("mesa-vulkan-drivers") && msg.contains("--device cpu"),
        "{msg}"
    );
    let bad = AdapterRequest {
        backend: Some("opengl".into()),
        ..Default::default()
    };
    assert!(Device::gpu_with(&bad)
        .unwrap_err()
        .to_string()
        .contains("vulkan, metal, dx12 or noop"));
}

#[test]
fn a_tensor_larger_than_a_binding_is_an_error_not_a_panic() {
    let Some(gpu) = gpu() else { return };
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let limit = ctx.limits().max_storage_buffer_binding_size;
    let too_many = (limit / 4 + 1) as usize;
    let err = Tensor::zeros(&[too_many], &gpu).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("smaller batch"), "{err}");
    // The context is still usable afterwards.
    let ok = Tensor::ones(&[3], &gpu)
        .unwrap()
        .sum_all()
        .unwrap()
        .item()
        .unwrap();
    assert_eq!(ok, 3.0);
}

#[test]
fn dropped_tensors_return_their_buffers_to_the_pool() {
    // A private context, so other tests' buffers do not move the count.
    let Some(_) = gpu() else { return };
    let Device::Gpu(ctx) = Device::gpu_with(&AdapterRequest::from_env()).unwrap() else {
        unreachable!()
    };
    let gpu = Device::Gpu(ctx.clone());
    assert_eq!(ctx.pooled_bytes(), 0);
    let t = Tensor::zeros(&[100_000], &gpu).unwrap();
    drop(t);
    let pooled = ctx.pooled_bytes();
    assert!(pooled >= 400_000, "pooled {pooled}");
    // Same size class again: taken from the pool, nothing new pooled after it drops.
    let t = Tensor::zeros(&[99_000], &gpu).unwrap();
    assert_eq!(ctx.pooled_bytes(), 0);
    drop(t);
    assert_eq!(ctx.pooled_bytes(), pooled);
    ctx.trim_pool();
    assert_eq!(ctx.pooled_bytes(), 0);
}

#[test]
fn many_recorded_kernels_submit_in_batches_and_read_back_correctly() {
    let Some(gpu) = gpu() else { return };
    // 1,000 dependent kernels (more than one submission batch) with one read-back at the end.
    let mut x = Tensor::zeros(&[1000], &gpu).unwrap();
    for _ in 0..1000 {
        x = x.add_scalar(1.0).unwrap();
    }
    let v = x.to_vec().unwrap();
    assert!(v.iter().all(|&e| e == 1000.0), "{:?}", &v[..4]);
}

#[test]
fn gpu_timing_reports_kernel_time_when_timestamps_exist() {
    let Some(gpu) = gpu() else { return };
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let a = Tensor::ones(&[128, 128], &gpu).unwrap();
    if !ctx.start_timing(4) {
        assert!(!ctx.has_timestamps());
        return;
    }
    let c = a.matmul(&a).unwrap();
    let secs = ctx.finish_timing().unwrap().unwrap();
    assert!(secs > 0.0 && secs < 10.0, "{secs}");
    assert!(c.to_vec().unwrap().iter().all(|&v| v == 128.0));
}

#[test]
fn mixing_devices_is_a_clear_error() {
    let Some(gpu) = gpu() else { return };
    let a = Tensor::ones(&[2], &gpu).unwrap();
    let b = Tensor::ones(&[2], &Device::Cpu).unwrap();
    let err = a.add(&b).unwrap_err();
    assert!(matches!(err, Error::DeviceMismatch { .. }), "{err}");
    assert!(Tensor::from_vec_f64(vec![1.0], &[1])
        .unwrap()
        .to_dtype(ganlab::DType::F32)
        .is_ok());
    assert!(a.to_dtype(ganlab::DType::F64).is_err());
}
