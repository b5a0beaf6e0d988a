//! Thin entry point: parse the command line, start logging, hand over to the library.
#![forbid(unsafe_code)]

use clap::Parser;
use image_processor::config::{Cli, Role};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    image_processor::telemetry::init(cli.config.log_format);
    match image_processor::app::run(cli.role.unwrap_or(Role::Run), cli.config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("image-processor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
