//! Training infrastructure shared by every model: the metrics log and Ctrl-C handling.

pub mod interrupt;
pub mod log;

pub use log::MetricsLog;
