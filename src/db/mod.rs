//! Everything that talks to PostgreSQL: the pool, migrations, one function per statement,
//! the dedicated LISTEN connection, and the local cluster used when `DATABASE_URL` is unset.

pub mod control;
pub mod images;
pub mod jobs;
pub mod listener;
pub mod local;
pub mod migrate;
pub mod presets;
pub mod stats;
pub mod variants;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// Bounded so that a dead database gives a quick `503`, never a hang.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one database call of the worker may take (a claim, a heartbeat, a write-back
/// of a large result) before its connection is taken for dead. A half-open connection (a
/// partition, a middlebox that stopped forwarding) gives no error at all: the kernel's
/// keepalives and `tcp_user_timeout` catch a peer that stopped answering TCP, this catches
/// one that still answers TCP but will never answer the query.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Server side: no statement of ours runs longer (a lock wait, a stalled disk), so a client
/// that gave up is not followed by a statement that goes on holding locks.
const STATEMENT_TIMEOUT_MS: u64 = 30_000;

/// Runs `$body`, an expression using a pooled connection bound to `$client`, bounded by
/// [`CALL_TIMEOUT`]: a pool error or a timeout becomes [`DbError::Unavailable`], and a
/// connection that timed out is thrown away with every idle one (they all went through the
/// same network; new connections are made fresh).
///
/// With a third argument, `|ok| bytes` says how many bytes of blobs an `Ok` result moved
/// through the connection: from [`LARGE_BLOB_BYTES`] up it is closed, not pooled
/// ([`release_after`]).
macro_rules! bounded {
    ($pool:expr, |$client:ident| $body:expr) => {
        $crate::db::bounded!($pool, |$client| $body, |_ok| 0usize)
    };
    ($pool:expr, |$client:ident| $body:expr, |$ok:pat_param| $bytes:expr) => {{
        let pool: &deadpool_postgres::Pool = &$pool;
        match tokio::time::timeout($crate::db::CALL_TIMEOUT, pool.get()).await {
            Ok(Ok($client)) => {
                let result = tokio::time::timeout($crate::db::CALL_TIMEOUT, async { $body }).await;
                match result {
                    Ok(result) => {
                        let moved: usize = match &result {
                            Ok($ok) => $bytes,
                            Err(_) => 0,
                        };
                        $crate::db::release_after($client, moved);
                        result
                    }
                    Err(_) => {
                        $crate::db::discard(pool, $client);
                        Err($crate::db::DbError::timed_out())
                    }
                }
            }
            Ok(Err(e)) => Err($crate::db::DbError::from(e)),
            Err(_) => {
                pool.retain(|_, _| false);
                Err($crate::db::DbError::timed_out())
            }
        }
    }};
}
pub(crate) use bounded;

/// Throws away a connection whose call timed out, and the pool's idle connections with it.
pub fn discard(pool: &Pool, client: deadpool_postgres::Object) {
    drop(deadpool_postgres::Object::take(client));
    pool.retain(|_, _| false);
}

/// Uploads with a file from this size up go through the API's blob pool ([`BLOB_POOL_SIZE`]
/// connections), and their files are streamed in with COPY (`images::copy_image`), so no
/// connection's buffers grow to a file's size; smaller files go in one INSERT message.
pub const LARGE_BLOB_BYTES: usize = 1 << 20;

/// Blobs from this size up are not left in a pooled connection's buffers at all (see
/// [`release_after`]).
pub const CLOSE_AFTER_BYTES: usize = 8 << 20;

/// Connections of the API's blob pool. Closing every connection that carried a blob from 1 MiB
/// up (as before) bounded memory but cost PostgreSQL a new backend per photo: its start and the
/// compilation of every trigger function again, about 12 ms of server CPU per photo upload and
/// 18 per photo claim in scripts/bench (the photo insert's mean server time 27 ms against 15
/// before). A few connections for large uploads keep them warm; they also bound how many large
/// uploads are written at once.
pub const BLOB_POOL_SIZE: usize = 4;

/// Hands a connection back to the pool, or closes it when it just moved `bytes` of blobs in
/// one message. tokio-postgres encodes a statement's parameters into a buffer kept per
/// connection, then copies them into its socket writer's buffer (and reads a result the same
/// way), and both keep their capacity for good: one 7 MB upload left about 14-28 MB held by
/// that connection for the life of the process, in each of the pool's connections in turn.
/// Measured with 16 concurrent 7 MB uploads: the API's RSS stayed at 561 MiB afterwards (the
/// API now streams large uploads instead, see [`LARGE_BLOB_BYTES`]; workers write results
/// through this). A new connection is not cheap either (see [`BLOB_POOL_SIZE`]), so only blobs
/// from [`CLOSE_AFTER_BYTES`] up close theirs.
pub fn release_after(client: deadpool_postgres::Object, bytes: usize) {
    if bytes >= CLOSE_AFTER_BYTES {
        drop(deadpool_postgres::Object::take(client));
    }
}

/// A database failure, split by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached right now (down, restarting, pool exhausted): retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Query(#[source] tokio_postgres::Error),
    /// A value could not be put in PostgreSQL's binary form (a COPY row): a bug, not the
    /// database's state.
    #[error("could not encode a value for the database: {0}")]
    Encode(String),
}

