//! image-processor: an event-driven image service on PostgreSQL.
//!
//! # Layout
//! - [`config`]: every setting, from environment variables and flags.
//! - [`app`]: starts a role (`run`, `api`, `worker`, `migrate`) and stops it on one token.
//! - [`db`]: the pool, embedded migrations, one function per statement, the LISTEN
//!   connection, and the local PostgreSQL cluster used when `DATABASE_URL` is unset.
//! - [`worker`]: LISTEN → claim (`FOR UPDATE SKIP LOCKED`) → blocking thread pool → fenced write.
//! - [`imaging`]: pure decode → operations → encode, no I/O.
//! - [`http`]: the axum API, downloads, live events and the embedded UI (`ui/`).
//!
//! The database is the only queue: an upload (or any SQL `INSERT`) adds a `pending` row, a
//! trigger fires `NOTIFY image_jobs`, and every worker wakes, claims and processes.
#![forbid(unsafe_code)]

pub mod app;
pub mod backoff;
pub mod config;
pub mod db;
pub mod http;
pub mod imaging;
pub mod metrics;
pub mod telemetry;
pub mod worker;
