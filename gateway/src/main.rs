//! `sovereign-s3`: the one binary.

use clap::Parser;
use sovereign_gateway::config::{Cli, Command};
use sovereign_gateway::telemetry::logging;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let Command::Server(args) = cli.command;
    logging::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sovereign-s3: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(sovereign_gateway::server::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sovereign-s3: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
