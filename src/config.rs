//! Configuration: every setting is an environment variable and a `--flag` (SPEC §Configuration).
//! Secrets may instead be read from a file named by `<NAME>_FILE` (a mounted Kubernetes
//! Secret), so they never sit in the process environment; see [`Config::read_secret_files`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

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
    /// Time the JPEG path on a fixed photo and print JSON (for `scripts/check-image`).
    #[command(hide = true)]
    BenchJpeg {
        /// Jobs to time; the best and the median are printed.
        #[arg(long, default_value_t = 7)]
        iterations: u32,
    },
}

impl Cli {
    /// Parses the command line and environment, then reads the `*_FILE` secrets; on a bad
    /// value prints the error the way clap does and exits with status 2.
    pub fn load() -> Cli {
        let mut cli = Cli::parse();
        if let Err(e) = cli.config.read_secret_files() {
            Cli::command().error(ErrorKind::ValueValidation, e).exit();
        }
        cli
    }
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

    /// A file holding `DATABASE_URL` (e.g. a mounted Secret); one trailing newline is ignored.
    #[arg(long, env = "DATABASE_URL_FILE", global = true)]
    pub database_url_file: Option<PathBuf>,

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

    /// Most frames of an animated input (GIF, WebP, APNG); more is refused with `422`, and
    /// `MAX_PIXELS` still counts every frame.
    #[arg(long, env = "MAX_FRAMES", default_value_t = 1000, global = true,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_frames: u32,

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

    /// Seconds one job may run. Past it the job ends `failed` (`job_timeout`); its thread
    /// cannot be stopped, so it stays counted as busy until the work returns, and a worker
    /// whose threads are all stuck like that answers `503` on `/healthz`.
    #[arg(long, env = "JOB_TIMEOUT_SECS", default_value_t = 120, global = true,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub job_timeout_secs: u64,

    /// Claims of one image before a transient failure becomes `failed`.
    #[arg(long, env = "MAX_ATTEMPTS", default_value_t = 3, global = true,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    pub max_attempts: i32,

    /// Bearer token(s), comma-separated, required on `/api` and upload routes when set.
    #[arg(long, env = "API_TOKEN", global = true, hide_env_values = true)]
    pub api_token: Option<String>,

    /// A file holding `API_TOKEN`; one trailing newline is ignored.
    #[arg(long, env = "API_TOKEN_FILE", global = true)]
    pub api_token_file: Option<PathBuf>,

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

    /// Delete finished images (`completed`, `failed`) whose `processed_at` is older than this
    /// many days, in batches, by one worker replica at a time. Unset: keep everything.
    #[arg(long, env = "RETENTION_DAYS", global = true,
          value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub retention_days: Option<u32>,

    /// Every image's completion and failure is POSTed here as a signed webhook (besides any
    /// upload's `callback_url`): an absolute http(s) URL of at most 2048 bytes.
    #[arg(long, env = "WEBHOOK_URL", global = true, value_parser = parse_webhook_url)]
    pub webhook_url: Option<String>,

    /// `whsec_<base64 of 24-64 random bytes>`: webhooks carry a Standard Webhooks
    /// `webhook-signature` made with it. Unset: unsigned.
    #[arg(long, env = "WEBHOOK_SECRET", global = true, hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// A file holding `WEBHOOK_SECRET`; one trailing newline is ignored.
    #[arg(long, env = "WEBHOOK_SECRET_FILE", global = true)]
    pub webhook_secret_file: Option<PathBuf>,

    /// The key of signed variant URLs (`/v/{sig}/{id}/{preset}`, HMAC-SHA256), at least 32
    /// bytes (e.g. `openssl rand -base64 32`). Unset: the route answers 404.
    #[arg(long, env = "URL_SIGNING_KEY", global = true, hide_env_values = true)]
    pub url_signing_key: Option<String>,

    /// A file holding `URL_SIGNING_KEY`; one trailing newline is ignored.
    #[arg(long, env = "URL_SIGNING_KEY_FILE", global = true)]
    pub url_signing_key_file: Option<PathBuf>,

    /// Attempts of one webhook before it is given up (`failed`).
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = 8, global = true,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    pub webhook_max_attempts: i32,

