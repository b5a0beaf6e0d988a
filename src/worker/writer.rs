//! Group commit for write-backs: jobs hand their endings to one task, which writes everything
//! that arrived while its previous write was committing in one batch (`jobs::write_back`).
//!
//! Each ending still commits durably before its job hears it was written, and the fence still
//! decides row by row. What changes is the cost under load: one round trip, one statement run
//! per kind and one WAL flush for a batch, where every tiny job paid its own (the queue stalled
//! at about 1 000 jobs/s on two cores, most of it in the completion's commit and triggers).
//! An idle worker waits for nothing: a lone ending is written at once, as a batch of one.
//!
//! A batch that the database refuses (a trigger's exception, a deadlock) is written again one
//! ending at a time, so one bad row never holds back the others; an unreachable database fails
//! the whole batch, and each job retries as before (`job::write_back`).

use std::collections::VecDeque;
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::job::Outcome;
use crate::db::jobs::{self, Completion, Ending, Fence, WriteBack};
use crate::db::{self, DbError};
use crate::presets::VariantFormat;

/// The most endings in one batch.
const MAX_BATCH: usize = 64;

/// The most result bytes in one batch (one larger result goes alone): bounds what one
/// statement's parameters hold in memory, twice over while they are encoded.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Batches written at the same time: while one commits, the next fills; a second keeps a
/// large result's write from holding back the small ones behind it.
const CONCURRENT_BATCHES: usize = 2;

/// What a worker may hold in endings waiting to be written, beyond the results its threads are
/// making: [`ENDINGS_PER_THREAD`] endings per thread and [`WRITE_BUDGET_BYTES`] of results. With
/// the rows claimed ahead (`ahead`), a worker holds at most `WORKER_THREADS` × (1 +
/// `ahead::MAX_AHEAD_PER_THREAD` + [`ENDINGS_PER_THREAD`]) rows while the database is slow,
/// and stops claiming there.
pub(crate) struct WriteBudget {
    endings: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    /// All the endings' permits: none is taken when this many are available.
    endings_total: usize,
}

/// Endings waiting per thread: enough for batches the size of a claim ahead while the previous
/// two commit. bench/queue_phase.sh, 5 000 tiny jobs, pairs run back to back: with 2 per thread
/// batches averaged 2.8 rows and the claims ahead waited for room (1 365 and 1 440 jobs/s);
/// with 8, 7.2 rows and 2 640 and 2 193 jobs/s; with 16 (and 8 rows ahead per thread instead
/// of 4), 14.5 rows and 3 553 and 3 672 jobs/s against 3 053 and 3 381. (Before claims ahead,
/// 1 per thread gave batches of 1.5 rows, 2 gave 2.5-3.)
pub(crate) const ENDINGS_PER_THREAD: usize = 16;

/// The results waiting to be written, in bytes. A result larger than the whole budget waits
/// until all of it is free.
pub(crate) const WRITE_BUDGET_BYTES: usize = 64 << 20;

/// The unit of the byte budget's semaphore.
const BUDGET_UNIT: usize = 64 << 10;

const BUDGET_UNITS: usize = WRITE_BUDGET_BYTES / BUDGET_UNIT;

impl WriteBudget {
    pub fn new(threads: usize) -> WriteBudget {
        WriteBudget {
            endings: Arc::new(Semaphore::new(threads * ENDINGS_PER_THREAD)),
            bytes: Arc::new(Semaphore::new(BUDGET_UNITS)),
            endings_total: threads * ENDINGS_PER_THREAD,
        }
    }

    /// Waits for room for one ending of `bytes`; held until it is written.
    pub async fn reserve(&self, bytes: usize) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let ending = self.endings.clone().acquire_owned().await.ok()?;
        let units = (bytes / BUDGET_UNIT + 1).min(BUDGET_UNITS) as u32;
        let bytes = self.bytes.clone().acquire_many_owned(units).await.ok()?;
        Some((ending, bytes))
    }

    /// No ending is waiting to be written.
    pub fn is_idle(&self) -> bool {
        self.endings.available_permits() == self.endings_total
    }
}

/// One job's ending, owned, so the writer can hold it while the job waits.
pub(crate) struct Ended {
    pub id: uuid::Uuid,
    pub claim: i64,
    /// A variant's preset and format.
    pub variant: Option<(String, VariantFormat)>,
    pub outcome: Arc<Outcome>,
}

impl Ended {
    fn bytes(&self) -> usize {
        self.outcome.bytes()
    }

    fn fence<'a>(&'a self, worker: &'a str) -> Fence<'a> {
        Fence {
            id: self.id,
            worker,
            claim: self.claim,
            variant: self.variant.as_ref().map(|(p, f)| (p.as_str(), *f)),
        }
    }
}

struct Request {
    ended: Ended,
    /// `Ok(false)`: fenced off.
    reply: oneshot::Sender<Result<bool, DbError>>,
}

/// The handle jobs write through.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::UnboundedSender<Request>,
}

