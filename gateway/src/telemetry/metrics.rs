//! Gateway and storage metrics in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use prometheus::{
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
    Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, TextEncoder,
};
use storage::metrics::LATENCY_BUCKETS;
use storage::ObjectStore;

/// Metrics of the S3 front end and the gauges sampled from the store at scrape time.
pub struct Metrics {
    /// Requests by API and status class.
    pub requests: IntCounterVec,
    /// Time to response headers, by API.
    pub duration: HistogramVec,
    /// Requests being served.
    pub in_flight: IntGauge,
    /// Request body bytes received.
    pub received_bytes: IntCounter,
    /// Response body bytes sent.
    pub sent_bytes: IntCounter,
    /// Error responses by S3 error code.
    pub errors: IntCounterVec,
    drive_online: IntGaugeVec,
    drive_total: IntGaugeVec,
    drive_free: IntGaugeVec,
    drive_used: IntGaugeVec,
    heal_queue: IntGauge,
    healed: IntCounter,
    healed_seen: AtomicU64,
    set_online: IntGaugeVec,
    set_read_quorum: IntGaugeVec,
    set_write_quorum: IntGaugeVec,
}

/// The gateway's metrics, registered in the default registry on first use.
pub static METRICS: LazyLock<Option<Metrics>> =
    LazyLock::new(|| Metrics::register().map_err(|e| tracing::warn!(error = %e, "gateway metrics unavailable")).ok());

impl Metrics {
    fn register() -> prometheus::Result<Self> {
        Ok(Self {
            requests: register_int_counter_vec!(
                "sovereign_s3_requests_total",
                "S3 requests by API and status class.",
                &["api", "status_class"]
            )?,
            duration: register_histogram_vec!(
                "sovereign_s3_request_duration_seconds",
                "Time from request to response headers, by API.",
                &["api"],
                LATENCY_BUCKETS.to_vec()
            )?,
            in_flight: register_int_gauge!("sovereign_s3_requests_in_flight", "Requests being served.")?,
            received_bytes: register_int_counter!("sovereign_s3_received_bytes_total", "Request body bytes received.")?,
            sent_bytes: register_int_counter!("sovereign_s3_sent_bytes_total", "Response body bytes sent.")?,
            errors: register_int_counter_vec!(
                "sovereign_s3_errors_total",
                "Error responses by S3 error code.",
                &["code"]
            )?,
            drive_online: register_int_gauge_vec!(
                "sovereign_s3_drive_online",
                "1 when the drive answers.",
                &["drive"]
            )?,
            drive_total: register_int_gauge_vec!(
                "sovereign_s3_drive_total_bytes",
                "Size of the drive's filesystem.",
                &["drive"]
            )?,
            drive_free: register_int_gauge_vec!(
                "sovereign_s3_drive_free_bytes",
                "Bytes available on the drive.",
                &["drive"]
            )?,
            drive_used: register_int_gauge_vec!(
                "sovereign_s3_drive_used_bytes",
                "Bytes used on the drive's filesystem.",
                &["drive"]
            )?,
            heal_queue: register_int_gauge!("sovereign_s3_heal_queue_length", "Objects waiting to be healed.")?,
            healed: register_int_counter!("sovereign_s3_healed_objects_total", "Objects healed since start.")?,
            healed_seen: AtomicU64::new(0),
            set_online: register_int_gauge_vec!(
                "sovereign_s3_set_drives_online",
                "Drives of the set that answer.",
                &["set"]
            )?,
            set_read_quorum: register_int_gauge_vec!("sovereign_s3_set_read_quorum", "Drives a read needs.", &["set"])?,
            set_write_quorum: register_int_gauge_vec!(
                "sovereign_s3_set_write_quorum",
                "Drives a write needs.",
                &["set"]
            )?,
        })
    }

    /// Records one finished request.
    pub fn observe_request(&self, api: &str, status: u16, seconds: f64, error_code: Option<&str>) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests.with_label_values(&[api, class]).inc();
        self.duration.with_label_values(&[api]).observe(seconds);
        if let Some(code) = error_code {
            self.errors.with_label_values(&[code]).inc();
        }
    }

    /// Samples drive, set and heal state from the store.
    pub async fn refresh(&self, store: &ObjectStore) {
        for drive in store.drives().await {
            let label = [drive.label.as_str()];
            storage::metrics::touch(&drive.label);
            self.drive_online.with_label_values(&label).set(i64::from(drive.online));
            if let Some(usage) = drive.usage {
                self.drive_total.with_label_values(&label).set(usage.total_bytes as i64);
                self.drive_free.with_label_values(&label).set(usage.free_bytes as i64);
                self.drive_used.with_label_values(&label).set(usage.used_bytes as i64);
            }
        }
        for (index, set) in store.health().await.into_iter().enumerate() {
            let label = [index.to_string()];
            self.set_online.with_label_values(&label).set(set.online as i64);
            self.set_read_quorum.with_label_values(&label).set(set.read_quorum as i64);
            self.set_write_quorum.with_label_values(&label).set(set.write_quorum as i64);
        }
        let heal = store.heal_stats();
        self.heal_queue.set(heal.backlog as i64);
        let seen = self.healed_seen.swap(heal.healed, Ordering::Relaxed);
        self.healed.inc_by(heal.healed.saturating_sub(seen));
    }
}

/// Everything in the default registry (gateway and storage), in the text format.
pub fn encode() -> (String, Vec<u8>) {
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    if let Err(e) = encoder.encode(&prometheus::gather(), &mut out) {
        tracing::warn!(error = %e, "cannot encode metrics");
    }
    (encoder.format_type().to_owned(), out)
}
