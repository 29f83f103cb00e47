//! The one error type of the engine. Every failure a user can cause comes back as a value
//! with a message that says what to do, never as a panic.

use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("shape mismatch in {op}: {detail}")]
    Shape { op: &'static str, detail: String },

    #[error("{op}: tensors live on different devices ({a} and {b}); move one with `to_device`")]
    DeviceMismatch {
        op: &'static str,
        a: String,
        b: String,
    },

    #[error("{op}: dtype {dtype:?} is not supported here ({hint})")]
    DType {
        op: &'static str,
        dtype: crate::DType,
        hint: &'static str,
    },

    #[error(
        "no GPU adapter found{filter}. Install your GPU's Vulkan/Metal/DX12 driver, or on Linux \
         Mesa's software Vulkan driver (`apt-get install mesa-vulkan-drivers`, adapter \"llvmpipe\"); \
         or run on the CPU with `--device cpu`"
    )]
    NoAdapter { filter: String },

    #[error("GPU device request failed on adapter \"{adapter}\": {reason}")]
    DeviceRequest { adapter: String, reason: String },

    #[error(
        "tensor of {bytes} bytes exceeds this adapter's {limit_name} ({limit} bytes); \
         use a smaller batch size or run this op on the CPU"
    )]
    TooLarge {
        bytes: u64,
        limit: u64,
        limit_name: &'static str,
    },

    #[error("GPU out of memory allocating {bytes} bytes; use a smaller batch size")]
    OutOfMemory { bytes: u64 },

    #[error("GPU error: {0}")]
    Gpu(String),

    #[error("autograd: {0}")]
    Autograd(String),

    #[error("{0}")]
    Invalid(String),

    #[error("checkpoint {0}")]
    Checkpoint(String),

    #[error(transparent)]
    Data(#[from] crate::data::DataError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn shape(op: &'static str, detail: impl fmt::Display) -> Self {
        Error::Shape {
            op,
            detail: detail.to_string(),
        }
    }
}
