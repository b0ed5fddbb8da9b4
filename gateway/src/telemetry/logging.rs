//! Logs and traces: structured logs on stderr (human-readable or JSON, level from
//! `SOVEREIGN_S3_LOG`), and, when an OTLP endpoint is configured, spans exported over
//! OTLP/HTTP with W3C trace context taken from clients.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{filter_fn, FilterExt, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How often finished spans are sent to the collector.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Name of the span of one S3 request (the only span log lines show as their context).
pub const REQUEST_SPAN: &str = "s3.request";

/// s3s's own log events are never written, whatever the filter: at DEBUG they carry whole
/// requests, `Authorization` header included, and at ERROR every client error. The front end
/// logs each failed request itself, at a level that tells client errors from server faults.
const UNLOGGED_TARGET: &str = "s3s";

/// Installs the global subscriber; returns the tracer provider when traces are exported (keep
/// it alive for the life of the process). Call before starting the async runtime. Logs and
/// spans carry ids and names, never credentials or signatures.
///
/// Log lines are filtered by `SOVEREIGN_S3_LOG` and see only the request span, so the storage
/// spans cost nothing unless traces are exported; the exporter takes every span at INFO and
/// above whatever the log level.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Option<SdkTracerProvider>, String> {
    let levels = EnvFilter::try_from_env("SOVEREIGN_S3_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logged = levels.and(filter_fn(|meta| {
        let ours = !meta.target().starts_with(UNLOGGED_TARGET);
        (meta.is_event() && ours) || meta.name() == REQUEST_SPAN
    }));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).with_ansi(ansi).with_filter(logged).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(logged)
            .boxed(),
    };
    let provider = otlp_endpoint.map(tracer_provider).transpose()?;
    let spans = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("sovereign-s3")).with_filter(LevelFilter::INFO));
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))?;
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    Ok(provider)
}

/// Exports spans in batches to `endpoint` (the collector's base URL, e.g. `http://otel:4318`).
/// Plain HTTP only: the exporter carries no TLS stack, so the collector is expected on the
/// node or pod network (a sidecar or node agent), which forwards over TLS.
fn tracer_provider(endpoint: &str) -> Result<SdkTracerProvider, String> {
    if !endpoint.starts_with("http://") {
        return Err(format!("OTLP endpoint {endpoint}: only http:// collector URLs are supported"));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| format!("OTLP exporter for {endpoint}: {e}"))?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(BatchConfigBuilder::default().with_scheduled_delay(EXPORT_INTERVAL).build())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_resource(Resource::builder().with_service_name("sovereign-s3").build())
        .build())
}
