//! ganlab: a from-scratch GAN training engine.
//!
//! Layers, bottom up: [`device`] (CPU or a wgpu GPU context), [`Tensor`] (shaped f32 values on
//! one device), [`ops`] (CPU kernels, WGSL kernels and backward rules, one file per family),
//! and [`autograd`] (reverse mode with higher-order gradients). On top: [`nn`] (layers with
//! named parameters and buffers), [`optim`] (optimisers as fused kernels) and [`checkpoint`]
//! (safetensors files, written atomically, restored exactly).

pub mod autograd;
pub mod checkpoint;
pub mod cpu;
pub mod data;
pub mod device;
mod error;
pub mod eval;
mod files;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
mod scoped;
pub mod shape;
pub mod tensor;
pub mod train;
pub mod viz;

pub use autograd::{grad, no_grad};
pub use device::Device;
pub use error::{Error, Result};
pub use tensor::{DType, Rng, Tensor};
