//! Latency recording (HDR histograms in µs), the result of a run, its table and its JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cli::RunConfig;
use crate::request::Failure;
use crate::units::{format_micros, format_size};
use crate::workload::OpKind;

/// Longest latency the histograms hold (one hour); longer ones are recorded as this.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;

/// Significant decimal digits the histograms keep.
const HISTOGRAM_PRECISION_DIGITS: u8 = 3;

const BYTES_PER_MIB: f64 = (1 << 20) as f64;

/// Name of the row that sums up every operation of a mixed run.
const ALL_OPS: &str = "ALL";

/// Latencies and counts of one operation during the measured window.
struct OpStats {
    latency_us: Histogram<u64>,
    bytes: u64,
    errors: BTreeMap<String, u64>,
}

/// Accumulates the outcome of every measured request.
pub struct Recorder {
    ops: BTreeMap<OpKind, OpStats>,
    first_failures: BTreeMap<String, String>,
}

impl Recorder {
    /// A recorder for the given operations.
    pub fn new(kinds: impl IntoIterator<Item = OpKind>) -> anyhow::Result<Self> {
        let mut ops = BTreeMap::new();
        for kind in kinds {
            let stats = OpStats { latency_us: new_histogram()?, bytes: 0, errors: BTreeMap::new() };
            ops.insert(kind, stats);
        }
        Ok(Self { ops, first_failures: BTreeMap::new() })
    }

    /// Records one request: its latency if it succeeded, its failure otherwise.
    pub fn record(&mut self, kind: OpKind, latency: Duration, outcome: &Result<u64, Failure>) {
        let Some(stats) = self.ops.get_mut(&kind) else {
            return;
        };
        match outcome {
            Ok(bytes) => {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
                stats.latency_us.saturating_record(micros);
                stats.bytes += bytes;
            }
            Err(failure) => {
                *stats.errors.entry(failure.key()).or_default() += 1;
                self.first_failures.entry(format!("{kind} {}", failure.key())).or_insert_with(|| failure.to_string());
            }
        }
    }

    /// The first failure seen of each operation and error key, for the operator to read.
    pub fn first_failures(&self) -> &BTreeMap<String, String> {
        &self.first_failures
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, HISTOGRAM_PRECISION_DIGITS)
        .context("creating a latency histogram")
}

/// The machine a run was measured on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the load tool.
    pub cpus: usize,
    /// The CPU model name from /proc/cpuinfo, or `unknown`.
    pub cpu_model: String,
}

impl Machine {
    /// Describes the machine this process runs on.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Self { cpus, cpu_model }
    }
}

/// The workload a run applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub endpoint: String,
    /// The operation mix as `--op` takes it.
    pub op: String,
    pub size_bytes: u64,
    /// Closed loop: workers; open loop: the in-flight cap.
    pub concurrency: usize,
    /// Open loop arrival rate; `None` for a closed loop.
    pub rate_per_s: Option<f64>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub objects: u64,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

/// Figures of one operation (or of all of them, op `ALL`) over the measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpResult {
    /// `GET`, `PUT`, ... or `ALL`.
    pub op: String,
    /// Successful requests.
    pub ok: u64,
    /// Failed requests by HTTP status, `timeout`, `transport` or `unsent`.
    pub errors: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub ops_per_s: f64,
    /// Payload MiB per second moved by successful requests.
    pub mib_per_s: f64,
    /// Latency of successful requests.
    pub latency_us: Latency,
}

impl OpResult {
    fn summarize(op: &str, stats: &OpStats, elapsed: Duration) -> Self {
        let hist = &stats.latency_us;
        let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        Self {
            op: op.to_owned(),
            ok: hist.len(),
            errors: stats.errors.clone(),
            ops_per_s: hist.len() as f64 / seconds,
            mib_per_s: stats.bytes as f64 / BYTES_PER_MIB / seconds,
            latency_us: Latency {
                p50: hist.value_at_quantile(0.5),
                p90: hist.value_at_quantile(0.9),
                p99: hist.value_at_quantile(0.99),
                p999: hist.value_at_quantile(0.999),
                max: hist.max(),
                mean: hist.mean(),
            },
        }
    }

