//! The integration suite, as one test binary: it links the crate once and shares one throwaway
//! PostgreSQL cluster (a migrated template database, cloned per test; see `common`).
//!
//! Layout: one module per story, all over `common` (the cluster, `spawn_app()`, worker
//! processes, image fixtures).
//! - `api`: the HTTP API end to end; `auth`: bearer tokens; `hostile`: the hostile-input battery;
//!   `observability`: the OpenAPI document, `/metrics`, request ids and logs.
//! - `queue`: several workers on one database, missed notifications, concurrent migrations;
//!   `faults`: workers killed or stopped mid-job, decoder crashes, retries, fencing, backpressure.
//! - `db_restart`: PostgreSQL stopped and started mid-run, on a cluster of its own;
//!   `local_db`: the binary's embedded cluster, in a data directory of its own.
//! - `reliability`: issue 15: fencing tokens that never repeat, completions that survive a
//!   database crash, write-backs that back off, and small things (on clusters of their own where
//!   they crash PostgreSQL).
//! - `partition`: issue 15: a proxy that freezes the worker's connections (half-open TCP).
//! - `stranded`: issue 15 again: jobs past `JOB_TIMEOUT_SECS`, jobs stranded by a killed worker
//!   behind a backlog, a job that kills its process, oversized SQL rows, slots held to write-back.
//! - `table_health`: issue 15, item 10: the status counters stay exact whoever writes, the
//!   migration counts existing rows, heartbeats are HOT updates.
//! - `job_control`: priority, scheduling, retention; `cancel_bulk`: cancelling pending and
//!   running jobs, bulk retry/delete by filter, the per-minute stats history.
//! - `presets`: issue 18's presets over HTTP: the CRUD round trip, hostile names and bodies,
//!   `format: auto`, presets written by SQL.
//! - `animation`: issue 16's kept animations (GIF, WebP, APNG in; GIF, WebP out), `MAX_FRAMES`.
//! - `facts`: issue 16's image facts (hash, EXIF, frames, BlurHash, colour) and `dedupe=true`.
//! - `webhooks`: issue 19: signed webhooks to a receiver in this process, retries, order,
//!   durability across a SIGKILLed worker, SSRF refusals and hostile receivers.
//! - `imaging`: the imaging core without a server; `fuzz_regressions`: every fuzzer crash.
//! - `formats`: issue 16's HEIC/HEIF, AVIF and JPEG XL decoders, on real files and over HTTP;
//!   `formats_hostile`: their hostile-input battery.

mod common;

mod animation;
mod api;
mod auth;
mod cancel_bulk;
mod db_restart;
mod facts;
mod faults;
mod formats;
mod formats_hostile;
mod fuzz_regressions;
mod hostile;
mod imaging;
mod job_control;
mod local_db;
mod observability;
mod operations;
mod partition;
mod presets;
mod queue;
mod reliability;
mod stranded;
mod table_health;
mod variants;
mod webhooks;