impl DbError {
    /// A call that got no answer within [`CALL_TIMEOUT`].
    pub fn timed_out() -> DbError {
        DbError::Unavailable(format!(
            "no answer from the database within {} s (connection dropped)",
            CALL_TIMEOUT.as_secs()
        ))
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        // No server error attached means the connection itself failed (closed, I/O, timeout).
        if e.is_closed() || e.as_db_error().is_none() {
            return DbError::Unavailable(e.to_string());
        }
        match e.as_db_error().map(|d| d.code().code()) {
            // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
            Some("57P01" | "57P02" | "57P03" | "53300") => DbError::Unavailable(
                e.as_db_error()
                    .map(|d| d.message().to_owned())
                    .unwrap_or_default(),
            ),
            _ => DbError::Query(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => DbError::from(e),
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

/// Parses a connection string and applies the timeouts every connection gets.
pub fn pg_config(url: &str) -> anyhow::Result<tokio_postgres::Config> {
    let mut cfg = tokio_postgres::Config::from_str(url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL connection string: {e}"))?;
    cfg.connect_timeout(CONNECT_TIMEOUT);
    // A peer that stopped answering TCP (a partition dropping packets): an idle connection
    // (LISTEN, the pool's) is probed after 5 s and given up after 3 unanswered probes; one with
    // data in flight is given up when it stays unacknowledged for 20 s.
    cfg.keepalives(true);
    cfg.keepalives_idle(Duration::from_secs(5));
    cfg.keepalives_interval(Duration::from_secs(2));
    cfg.keepalives_retries(3);
    cfg.tcp_user_timeout(Duration::from_secs(20));
    if cfg.get_application_name().is_none() {
        cfg.application_name("image-processor");
    }
    Ok(cfg)
}

/// Builds the API's connection pool. Connections are made lazily, so this succeeds while the
/// database is down and the pool recovers on its own once it is back.
///
/// Its connections set `image_processor.notify_after_commit`: the insert triggers then leave
/// the notifications to the API, which sends them after its commit
/// ([`images::notify_inserted`]; why: `sql/0003_notify_after_commit.sql`).
pub fn pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    let mut cfg = pg_config(url)?;
    add_option(&mut cfg, "-c image_processor.notify_after_commit=on");
    add_option(&mut cfg, &format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
    build_pool(cfg, size)
}

/// The worker's pool: commits do not wait for the WAL flush (`synchronous_commit=off`),
/// except those of the statements that end a job.
///
/// Every claim also sends a NOTIFY, and PostgreSQL serialises the commits of notifying
/// transactions while it waits for their flush; with fsync on that capped the queue at a few
/// hundred jobs/s. Losing the last few claims, heartbeats or releases in a database crash is
/// harmless: the lease expires and the job is done again, and fencing keeps the redo from
/// clashing. Completions and failures are different, since a client may already have seen
/// them: those statements switch `synchronous_commit` back on for their own commit
/// (`jobs::durable_commit!`). That costs a WAL flush per finished job; the status notification
/// is sent after the commit, so the flush is not taken under PostgreSQL's notify lock
/// (sql/0007, measured by `bench/pg_completion_notify.sh`: 8 clients, fsync on, a shared 2-core
/// machine, status flips of one row each: durable with the notification inside 218-232/s,
/// durable with it after the commit 844-1059/s, asynchronous 1645-1863/s). Uploads keep full
/// durability (the API's pool).
pub fn worker_pool(url: &str, size: usize) -> anyhow::Result<Pool> {
    worker_pool_with(url, size, None)
}

/// [`worker_pool`], whose connections also carry `WEBHOOK_URL` when it is set: the trigger that
/// writes webhook events reads it from the session (`sql/0014_webhooks.sql` says why).
pub fn worker_pool_with(url: &str, size: usize, webhook_url: Option<&str>) -> anyhow::Result<Pool> {
    let mut cfg = pg_config(url)?;
    if let Some(webhook_url) = webhook_url {
        // The server splits options at spaces, with `\` escaping (a checked URL has neither).
        let escaped = webhook_url.replace('\\', "\\\\").replace(' ', "\\ ");
        add_option(&mut cfg, &format!("-c image_processor.webhook_url={escaped}"));
    }
    add_option(&mut cfg, "-c synchronous_commit=off");
    add_option(&mut cfg, &format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"));
    build_pool(cfg, size)
}

/// Appends a server option to any the connection string already carries.
fn add_option(cfg: &mut tokio_postgres::Config, option: &str) {
    let options = match cfg.get_options() {
        Some(existing) => format!("{existing} {option}"),
        None => option.to_owned(),
    };
    cfg.options(&options);
}

fn build_pool(cfg: tokio_postgres::Config, size: usize) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        cfg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(2))
        // The connection used last is handed out first: under light load the same few
        // connections serve everything, so only as many as are used at once carry the large
        // buffers a blob leaves (`release_after`), and their caches stay warm. FIFO rotated
        // through all of them, so every pooled connection ended up holding the largest blob's
        // buffers.
        .queue_mode(deadpool_postgres::QueueMode::Lifo)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| anyhow::anyhow!("building the connection pool: {e}"))
}

/// Opens one connection outside the pool (LISTEN, migrations) and drives it on a task.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, DbError> {
    let cfg = pg_config(url).map_err(|e| DbError::Unavailable(e.to_string()))?;
    let (client, connection) = cfg.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "database connection closed");
        }
    });
    Ok(client)
}
