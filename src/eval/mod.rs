//! Evaluation: the numbers that tell a good generator from a collapsed one.

pub mod classifier;
pub mod linalg;
pub mod metrics;
pub mod report;
pub mod toy;