    /// Failed requests of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Everything a run measured, as written to `--json` files and gathered into baselines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The run's name; baselines are matched by it.
    pub name: String,
    /// What was measured (server and configuration).
    pub label: String,
    /// When the load started (RFC 3339, UTC).
    pub started_at: String,
    pub machine: Machine,
    pub workload: Workload,
    /// Seconds from the end of the warmup to the last reply.
    pub elapsed_s: f64,
    /// One row per operation, plus `ALL` when there are several.
    pub ops: Vec<OpResult>,
}

impl RunResult {
    /// Summarizes a finished run.
    pub fn new(
        config: &RunConfig,
        started_at: String,
        machine: Machine,
        elapsed: Duration,
        recorder: &Recorder,
    ) -> anyhow::Result<Self> {
        let mut ops: Vec<OpResult> =
            recorder.ops.iter().map(|(kind, stats)| OpResult::summarize(&kind.to_string(), stats, elapsed)).collect();
        if recorder.ops.len() > 1 {
            let mut all = OpStats { latency_us: new_histogram()?, bytes: 0, errors: BTreeMap::new() };
            for stats in recorder.ops.values() {
                all.latency_us.add(&stats.latency_us).context("merging latency histograms")?;
                all.bytes += stats.bytes;
                for (key, count) in &stats.errors {
                    *all.errors.entry(key.clone()).or_default() += count;
                }
            }
            ops.push(OpResult::summarize(ALL_OPS, &all, elapsed));
        }
        Ok(Self {
            name: config.name.clone(),
            label: config.label.clone(),
            started_at,
            machine,
            workload: Workload {
                endpoint: config.endpoint.clone(),
                op: config.mix.describe(),
                size_bytes: config.size,
                concurrency: config.concurrency,
                rate_per_s: config.rate,
                duration_s: config.duration.as_secs_f64(),
                warmup_s: config.warmup.as_secs_f64(),
                objects: config.objects,
            },
            elapsed_s: elapsed.as_secs_f64(),
            ops,
        })
    }

    /// The human-readable report: a heading and one row per operation.
    pub fn table(&self) -> String {
        let workload = &self.workload;
        let load = match workload.rate_per_s {
            Some(rate) => format!("open loop {rate} req/s, at most {} in flight", workload.concurrency),
            None => format!("closed loop, {} in flight", workload.concurrency),
        };
        let mut out = format!(
            "{} on {}: {} of {}, {load}, {:.1} s measured\n",
            self.name,
            self.label,
            workload.op,
            format_size(workload.size_bytes),
            self.elapsed_s
        );
        let _ = writeln!(
            out,
            "{:<6} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  errors",
            "op", "ok", "ops/s", "MiB/s", "p50", "p90", "p99", "p99.9", "max"
        );
        for row in &self.ops {
            let latency = &row.latency_us;
            let _ = writeln!(
                out,
                "{:<6} {:>9} {:>10.1} {:>9.1} {:>9} {:>9} {:>9} {:>9} {:>9}  {}",
                row.op,
                row.ok,
                row.ops_per_s,
                row.mib_per_s,
                format_micros(latency.p50 as f64),
                format_micros(latency.p90 as f64),
                format_micros(latency.p99 as f64),
                format_micros(latency.p999 as f64),
                format_micros(latency.max as f64),
                format_errors(&row.errors)
            );
        }
        out
    }
}

/// `503×12 timeout×1`, or `-` when there were none.
fn format_errors(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "-".into();
    }
    errors.iter().map(|(key, count)| format!("{key}×{count}")).collect::<Vec<_>>().join(" ")
}

