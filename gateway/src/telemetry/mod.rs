//! Metrics, audit log and log set-up.

pub mod audit;
pub mod logging;
pub mod metrics;