    /// Allow webhooks to loopback, private, link-local and other special addresses (refused
    /// by default, so a `callback_url` cannot reach into the network the service runs in).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE", default_value_t = false, global = true,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: bool,

    /// Seconds a receiver gets to answer a webhook (connect, send, answer, all told).
    #[arg(long, env = "WEBHOOK_TIMEOUT_SECS", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout_secs: u64,

    /// The first retry's delay in milliseconds; each further one doubles it (with jitter,
    /// at most an hour).
    #[arg(long, env = "WEBHOOK_RETRY_BASE_MS", default_value_t = 10_000, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_retry_base_ms: u64,
}

/// A secret that failed to load from its `*_FILE`, or a webhook secret that is malformed.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("set {name} or {name}_FILE, not both")]
    Both { name: &'static str },
    #[error("{name}_FILE={}: cannot read it: {source}", path.display())]
    Read {
        name: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{name}_FILE={}: the file is empty", path.display())]
    Empty { name: &'static str, path: PathBuf },
    #[error(transparent)]
    BadWebhookSecret(crate::webhooks::signing::BadSecret),
    #[error("URL_SIGNING_KEY is {0} bytes; it must be at least {MIN_SIGNING_KEY_BYTES} (e.g. `openssl rand -base64 32`)")]
    ShortSigningKey(usize),
}

/// The shortest `URL_SIGNING_KEY`: 32 bytes, the HMAC-SHA256 output size (RFC 2104 §3).
pub const MIN_SIGNING_KEY_BYTES: usize = 32;

/// One setting that may come from a file: its variable's name, its value, the file's path.
struct SecretSetting<'a> {
    name: &'static str,
    value: &'a mut Option<String>,
    file: &'a Option<PathBuf>,
}

/// The contents of a secret file, without the line ending editors and `kubectl create secret
/// --from-file` leave at the end; anything else (inner spaces, other newlines) is kept.
fn read_secret_file(name: &'static str, path: &Path) -> Result<String, SecretFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretFileError::Read {
        name,
        path: path.to_owned(),
        source,
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    if text.is_empty() {
        return Err(SecretFileError::Empty {
            name,
            path: path.to_owned(),
        });
    }
    Ok(text.to_owned())
}

/// `WEBHOOK_URL`: empty counts as unset; anything else must be a usable destination.
fn parse_webhook_url(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Ok(String::new());
    }
    crate::webhooks::send::check_url(s.trim()).map(String::from)
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
        let mut config = Cli::try_parse_from(args)?.config;
        config
            .read_secret_files()
            .map_err(|e| Cli::command().error(ErrorKind::ValueValidation, e))?;
        Ok(config)
    }

    /// Every setting that also has a `<NAME>_FILE` form. A new secret needs its two fields
    /// and one line here.
    fn secret_settings(&mut self) -> [SecretSetting<'_>; 4] {
        [
            SecretSetting {
                name: "DATABASE_URL",
                value: &mut self.database_url,
                file: &self.database_url_file,
            },
            SecretSetting {
                name: "API_TOKEN",
                value: &mut self.api_token,
                file: &self.api_token_file,
            },
            SecretSetting {
                name: "WEBHOOK_SECRET",
                value: &mut self.webhook_secret,
                file: &self.webhook_secret_file,
            },
            SecretSetting {
                name: "URL_SIGNING_KEY",
                value: &mut self.url_signing_key,
                file: &self.url_signing_key_file,
            },
        ]
    }

    /// Fills each secret from its `<NAME>_FILE` when that is set. Both the variable and its
    /// file set is an error (which one wins would be a guess), and so are an unreadable file
    /// and an empty one (an empty `API_TOKEN` would silently turn auth off).
    pub fn read_secret_files(&mut self) -> Result<(), SecretFileError> {
        for secret in self.secret_settings() {
            let Some(path) = secret.file.as_deref().filter(|p| !p.as_os_str().is_empty()) else {
                continue;
            };
            if secret.value.as_deref().is_some_and(|v| !v.trim().is_empty()) {
                return Err(SecretFileError::Both { name: secret.name });
            }
            *secret.value = Some(read_secret_file(secret.name, path)?);
        }
        // Checked here, once it is known, so a malformed secret stops the start with a clear
        // message rather than leaving every webhook unsigned or failing.
        if let Some(secret) = self.webhook_secret.as_deref().filter(|s| !s.trim().is_empty()) {
            crate::webhooks::signing::Signer::from_secret(secret)
                .map_err(SecretFileError::BadWebhookSecret)?;
        } else {
            self.webhook_secret = None;
        }
        match self.url_signing_key.as_deref().filter(|k| !k.is_empty()) {
            Some(key) if key.len() < MIN_SIGNING_KEY_BYTES => {
                return Err(SecretFileError::ShortSigningKey(key.len()))
            }
            Some(_) => {}
            None => self.url_signing_key = None,
        }
        Ok(())
    }

    /// `URL_SIGNING_KEY`, when signed variant URLs are on.
    pub fn url_signing_key(&self) -> Option<&[u8]> {
        self.url_signing_key.as_deref().map(str::as_bytes)
    }

    /// `WEBHOOK_URL`, if set to something.
    pub fn webhook_url(&self) -> Option<&str> {
        self.webhook_url.as_deref().filter(|u| !u.is_empty())
    }

    pub fn webhook_timeout(&self) -> Duration {
        Duration::from_secs(self.webhook_timeout_secs)
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
            max_frames: self.max_frames,
        }
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    pub fn job_timeout(&self) -> Duration {
        Duration::from_secs(self.job_timeout_secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration from the flags alone, its secrets not yet read from files.
    fn parsed(args: &[&str]) -> Config {
        let argv = std::iter::once("image-processor").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.config,
            Err(e) => panic!("{e}"),
        }
    }

    fn secret_file(contents: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), contents).expect("write temp file");
        file
    }

    #[test]
    fn database_url_file_is_read_without_its_trailing_newline() {
        let file = secret_file("postgres://app:s3cret@db:5432/images\n");
        let mut config = parsed(&[]);
        config.database_url = None;
        config.database_url_file = Some(file.path().to_owned());
        config.read_secret_files().expect("reads the file");
        assert_eq!(
            config.database_url(),
            Some("postgres://app:s3cret@db:5432/images")
        );
    }

    #[test]
    fn api_token_file_flag_gives_the_tokens_and_keeps_all_but_the_line_ending() {
        let file = secret_file("old-token, new-token\r\n");
        let path = file.path().to_str().expect("utf-8 temp path");
        let config = Config::from_args(["image-processor", "--api-token-file", path]).expect("parses");
        assert_eq!(config.api_token.as_deref(), Some("old-token, new-token"));
        assert_eq!(config.tokens(), ["old-token", "new-token"]);
    }

    #[test]
    fn only_one_trailing_newline_is_trimmed() {
        let file = secret_file("token\n\n");
        assert_eq!(
            read_secret_file("API_TOKEN", file.path()).expect("reads"),
            "token\n"
        );
    }

    #[test]
    fn missing_secret_file_is_an_error_naming_the_variable_and_path() {
        let mut config = parsed(&["--api-token-file", "/nonexistent/api-token"]);
        config.api_token = None;
        let message = config.read_secret_files().expect_err("no such file").to_string();
        assert!(
            message.starts_with("API_TOKEN_FILE=/nonexistent/api-token: cannot read it"),
            "{message}"
        );
    }

    #[test]
    fn empty_secret_file_is_an_error_not_auth_turned_off() {
        let file = secret_file("\n");
        let mut config = parsed(&[]);
        config.api_token = None;
        config.api_token_file = Some(file.path().to_owned());
        let err = config.read_secret_files().expect_err("empty");
        assert!(
            matches!(
                err,
                SecretFileError::Empty {
                    name: "API_TOKEN",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn both_the_variable_and_its_file_is_an_error() {
        let file = secret_file("postgres://from-file/db\n");
        let path = file.path().to_str().expect("utf-8 temp path");
        let err = Config::from_args([
            "image-processor",
            "--database-url",
            "postgres://x/db",
            "--database-url-file",
            path,
        ])
        .expect_err("both set");
        assert!(
            err.to_string()
                .contains("set DATABASE_URL or DATABASE_URL_FILE, not both"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_file_variable_counts_as_unset() {
        let mut config = parsed(&["--database-url", "postgres://x/db"]);
        config.database_url_file = Some(PathBuf::new());
        config.read_secret_files().expect("empty path ignored");
        assert_eq!(config.database_url(), Some("postgres://x/db"));
    }
}
