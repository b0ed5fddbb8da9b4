//! Command line of `s3-load`: the run flags (with or without the `run` subcommand), `compare`
//! and `baseline`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::units::{parse_duration, parse_size};
use crate::workload::Mix;

/// Largest object a single S3 PutObject accepts.
const MAX_OBJECT_BYTES: u64 = 5 << 30;

/// Mix used by `--op mixed`.
pub const DEFAULT_MIX: &str = "get=60,put=20,head=10,list=5,delete=5";

/// Load generator and latency benchmark for any S3 endpoint.
#[derive(Debug, Parser)]
#[command(name = "s3-load", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands; without one, `s3-load` runs a load test.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a load test against an endpoint (the default).
    Run(Box<RunArgs>),
    /// Compare result files with a baseline; exit 1 when P99 regressed beyond the threshold.
    Compare(CompareArgs),
    /// Gather result files into a baseline file.
    Baseline(BaselineArgs),
    /// Fill a bucket with many keys (once) and measure listing it.
    Scan(Box<crate::scan::ScanArgs>),
}

/// Flags of a load run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// S3 endpoint (plain HTTP, path-style requests).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Access key id.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Secret access key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to create (if absent) and load.
    #[arg(long, default_value = "s3-load")]
    pub bucket: String,
    /// Operation: put, get, head, list, delete, mixed, or weights such as `get=80,put=20`.
    #[arg(long, default_value = "get", value_parser = parse_op)]
    pub op: Mix,
    /// Object size (`4KiB` .. `64MiB`; up to 5GiB).
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    pub size: u64,
    /// Closed loop: workers each keeping one request in flight. Open loop: the in-flight cap.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Open loop: requests per second on a fixed schedule, latency counted from the scheduled
    /// send time (so a stalled server cannot hide its queueing). Without it: closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured time, after the warmup.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time under load before measuring.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Objects uploaded by the prepare phase for GET/HEAD/LIST (and DELETE) to work on.
    #[arg(long, default_value_t = 100)]
    pub objects: u64,
    /// Key prefix of everything this tool writes.
    #[arg(long, default_value = "s3-load/")]
    pub prefix: String,
    /// Time limit of one request; a request over it counts as a `timeout` error.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Name of the run in result and baseline files (default: op-size-cN or op-size-rR).
    #[arg(long)]
    pub name: Option<String>,
    /// What was measured, e.g. `sovereign-s3` or `seaweedfs` (default: the endpoint).
    #[arg(long)]
    pub label: Option<String>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Flags of `s3-load compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Baseline file (see `s3-load baseline`).
    #[arg(long)]
    pub baseline: PathBuf,
    /// Result files of `s3-load run --json`; each is matched to the baseline run of its name.
    #[arg(long, required = true, num_args = 1..)]
    pub result: Vec<PathBuf>,
    /// Fail when a P99 exceeds the baseline's by more than this fraction (0.2 = 20%).
    #[arg(long)]
    pub max_p99_regression: Option<f64>,
}

/// Flags of `s3-load baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Baseline file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// What configuration these results stand for.
    #[arg(long, default_value = "")]
    pub note: String,
    /// Result files to gather.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
}

/// A validated load run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub bucket: String,
    pub mix: Mix,
    pub size: u64,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub objects: u64,
    pub prefix: String,
    pub timeout: Duration,
    pub name: String,
    pub label: String,
    pub json: Option<PathBuf>,
}

impl TryFrom<RunArgs> for RunConfig {
    type Error = String;

    fn try_from(args: RunArgs) -> Result<Self, String> {
        let access_key = args.access_key.ok_or("no access key: pass --access-key or set AWS_ACCESS_KEY_ID")?;
        let secret_key = args.secret_key.ok_or("no secret key: pass --secret-key or set AWS_SECRET_ACCESS_KEY")?;
        if args.size == 0 || args.size > MAX_OBJECT_BYTES {
            return Err(format!("--size must be between 1 byte and 5GiB, not {}", args.size));
        }
        if args.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if args.objects == 0 {
            return Err("--objects must be at least 1".into());
        }
        if let Some(rate) = args.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("--rate must be a positive number of requests per second, not {rate}"));
            }
        }
        if args.duration.is_zero() {
            return Err("--duration must be more than zero".into());
        }
        if !args.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b)) {
            return Err(format!("--prefix {:?} may hold only letters, digits and - _ . /", args.prefix));
        }
        let name = args.name.unwrap_or_else(|| default_name(&args.op, args.size, args.concurrency, args.rate));
        Ok(Self {
            label: args.label.unwrap_or_else(|| args.endpoint.clone()),
            endpoint: args.endpoint,
            access_key,
            secret_key,
            region: args.region,
            bucket: args.bucket,
            mix: args.op,
            size: args.size,
            concurrency: args.concurrency,
            rate: args.rate,
            duration: args.duration,
            warmup: args.warmup,
            objects: args.objects,
            prefix: args.prefix,
            timeout: args.timeout,
            name,
            json: args.json,
        })
    }
}

/// `get-4KiB-c16` for a closed loop, `mixed-1MiB-r500` for an open one.
fn default_name(mix: &Mix, size: u64, concurrency: usize, rate: Option<f64>) -> String {
    let load = match rate {
        Some(rate) => format!("r{rate}"),
        None => format!("c{concurrency}"),
    };
    format!("{}-{}-{load}", mix.label(), crate::units::format_size(size))
}

fn parse_op(text: &str) -> Result<Mix, String> {
    if text.eq_ignore_ascii_case("mixed") {
        Mix::parse(DEFAULT_MIX)
    } else {
        Mix::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RunConfig, String> {
        let mut argv = vec!["s3-load", "--access-key", "K", "--secret-key", "S"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        RunConfig::try_from(cli.run)
    }

    #[test]
    fn defaults_name_the_run_after_its_workload() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.name, "get-4KiB-c16");
        assert_eq!(config.duration, Duration::from_secs(20));
        let config = parse(&["--op", "mixed", "--size", "1MiB", "--rate", "500"]).unwrap();
        assert_eq!(config.name, "mixed-1MiB-r500");
        assert_eq!(config.mix.describe(), DEFAULT_MIX);
    }

    #[test]
    fn invalid_runs_are_refused_with_the_flag_named() {
        assert!(parse(&["--concurrency", "0"]).unwrap_err().contains("--concurrency"));
        assert!(parse(&["--size", "6GiB"]).unwrap_err().contains("--size"));
        assert!(parse(&["--rate", "0"]).unwrap_err().contains("--rate"));
        assert!(parse(&["--prefix", "a b"]).unwrap_err().contains("--prefix"));
        assert!(parse(&["--op", "copy"]).is_err());
    }

    #[test]
    fn compare_is_a_subcommand_and_run_is_optional() {
        let cli = Cli::try_parse_from(["s3-load", "compare", "--baseline", "b.json", "--result", "r.json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Compare(_))));
        let cli = Cli::try_parse_from(["s3-load", "run", "--op", "put"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Run(_))));
    }
}