impl Writer {
    /// Starts the writing task; it ends when the last handle is dropped.
    pub fn spawn(pool: Pool, worker: String) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, Arc::from(worker), rx));
        Writer { tx }
    }

    /// Writes one job's ending, fenced; `Ok(false)` when the claim no longer holds. Queued
    /// endings are bounded by the jobs waiting on them: the worker's thread slots and its
    /// write budget ([`WriteBudget`]).
    pub async fn write(&self, ended: Ended) -> Result<bool, DbError> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Request { ended, reply }).is_err() {
            return Err(DbError::Unavailable("the write-back task has stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(DbError::Unavailable("the write-back task has stopped".into())))
    }
}

async fn run(pool: Pool, worker: Arc<str>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
    let mut waiting: VecDeque<Request> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(request) => waiting.push_back(request),
                None => break,
            }
        }
        // Taken before the batch is formed: whatever arrives while both batches commit joins
        // the next one.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        while let Ok(request) = rx.try_recv() {
            waiting.push_back(request);
        }
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(next) = waiting.front() {
            let size = next.ended.bytes();
            if !batch.is_empty() && (batch.len() == MAX_BATCH || bytes + size > MAX_BATCH_BYTES) {
                break;
            }
            bytes += size;
            batch.extend(waiting.pop_front());
        }
        let (pool, worker) = (pool.clone(), worker.clone());
        tokio::spawn(async move {
            write_batch(&pool, &worker, batch, bytes).await;
            drop(slot);
        });
    }
}

/// Writes a batch and answers each job; a batch the database refused is retried one by one.
async fn write_batch(pool: &Pool, worker: &str, batch: Vec<Request>, bytes: usize) {
    let endings: Vec<&Ended> = batch.iter().map(|r| &r.ended).collect();
    match write(pool, worker, &endings, bytes).await {
        Ok(written) => {
            crate::metrics::write_batch(written.len());
            for (request, written) in batch.into_iter().zip(written) {
                let _ = request.reply.send(Ok(written));
            }
        }
        Err(DbError::Query(e)) if batch.len() > 1 => {
            tracing::warn!(error = %e, endings = batch.len(), "a batch of write-backs was refused; writing them one by one");
            for request in batch {
                let size = request.ended.bytes();
                let result = write(pool, worker, &[&request.ended], size).await;
                let _ = request
                    .reply
                    .send(result.map(|w| w.first().copied().unwrap_or(false)));
            }
        }
        Err(DbError::Unavailable(message)) => {
            for request in batch {
                let _ = request.reply.send(Err(DbError::Unavailable(message.clone())));
            }
        }
        Err(e) => {
            if let Some(request) = batch.into_iter().next() {
                let _ = request.reply.send(Err(e));
            }
        }
    }
}

/// One batch on one connection, bounded by `db::CALL_TIMEOUT` like every worker call; then the
/// status notifications of what was written, after the commits (a lost one only delays
/// watchers, sql/0007). A connection that just carried large results is closed rather than
/// pooled (`db::release_after`).
async fn write(pool: &Pool, worker: &str, endings: &[&Ended], bytes: usize) -> Result<Vec<bool>, DbError> {
    let client = match tokio::time::timeout(db::CALL_TIMEOUT, pool.get()).await {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => return Err(DbError::from(e)),
        Err(_) => {
            pool.retain(|_, _| false);
            return Err(DbError::timed_out());
        }
    };
    let work = async {
        // Owned here, borrowed by the batch below.
        let exif: Vec<Option<serde_json::Value>> = endings
            .iter()
            .map(|e| match &*e.outcome {
                Outcome::Done(_, Some(upload)) => upload.exif_json(),
                _ => None,
            })
            .collect();
        let batch: Vec<WriteBack<'_>> = endings
            .iter()
            .zip(&exif)
            .map(|(e, exif)| WriteBack {
                fence: e.fence(worker),
                ending: ending(&e.outcome, exif.as_ref()),
            })
            .collect();
        let written = jobs::write_back(&client, &batch).await?;
        let payloads: Vec<String> = batch
            .iter()
            .zip(&written)
            .filter(|(_, w)| **w)
            .map(|(b, _)| b.fence.status_payload(b.ending.status()))
            .collect();
        if !payloads.is_empty() {
            if let Err(e) = jobs::notify_statuses(&client, &payloads).await {
                tracing::warn!(error = %e, "sending the status notifications failed");
            }
        }
        Ok(written)
    };
    match tokio::time::timeout(db::CALL_TIMEOUT, work).await {
        Ok(result) => {
            db::release_after(client, bytes);
            result
        }
        Err(_) => {
            db::discard(pool, client);
            Err(DbError::timed_out())
        }
    }
}

/// The row a job's outcome writes.
fn ending<'a>(outcome: &'a Outcome, exif: Option<&'a serde_json::Value>) -> Ending<'a> {
    match outcome {
        Outcome::Done(out, upload) => {
            let facts = out.facts.as_ref();
            Ending::Completed(Completion {
                data: &out.bytes,
                content_type: out.format.content_type(),
                width: out.width as i32,
                height: out.height as i32,
                thumbnail: &out.thumbnail,
                thumbnail_content_type: out.thumbnail_format.content_type(),
                original_content_type: out.input.format.content_type(),
                original_width: out.input.width as i32,
                original_height: out.input.height as i32,
                original_frames: i32::try_from(out.input.frames).unwrap_or(i32::MAX),
                processed_frames: i32::try_from(out.frames).unwrap_or(i32::MAX),
                blurhash: facts.map(|f| f.blurhash.as_str()),
                dominant_color: facts.map(|f| f.dominant_color.as_str()),
                sha256: upload.as_ref().map(|u| u.sha256.as_str()),
                exif,
            })
        }
        Outcome::Failed(failure) | Outcome::TimedOut(failure) => Ending::Failed(failure),
    }
}
