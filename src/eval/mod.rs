//! Evaluation: the numbers that tell a good generator from a collapsed one.

pub mod linalg;
pub mod metrics;
