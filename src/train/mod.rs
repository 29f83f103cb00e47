//! Training infrastructure shared by every model: the loop, the metrics log, Ctrl-C.

pub mod interrupt;
pub mod log;
pub mod memory;
pub mod trainer;

pub use log::MetricsLog;
pub use trainer::{train, Summary, TrainConfig};
