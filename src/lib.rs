//! image-processor: an event-driven image service on PostgreSQL.
//!
//! # Layout
//! - [`config`]: every setting, from environment variables and flags.
//! - [`app`]: starts a role (`run`, `api`, `worker`, `migrate`) and stops it on one token.
//! - [`telemetry`]: logging (`text` or `json`, level from `RUST_LOG`).
//! - [`states`]: the typed job status and worker outcome that every layer shares.
//! - [`db`]: the pool, embedded migrations, one function per statement, the LISTEN
//!   connection, and the local PostgreSQL cluster used when `DATABASE_URL` is unset.
//! - [`worker`]: LISTEN → claim (`FOR UPDATE SKIP LOCKED`) → blocking thread pool → fenced write.
//! - [`backoff`]: exponential backoff with jitter, for reconnects and retried writes.
//! - [`imaging`]: pure decode → operations → encode, no I/O.
//! - [`http`]: the axum API, downloads, live events and the embedded UI (`ui/`).
//! - [`metrics`]: the Prometheus recorder and one function per thing counted.
//! - [`presets`]: preset names, preset pipelines (`format: auto`) and variant formats.
//! - [`retention`]: `RETENTION_DAYS`, batched deletes of old finished images, one replica at a
//!   time.
//! - [`webhooks`]: signed webhooks from the outbox table: the delivery loop, Standard Webhooks
//!   signatures, and the address checks that keep a `callback_url` out of private networks.
//! - [`bench_jpeg`]: the hidden `bench-jpeg` role, timing the JPEG path of this very build.
//!
//! The database is the only queue: an upload (or any SQL `INSERT`) adds a `pending` row, a
//! trigger fires `NOTIFY image_jobs`, and every worker wakes, claims and processes.
#![forbid(unsafe_code)]
// Input and the network must never be able to panic the service; tests may unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod app;
pub mod backoff;
pub mod bench_jpeg;
pub mod config;
pub mod db;
pub mod http;
pub mod imaging;
pub mod metrics;
pub mod presets;
pub mod retention;
pub mod states;
pub mod telemetry;
pub mod webhooks;
pub mod worker;
