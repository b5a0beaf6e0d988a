//! Configuration: every setting is an environment variable and a `--flag` (SPEC §Configuration).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::imaging::{Limits, Pipeline};

/// Command line: a role and the shared configuration.
#[derive(Debug, Parser)]
#[command(
    name = "image-processor",
    version,
    about = "Event-driven image processing on PostgreSQL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub role: Option<Role>,
    #[command(flatten)]
    pub config: Config,
}

/// What this process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Role {
    /// API + UI + worker in one process (the default).
    Run,
    /// HTTP API and UI only.
    Api,
    /// Worker only: LISTEN, claim, process.
    Worker,
    /// Apply the `sql/` migrations and exit.
    Migrate,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings shared by every role.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL to use. Unset: run a local cluster in `DATA_DIR/postgres`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the local cluster lives when `DATABASE_URL` is unset.
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// HTTP listen address.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080", global = true)]
    pub listen_addr: SocketAddr,

    /// Blocking image-processing threads per worker process.
    #[arg(long, env = "WORKER_THREADS", default_value_t = 4, global = true,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub worker_threads: u32,

    /// Largest accepted file, in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 26_214_400, global = true)]
    pub max_upload_bytes: u64,

    /// Largest width×height of any input (all frames counted) or output.
    #[arg(long, env = "MAX_PIXELS", default_value_t = 50_000_000, global = true)]
    pub max_pixels: u64,

    /// Optimise JPEG Huffman tables (a second pass over the coefficients). Outputs are about 5 %
    /// smaller, but encoding a 640×480 output costs about twice the CPU, which is most of a
    /// small job; off by default, as in libjpeg, libvips and Pillow.
    #[arg(long, env = "JPEG_OPTIMIZE_CODING", default_value_t = false, global = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub jpeg_optimize_coding: bool,

    /// Seconds a client gets to send a request's headers (and an idle keep-alive connection
    /// stays open); slower clients are disconnected.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub header_read_timeout_secs: u64,

    /// Seconds a claim lasts unless renewed; an expired claim is taken again.
    #[arg(long, env = "LEASE_SECS", default_value_t = 30, global = true,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub lease_secs: u64,

    /// Claims of one image before a transient failure becomes `failed`.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 3, global = true,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    pub max_attempts: i32,

    /// Bearer token(s), comma-separated, required on `/api` and upload routes when set.
    #[arg(long, env = "API_TOKEN", global = true, hide_env_values = true)]
    pub api_token: Option<String>,

    /// Pipeline (JSON form) for rows that name none. Default: fit within 800×800, keep format.
    #[arg(long, env = "DEFAULT_PIPELINE", global = true, value_parser = parse_pipeline)]
    pub default_pipeline: Option<Pipeline>,

    /// `text` or `json`; the level comes from `RUST_LOG`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,

    /// Seconds in-flight jobs get to finish on SIGTERM before their claims are released.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 20, global = true)]
    pub shutdown_grace_secs: u64,

    /// Seconds between fallback sweeps for jobs a missed notification left behind.
    #[arg(long, env = "SWEEP_SECS", default_value_t = 5, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sweep_secs: u64,

    /// Uploads read at the same time per API process; more get `503` with `Retry-After`.
    /// Bounds upload memory to about this × `MAX_UPLOAD_BYTES`.
    #[arg(long, env = "MAX_CONCURRENT_UPLOADS", default_value_t = 32, global = true)]
    pub max_concurrent_uploads: usize,

    /// Connections in the pool of each process.
    #[arg(long, env = "DB_POOL_SIZE", default_value_t = 16, global = true)]
    pub db_pool_size: usize,
}

fn parse_pipeline(s: &str) -> Result<Pipeline, String> {
    let value: serde_json::Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
    Pipeline::from_json(&value).map_err(|e| e.to_string())
}

impl Config {
    /// Parses a configuration from explicit arguments (and the environment), as tests do.
    pub fn from_args<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.config)
    }

    /// `DATABASE_URL`, treating an empty value as unset (as shells and manifests often leave it).
    pub fn database_url(&self) -> Option<&str> {
        self.database_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_pixels: self.max_pixels,
            jpeg_optimize_coding: self.jpeg_optimize_coding,
        }
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    pub fn pipeline_or_default(&self) -> Pipeline {
        self.default_pipeline.clone().unwrap_or_default()
    }

    /// The accepted tokens, empty when auth is off.
    pub fn tokens(&self) -> Vec<String> {
        self.api_token
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
