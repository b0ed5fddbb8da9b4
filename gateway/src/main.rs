//! `sovereign-s3`: the one binary.

use clap::Parser;
use sovereign_gateway::config::{Cli, Command};
use sovereign_gateway::sigv2;
use sovereign_gateway::telemetry::logging;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Command::Server(args) = cli.command;
    let traces = match logging::init(args.log_format, args.otlp_endpoint.as_deref()) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("sovereign-s3: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sovereign-s3: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    sigv2::set_enabled(args.sigv2);
    let result = runtime.block_on(sovereign_gateway::server::run(args));
    if let Some(traces) = traces {
        if let Err(e) = traces.shutdown() {
            eprintln!("sovereign-s3: flushing traces: {e}");
        }
    }
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sovereign-s3: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
