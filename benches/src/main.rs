//! `s3-load`: the P99 latency benchmark of sovereign-s3, usable against any S3 endpoint.
//!
//! `s3-load run` loads an endpoint (closed or open loop) and reports latency percentiles,
//! throughput and errors; `s3-load baseline` gathers results into a baseline file and
//! `s3-load compare` checks new results against it; `s3-load scan` measures listing a large
//! bucket.

#![forbid(unsafe_code)]

mod cli;
mod compare;
mod report;
mod request;
mod scan;
mod units;
mod workload;

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Parser;

use cli::{Cli, Command, RunArgs, RunConfig};

/// Exit code for a run that could not be done at all (1 means a regression).
const EXIT_ERROR: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        None => run(cli.run).await,
        Some(Command::Run(args)) => run(*args).await,
        Some(Command::Compare(args)) => compare::compare(&args),
        Some(Command::Baseline(args)) => compare::write_baseline(&args).map(|()| ExitCode::SUCCESS),
        Some(Command::Scan(args)) => scan(&args).await,
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("s3-load: {error:#}");
        ExitCode::from(EXIT_ERROR)
    })
}

async fn scan(args: &scan::ScanArgs) -> anyhow::Result<ExitCode> {
    let result = scan::run(args).await?;
    print!("{}", scan::table(&result));
    if let Some(path) = &args.json {
        report::write_json(path, &result)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = RunConfig::try_from(args).map_err(|reason| anyhow!(reason))?;
    let result = workload::run(&config).await?;
    print!("{}", result.table());
    if let Some(path) = &config.json {
        report::write_json(path, &result)?;
    }
    Ok(ExitCode::SUCCESS)
}
