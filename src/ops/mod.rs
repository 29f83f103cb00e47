//! The ops, one file per family. Each holds the family's whole story: the CPU kernel, the
//! launcher of its WGSL kernel in `shaders/`, and its backward rule written in tensor ops.

mod activation;
mod batch_norm;
mod binary;
pub mod conv;
pub mod dropout;
mod embedding;
pub mod gemm;
mod layout;
mod loss;
mod matmul;
mod norm;
mod reduce;
mod resample;
mod unary;

pub use activation::Activation;
pub use batch_norm::BatchNormState;
pub use conv::{set_conv_algo, with_cpu_conv, ConvAlgo, CpuConv, Padding};
pub use matmul::matmul_t;

use crate::device::KernelSource;

/// Every kernel the ops can launch, each specialisation a declaration of its own (the
/// portability test translates each for every backend).
pub fn kernels() -> Vec<&'static dyn KernelSource> {
    let mut all = unary::kernels();
    all.extend(binary::kernels());
    all.extend(reduce::kernels());
    all.extend(conv::kernels());
    all.extend(batch_norm::kernels());
    all.extend(loss::kernels());
    all.extend(matmul::MATMUL.all());
    all.push(&layout::COPY);
    all.extend(dropout::kernels());
    all.extend(embedding::EMBEDDING.iter().map(|k| k as &dyn KernelSource));
    all.extend(resample::RESAMPLE.iter().map(|k| k as &dyn KernelSource));
    all
}
