//! Storage metrics, registered in the process-wide Prometheus registry.

use std::sync::LazyLock;

use prometheus::{register_histogram_vec, register_int_counter, HistogramVec, IntCounter};

/// Latency buckets for drive I/O: fine below a millisecond, up to 10 s.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Metrics of the object layer.
pub struct StorageMetrics {
    /// Time to read a range of a shard file, by drive.
    pub shard_read: HistogramVec,
    /// Time to write (and, at the end, sync) frames of a shard file, by drive.
    pub shard_write: HistogramVec,
    /// Shard frames found missing or corrupt while reading.
    pub bitrot_failures: IntCounter,
}

/// The metrics, created on first use.
pub static METRICS: LazyLock<Option<StorageMetrics>> = LazyLock::new(|| {
    let metrics = (|| -> prometheus::Result<StorageMetrics> {
        Ok(StorageMetrics {
            shard_read: register_histogram_vec!(
                "sovereign_s3_shard_read_duration_seconds",
                "Time to read from a shard file.",
                &["drive"],
                LATENCY_BUCKETS.to_vec()
            )?,
            shard_write: register_histogram_vec!(
                "sovereign_s3_shard_write_duration_seconds",
                "Time to write frames to a shard file.",
                &["drive"],
                LATENCY_BUCKETS.to_vec()
            )?,
            bitrot_failures: register_int_counter!(
                "sovereign_s3_bitrot_failures_total",
                "Shard frames found missing or corrupt on read."
            )?,
        })
    })();
    metrics.map_err(|e| tracing::warn!(error = %e, "storage metrics unavailable")).ok()
});

/// Records `seconds` of shard I/O on `drive`.
pub fn observe(histogram: impl Fn(&StorageMetrics) -> &HistogramVec, drive: &str, seconds: f64) {
    if let Some(metrics) = METRICS.as_ref() {
        histogram(metrics).with_label_values(&[drive]).observe(seconds);
    }
}

/// Counts damaged shard frames.
pub fn bitrot_failures(count: usize) {
    if let Some(metrics) = METRICS.as_ref() {
        metrics.bitrot_failures.inc_by(count as u64);
    }
}

/// Creates the per-drive series of `drive` so that they are exported before the first I/O.
pub fn touch(drive: &str) {
    if let Some(metrics) = METRICS.as_ref() {
        metrics.shard_read.with_label_values(&[drive]);
        metrics.shard_write.with_label_values(&[drive]);
    }
}
