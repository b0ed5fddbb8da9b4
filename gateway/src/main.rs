//! `sovereign-s3`: the one binary.

use clap::Parser;
use sovereign_gateway::config::{Cli, Command, ServerArgs};
use sovereign_gateway::sigv2;
use sovereign_gateway::telemetry::logging;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sovereign-s3: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Server(args) => serve(&runtime, args),
        Command::Admin(args) => runtime.block_on(sovereign_gateway::admin::client::run(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sovereign-s3: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `sovereign-s3 server`: logging and traces, then the server until it stops.
fn serve(runtime: &tokio::runtime::Runtime, args: ServerArgs) -> Result<(), String> {
    let traces = logging::init(args.log_format, args.otlp_endpoint.as_deref())?;
    sigv2::set_enabled(args.sigv2);
    let result = runtime.block_on(sovereign_gateway::server::run(args));
    if let Some(traces) = traces {
        if let Err(e) = traces.shutdown() {
            eprintln!("sovereign-s3: flushing traces: {e}");
        }
    }
    result
}
