//! Thin entry point: parse the command line, start logging, hand over to the library.
#![forbid(unsafe_code)]

use image_processor::config::{Cli, Role};

/// mimalloc instead of glibc malloc. glibc maps each large allocation (a decoded image, an upload
/// body) fresh and unmaps it on free, so every job page-faulted ~50 pages (tiny images) to
/// thousands (photos) back in, and under kernel memory pressure those faults cost more than the
/// imaging. mimalloc keeps freed pages for reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = Cli::load();
    image_processor::telemetry::init(cli.config.log_format);
    let code = match image_processor::app::run(cli.role.unwrap_or(Role::Run), cli.config).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("image-processor: {e:#}");
            1
        }
    };
    // Exit here rather than drop the runtime: dropping it would wait for blocking threads still
    // decoding a job that shutdown already released to another replica.
    std::process::exit(code);
}