/// The current time as RFC 3339 (UTC).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("encoding JSON")?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads a JSON file written by `write_json`.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Cli, RunConfig};
    use clap::Parser;

    pub(crate) fn config(args: &[&str]) -> RunConfig {
        let mut argv = vec!["s3-load", "--access-key", "K", "--secret-key", "S", "--label", "test-server"];
        argv.extend_from_slice(args);
        RunConfig::try_from(Cli::try_parse_from(argv).unwrap().run).unwrap()
    }

    fn machine() -> Machine {
        Machine { cpus: 2, cpu_model: "test cpu".into() }
    }

    /// A result whose latencies are 1..=1000 ms, one request each, over 10 s.
    fn uniform_result() -> RunResult {
        let mut recorder = Recorder::new([OpKind::Get]).unwrap();
        for ms in 1..=1000u64 {
            recorder.record(OpKind::Get, Duration::from_millis(ms), &Ok(4096));
        }
        recorder.record(
            OpKind::Get,
            Duration::from_millis(5),
            &Err(Failure::Status { status: 503, code: "SlowDown".into() }),
        );
        RunResult::new(&config(&[]), "now".into(), machine(), Duration::from_secs(10), &recorder).unwrap()
    }

    #[test]
    fn percentiles_come_from_the_histogram_within_its_precision() {
        let result = uniform_result();
        assert_eq!(result.ops.len(), 1);
        let get = &result.ops[0];
        assert_eq!(get.op, "GET");
        assert_eq!(get.ok, 1000);
        let near = |value: u64, expected: u64| value.abs_diff(expected) <= expected / 500;
        assert!(near(get.latency_us.p50, 500_000), "{}", get.latency_us.p50);
        assert!(near(get.latency_us.p90, 900_000), "{}", get.latency_us.p90);
        assert!(near(get.latency_us.p99, 990_000), "{}", get.latency_us.p99);
        assert!(near(get.latency_us.max, 1_000_000), "{}", get.latency_us.max);
        assert!((get.ops_per_s - 100.0).abs() < 1e-9);
        assert!((get.mib_per_s - 1000.0 * 4096.0 / BYTES_PER_MIB / 10.0).abs() < 1e-9);
        assert_eq!(get.errors, BTreeMap::from([("503".to_string(), 1)]));
    }

    #[test]
    fn mixed_runs_get_an_all_row() {
        let mut recorder = Recorder::new([OpKind::Get, OpKind::Put]).unwrap();
        recorder.record(OpKind::Get, Duration::from_micros(100), &Ok(10));
        recorder.record(OpKind::Put, Duration::from_micros(300), &Ok(20));
        recorder.record(OpKind::Put, Duration::from_micros(300), &Err(Failure::Timeout));
        let result = RunResult::new(
            &config(&["--op", "get=1,put=1"]),
            "now".into(),
            machine(),
            Duration::from_secs(1),
            &recorder,
        )
        .unwrap();
        let ops: Vec<&str> = result.ops.iter().map(|row| row.op.as_str()).collect();
        assert_eq!(ops, ["PUT", "GET", "ALL"]);
        let all = &result.ops[2];
        assert_eq!(all.ok, 2);
        assert_eq!(all.error_count(), 1);
        assert_eq!(all.latency_us.max, 300);
        assert_eq!(recorder.first_failures()["PUT timeout"], "timed out");
    }

    #[test]
    fn the_table_shows_percentiles_throughput_and_errors() {
        let table = uniform_result().table();
        assert!(table.starts_with("get-4KiB-c16 on test-server: get of 4KiB, closed loop, 16 in flight"), "{table}");
        let row = table.lines().find(|line| line.starts_with("GET")).unwrap();
        assert!(row.contains(" 100.0 "), "{row}");
        assert!(row.contains("500.") && row.contains(" ms"), "{row}");
        assert!(row.ends_with("503×1"), "{row}");
    }

    #[test]
    fn results_survive_a_json_round_trip() {
        let result = uniform_result();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        write_json(&path, &result).unwrap();
        let back: RunResult = read_json(&path).unwrap();
        assert_eq!(back, result);
        assert!(read_json::<RunResult>(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string()
            .contains("missing.json"));
    }
}
