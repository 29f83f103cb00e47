//! The ops, one file per family. Each holds the family's whole story: the CPU kernel, the
//! launcher of its WGSL kernel in `shaders/`, and its backward rule written in tensor ops.

mod binary;
pub mod conv;
pub mod dropout;
mod embedding;
mod gemm;
mod layout;
mod loss;
mod matmul;
mod norm;
mod reduce;
mod resample;
mod unary;

pub use conv::{set_conv_algo, ConvAlgo, Padding};
pub use matmul::matmul_t;
pub use norm::BatchNormState;
