//! Statements on `processed_images`, one function per job. None of the listing or status
//! statements read the image blobs.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::DbError;
use crate::states::JobStatus;

/// The metadata columns (never the blobs), in the order [`ImageRecord::from_row`] reads them.
/// The last is the image's variants (their own format's rows), one small array each, read
/// through `image_variants`' primary key: no statement that uses these aliases
/// `processed_images`, which the subquery names.
macro_rules! record_columns {
    () => {
        concat!(
            record_columns!(base),
            ", (select jsonb_agg(jsonb_build_array(v.preset, v.status, v.content_type, v.bytes, \
             v.width, v.height, v.error, v.error_code) order by v.preset) \
             from image_variants v where v.image_id = processed_images.id and v.format = '')"
        )
    };
    // Without the variants: for a row just inserted, which has none yet (the hot ingest path
    // skips the subquery).
    (new) => {
        concat!(record_columns!(base), ", null::jsonb")
    };
    (base) => {
        "id, status, filename, error, error_code, attempts, uploaded_at, started_at, processed_at, \
         pipeline, original_content_type, original_bytes, original_width, original_height, \
         processed_content_type, processed_bytes, processed_width, processed_height, priority, \
         not_before, original_frames, processed_frames, sha256, blurhash, dominant_color, exif, \
         callback_url"
    };
}
pub(crate) use record_columns;

/// One row's metadata, as the API shows it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Uuid,
    pub status: JobStatus,
    pub filename: Option<String>,
    pub error: Option<String>,
    /// The stable code of `error` (`corrupt_image`, `worker_lost`, ...).
    pub error_code: Option<String>,
    pub attempts: i32,
    pub uploaded_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    pub pipeline: Option<serde_json::Value>,
    pub original: Media,
    pub processed: Media,
    /// −100..100: higher is claimed first.
    pub priority: i16,
    /// Not claimed before this time.
    pub not_before: Option<DateTime<Utc>>,
    /// What is known of the original beyond its size (`sql/0013_image_facts.sql`).
    pub facts: Facts,
    /// Told when the image completes or fails (a webhook).
    pub callback_url: Option<String>,
    /// Its variants (`sql/0015_presets_variants.sql`), by preset name.
    pub variants: Vec<VariantSummary>,
}

/// One variant of an image, as the image object lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSummary {
    pub preset: String,
    pub status: JobStatus,
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub error: Option<String>,
    pub error_code: Option<String>,
}

impl VariantSummary {
    /// A variant just queued.
    pub fn pending(preset: &str) -> VariantSummary {
        VariantSummary {
            preset: preset.to_owned(),
            status: JobStatus::Pending,
            content_type: None,
            bytes: None,
            width: None,
            height: None,
            error: None,
            error_code: None,
        }
    }

    /// Reads the `jsonb_build_array` rows of `record_columns!`; a malformed one is skipped
    /// (the columns' types and CHECKs make that impossible short of a schema change).
    fn from_json(value: Option<serde_json::Value>) -> Vec<VariantSummary> {
        let Some(serde_json::Value::Array(rows)) = value else {
            return Vec::new();
        };
        rows.into_iter()
            .filter_map(|row| {
                type Cols = (
                    String,
                    String,
                    Option<String>,
                    Option<i64>,
                    Option<i32>,
                    Option<i32>,
                    Option<String>,
                    Option<String>,
                );
                let (preset, status, content_type, bytes, width, height, error, error_code): Cols =
                    serde_json::from_value(row).ok()?;
                Some(VariantSummary {
                    preset,
                    status: status.parse().ok()?,
                    content_type,
                    bytes,
                    width,
                    height,
                    error,
                    error_code,
                })
            })
            .collect()
    }
}

/// The original's facts; each `None` until known (SPEC "Facts").
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub sha256: Option<String>,
    pub blurhash: Option<String>,
    pub dominant_color: Option<String>,
    pub exif: Option<serde_json::Value>,
}

/// Type, size and dimensions of one side (original or processed); fields are `None` until known.
#[derive(Debug, Clone, Default)]
pub struct Media {
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Frames: more than one for an animation.
    pub frames: Option<i32>,
}

impl ImageRecord {
    pub(crate) fn from_row(row: &Row) -> Result<ImageRecord, tokio_postgres::Error> {
        Ok(ImageRecord {
            id: row.try_get(0)?,
            status: row.try_get(1)?,
            filename: row.try_get(2)?,
            error: row.try_get(3)?,
            error_code: row.try_get(4)?,
            attempts: row.try_get(5)?,
            uploaded_at: row.try_get(6)?,
            started_at: row.try_get(7)?,
            processed_at: row.try_get(8)?,
            pipeline: row.try_get(9)?,
            original: Media {
                content_type: row.try_get(10)?,
                bytes: row.try_get(11)?,
                width: row.try_get(12)?,
                height: row.try_get(13)?,
                frames: row.try_get(20)?,
            },
            processed: Media {
                content_type: row.try_get(14)?,
                bytes: row.try_get(15)?,
                width: row.try_get(16)?,
                height: row.try_get(17)?,
                frames: row.try_get(21)?,
            },
            priority: row.try_get(18)?,
            not_before: row.try_get(19)?,
            facts: Facts {
                sha256: row.try_get(22)?,
                blurhash: row.try_get(23)?,
                dominant_color: row.try_get(24)?,
                exif: row.try_get(25)?,
            },
            callback_url: row.try_get(26)?,
            variants: VariantSummary::from_json(row.try_get(27)?),
        })
    }
}

fn records(rows: &[Row]) -> Result<Vec<ImageRecord>, DbError> {
    rows.iter()
        .map(|r| ImageRecord::from_row(r).map_err(DbError::from))
        .collect()
}

/// A new upload, already sniffed and validated by the API.
#[derive(Debug)]
pub struct NewImage<'a> {
    /// Chosen by the API, so the notifications can go out before the INSERT answers
    /// ([`insert_image_notified`]).
    pub id: uuid::Uuid,
    pub data: &'a [u8],
    pub filename: Option<&'a str>,
    pub pipeline: Option<&'a serde_json::Value>,
    pub content_type: &'a str,
    pub width: i32,
    pub height: i32,
    /// −100..100 (validated by the API).
    pub priority: i16,
    pub not_before: Option<DateTime<Utc>>,
    pub frames: i32,
    /// Hex SHA-256 of `data`.
    pub sha256: &'a str,
    pub exif: Option<&'a serde_json::Value>,
    /// Checked by the API (http(s), a host, at most 2048 bytes).
    pub callback_url: Option<&'a str>,
}

pub const INSERT_IMAGE: &str = concat!(
    "insert into processed_images (original_data, filename, pipeline, original_content_type, \
     original_width, original_height, original_bytes, priority, not_before, original_frames, \
     sha256, exif, callback_url, id) \
     values ($1, $2, $3, $4, $5, $6, octet_length($1::bytea), $7, $8, $9, $10, $11, $12, $13) returning ",
    record_columns!(new)
);

/// Inserts one upload as a pending job. On the API's connections the triggers do not notify:
/// call [`notify_inserted`] after the commit.
pub async fn insert_image(db: &impl GenericClient, new: &NewImage<'_>) -> Result<ImageRecord, DbError> {
    let stmt = db.prepare_cached(INSERT_IMAGE).await?;
    let row = db.query_one(&stmt, &insert_params(new)).await?;
    Ok(ImageRecord::from_row(&row)?)
}

fn insert_params<'a>(new: &'a NewImage<'_>) -> Vec<&'a (dyn ToSql + Sync)> {
    let data: &'a (dyn ToSql + Sync) = &new.data;
    std::iter::once(data).chain(metadata_fields(new)).collect()
}

/// The upload's fields but its bytes, in the order [`INSERT_IMAGE`] (after `$1`) and
/// [`COPY_IMAGE`] take them.
fn metadata_fields<'a>(new: &'a NewImage<'_>) -> [&'a (dyn ToSql + Sync); 12] {
    [
        &new.filename,
        &new.pipeline,
        &new.content_type,
        &new.width,
        &new.height,
        &new.priority,
        &new.not_before,
        &new.frames,
        &new.sha256,
        &new.exif,
        &new.callback_url,
        &new.id,
    ]
}

/// The columns a COPY of one upload writes: `original_data` last, so its bytes stream behind
/// the small fields.
macro_rules! copy_columns {
    () => {
        "filename, pipeline, original_content_type, original_width, original_height, priority, \
         not_before, original_frames, sha256, exif, callback_url, id, original_bytes, original_data"
    };
}

pub const COPY_IMAGE: &str = concat!(
    "copy processed_images (",
    copy_columns!(),
    ") from stdin (format binary)"
);

/// No rows: its columns' types are what [`copy_image`] encodes the fields as, so the binary row
/// follows the schema as it is rather than a copy of it here.
pub const COPY_IMAGE_TYPES: &str = concat!("select ", copy_columns!(), " from processed_images limit 0");

/// A row just copied in, as [`INSERT_IMAGE`] would have returned it.
pub const NEW_IMAGE: &str = concat!(
    "select ",
    record_columns!(new),
    " from processed_images where id = $1"
);

/// How much of an upload each COPY message carries: the connection's socket buffer grows to
/// about this (and its backpressure point), never to the upload's size.
const COPY_CHUNK_BYTES: usize = 64 * 1024;

/// A connection or transaction that can run `COPY ... FROM STDIN` (deadpool's `GenericClient`
/// cannot).
pub trait CopyIn: GenericClient {
    fn copy_in_bytes(
        &self,
        statement: &tokio_postgres::Statement,
    ) -> impl std::future::Future<Output = Result<tokio_postgres::CopyInSink<Bytes>, tokio_postgres::Error>> + Send;
}

impl CopyIn for deadpool_postgres::Client {
    fn copy_in_bytes(
        &self,
        statement: &tokio_postgres::Statement,
    ) -> impl std::future::Future<Output = Result<tokio_postgres::CopyInSink<Bytes>, tokio_postgres::Error>> + Send
    {
        let client: &tokio_postgres::Client = self;
        client.copy_in(statement)
    }
}

impl CopyIn for deadpool_postgres::Transaction<'_> {
    fn copy_in_bytes(
        &self,
        statement: &tokio_postgres::Statement,
    ) -> impl std::future::Future<Output = Result<tokio_postgres::CopyInSink<Bytes>, tokio_postgres::Error>> + Send
    {
        let tx: &tokio_postgres::Transaction<'_> = self;
        tx.copy_in(statement)
    }
}

/// Inserts one upload as a pending job like [`insert_image`], but streams its bytes to the
/// server with `COPY` in [`COPY_CHUNK_BYTES`] slices of `data` itself. A statement's
/// parameters are copied twice on their way out (into the client's message buffer, then into
/// the socket writer's, which keeps that capacity), so an INSERT of a 20 MB upload holds
/// 40-60 MB for a moment and 20-40 MB for the connection's life; this holds the upload once.
/// It costs a round trip more (the row is read back), so it is for large uploads. Run it in a
/// transaction, so the row read back is as copied (`pending`, not yet claimed).
pub async fn copy_image(tx: &impl CopyIn, new: &NewImage<'_>, data: &Bytes) -> Result<ImageRecord, DbError> {
    use futures::SinkExt;
    let types = tx.prepare_cached(COPY_IMAGE_TYPES).await?;
    let copy = tx.prepare_cached(COPY_IMAGE).await?;
    let read_back = tx.prepare_cached(NEW_IMAGE).await?;
    let head = copy_row_head(new, data.len(), types.columns())?;
    let sink = tx.copy_in_bytes(&copy).await?;
    let mut sink = std::pin::pin!(sink);
    sink.feed(head).await?;
    let mut at = 0;
    while at < data.len() {
        let end = (at + COPY_CHUNK_BYTES).min(data.len());
        sink.feed(data.slice(at..end)).await?;
        at = end;
    }
    // The file trailer: a field count of -1.
    sink.feed(Bytes::from_static(&[0xff, 0xff])).await?;
    sink.as_mut().finish().await?;
    let row = tx.query_one(&read_back, &[&new.id]).await?;
    Ok(ImageRecord::from_row(&row)?)
}

/// PostgreSQL's binary COPY header and one row's fields up to the blob's length word, each field
/// encoded as its column's type (`columns`, from [`COPY_IMAGE_TYPES`]) wants.
fn copy_row_head(
    new: &NewImage<'_>,
    data_len: usize,
    columns: &[tokio_postgres::Column],
) -> Result<Bytes, DbError> {
    use bytes::BufMut;
    use tokio_postgres::types::IsNull;
    let encode = |what: &str, e: &dyn std::fmt::Display| DbError::Encode(format!("{what}: {e}"));
    let original_bytes = i64::try_from(data_len).map_err(|e| encode("original_bytes", &e))?;
    let blob_len = i32::try_from(data_len).map_err(|e| encode("original_data", &e))?;
    let mut fields: Vec<&(dyn ToSql + Sync)> = metadata_fields(new).to_vec();
    fields.push(&original_bytes);
    if columns.len() != fields.len() + 1 {
        return Err(encode(
            "columns",
            &format!("{} columns for {} fields", columns.len(), fields.len() + 1),
        ));
    }
    let mut head = bytes::BytesMut::with_capacity(1024);
    head.put_slice(b"PGCOPY\n\xff\r\n\0");
    head.put_i32(0); // flags
    head.put_i32(0); // header extension length
    head.put_i16((fields.len() + 1) as i16);
    for (value, column) in fields.iter().zip(columns) {
        let at = head.len();
        head.put_i32(0);
        let len = match value
            .to_sql_checked(column.type_(), &mut head)
            .map_err(|e| encode(column.name(), &e))?
        {
            IsNull::Yes => -1,
            IsNull::No => i32::try_from(head.len() - at - 4).map_err(|e| encode(column.name(), &e))?,
        };
        head[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    head.put_i32(blob_len);
    Ok(head.freeze())
}

/// Inserts one upload on its own (its INSERT commits as it completes) and sends its
/// notifications pipelined right behind it, without waiting for its answer: the id is the
/// API's, so the payload is known. The server runs the notification only once the INSERT has
/// committed, so no worker hears of the row before it is there; what goes is the round trip
/// between the two, which every pickup (upload to claim) paid. Should the INSERT fail, the
/// notification still goes: a wake-up that finds nothing, about an id nobody was given.
/// The second result is the notification's: a failed one only delays the job until the sweep.
pub async fn insert_image_notified(
    db: &impl GenericClient,
    new: &NewImage<'_>,
) -> (Result<ImageRecord, DbError>, Result<(), DbError>) {
    // Both prepared first: a statement still being prepared could let the notification reach
    // the server before the INSERT.
    let insert = match db.prepare_cached(INSERT_IMAGE).await {
        Ok(stmt) => stmt,
        Err(e) => return (Err(e.into()), Ok(())),
    };
    let notify = match db.prepare_cached(NOTIFY_INSERTED).await {
        Ok(stmt) => stmt,
        Err(e) => {
            return (
                insert_row(db.query_one(&insert, &insert_params(new)).await),
                Err(e.into()),
            )
        }
    };
    let params = insert_params(new);
    let payloads = vec![format!("{}:{}", new.id, crate::states::JobStatus::Pending)];
    let mut row = std::pin::pin!(db.query_one(&insert, &params));
    // Polled once here, so the INSERT is queued on the connection before the notification.
    let early = futures::poll!(row.as_mut());
    let notify_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&payloads];
    let sent = db.execute(&notify, &notify_params);
    let (row, sent) = match early {
        std::task::Poll::Ready(row) => (row, sent.await),
        std::task::Poll::Pending => tokio::join!(row, sent),
    };
    (insert_row(row), sent.map(|_| ()).map_err(DbError::from))
}

fn insert_row(row: Result<tokio_postgres::Row, tokio_postgres::Error>) -> Result<ImageRecord, DbError> {
    Ok(ImageRecord::from_row(&row?)?)
}

/// The oldest image with this hash and effective pipeline that has not failed or been
/// cancelled (`dedupe=true`). `$1` hash, `$2` the effective pipeline, `$3` the default one (what
/// a row without a pipeline gets).
pub const FIND_DUPLICATE: &str = concat!(
    "select ",
    record_columns!(),
    " from processed_images where sha256 = $1 \
     and coalesce(nullif(pipeline, 'null'::jsonb), $3::jsonb) = $2::jsonb \
     and status not in ('failed', 'cancelled') \
     order by uploaded_at limit 1"
);

/// An earlier upload of the same bytes with the same effective pipeline, if any.
pub async fn find_duplicate(
    db: &impl GenericClient,
    sha256: &str,
    pipeline: &serde_json::Value,
    default_pipeline: &serde_json::Value,
) -> Result<Option<ImageRecord>, DbError> {
    let stmt = db.prepare_cached(FIND_DUPLICATE).await?;
    let row = db
        .query_opt(&stmt, &[&sha256, pipeline, default_pipeline])
        .await?;
    row.map(|r| ImageRecord::from_row(&r))
        .transpose()
        .map_err(DbError::from)
}

/// The notifications the insert triggers would have sent: one `image_status` per row (for SSE
/// and `?wait=`) and one `image_jobs` wake-up for the workers.
pub const NOTIFY_INSERTED: &str = "select pg_notify('image_status', p) from unnest($1::text[]) as p \
     union all select pg_notify('image_jobs', '')";

/// Sends, after the upload's commit, the notifications its triggers skipped
/// (`sql/0003_notify_after_commit.sql` says why). Runs as its own statement, so it commits
/// at once and writes no WAL.
pub async fn notify_inserted(db: &impl GenericClient, records: &[&ImageRecord]) -> Result<(), DbError> {
    let payloads: Vec<String> = records.iter().map(|r| format!("{}:{}", r.id, r.status)).collect();
    let stmt = db.prepare_cached(NOTIFY_INSERTED).await?;
    db.execute(&stmt, &[&payloads]).await?;
    Ok(())
}

pub const GET_IMAGE: &str = concat!(
    "select ",
    record_columns!(),
    " from processed_images where id = $1"
);

pub async fn get_image(db: &impl GenericClient, id: Uuid) -> Result<Option<ImageRecord>, DbError> {
    let stmt = db.prepare_cached(GET_IMAGE).await?;
    let row = db.query_opt(&stmt, &[&id]).await?;
    row.map(|r| ImageRecord::from_row(&r))
        .transpose()
        .map_err(DbError::from)
}

/// The list statements, one per shape of request. A single statement with
/// `($1 is null or status = $1)` plans well only while PostgreSQL re-plans it for every call; a
/// generic plan of it (which the plan cache may switch to) walks the newest-first index and
/// filters, 236 ms for `?status=pending&before=...` at a million rows. Each of these has one
/// plan, an index range scan on `processed_images_list_idx` (or `processed_images_status_list_idx`
/// with a status) that stops after `limit` rows, checked at 1 M rows by scripts/bench-table.
macro_rules! list_images {
    ($where:literal) => {
        concat!(
            "select ",
            record_columns!(),
            " from processed_images ",
            $where,
            " order by uploaded_at desc, id desc limit $1"
        )
    };
}

pub const LIST_IMAGES: &str = list_images!("");
pub const LIST_IMAGES_BEFORE: &str = list_images!("where (uploaded_at, id) < ($2, $3)");
pub const LIST_IMAGES_BY_STATUS: &str = list_images!("where status = $2");
pub const LIST_IMAGES_BY_STATUS_BEFORE: &str =
    list_images!("where status = $2 and (uploaded_at, id) < ($3, $4)");

/// Newest first; `before` is the `(uploaded_at, id)` of the last row of the previous page.
pub async fn list_images(
    db: &impl GenericClient,
    status: Option<JobStatus>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ImageRecord>, DbError> {
    let before = before.as_ref().map(|(at, id)| (at, id));
    let (statement, params): (&str, Vec<&(dyn ToSql + Sync)>) = match (&status, before) {
        (None, None) => (LIST_IMAGES, vec![&limit]),
        (None, Some((at, id))) => (LIST_IMAGES_BEFORE, vec![&limit, at, id]),
        (Some(status), None) => (LIST_IMAGES_BY_STATUS, vec![&limit, status]),
        (Some(status), Some((at, id))) => (LIST_IMAGES_BY_STATUS_BEFORE, vec![&limit, status, at, id]),
    };
    let stmt = db.prepare_cached(statement).await?;
    let rows = db.query(&stmt, &params).await?;
    records(&rows)
}

/// Which blob to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    Original,
    Processed,
    Thumbnail,
}

/// A blob with what the download headers need.
#[derive(Debug)]
pub struct BlobRow {
    pub status: JobStatus,
    pub data: Option<Vec<u8>>,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    /// Changes whenever the blob does: the claim that produced it (`claim_seq`, which unlike
    /// `attempts` never repeats after a retry).
    pub version: i64,
}

pub const GET_ORIGINAL: &str = "select status, original_data, original_content_type, filename, 0::bigint \
                                from processed_images where id = $1";
pub const GET_PROCESSED: &str = "select status, processed_data, processed_content_type, filename, claim_seq \
                                 from processed_images where id = $1";
pub const GET_THUMBNAIL: &str = "select status, thumbnail_data, thumbnail_content_type, filename, claim_seq \
                                 from processed_images where id = $1";

pub async fn get_blob(db: &impl GenericClient, id: Uuid, which: Blob) -> Result<Option<BlobRow>, DbError> {
    let sql = match which {
        Blob::Original => GET_ORIGINAL,
        Blob::Processed => GET_PROCESSED,
        Blob::Thumbnail => GET_THUMBNAIL,
    };
    let stmt = db.prepare_cached(sql).await?;
    let Some(row) = db.query_opt(&stmt, &[&id]).await? else {
        return Ok(None);
    };
    Ok(Some(BlobRow {
        status: row.try_get(0)?,
        data: row.try_get(1)?,
        content_type: row.try_get(2)?,
        filename: row.try_get(3)?,
        version: row.try_get(4)?,
    }))
}

/// What a retry sets: pending again with a fresh budget, the last result and error dropped.
/// Shared by the single retry and the bulk one (`db::control`).
macro_rules! retry_set {
    () => {
        "set status = 'pending', attempts = 0, lost_leases = 0, error = null, error_code = null, \
         run_after = greatest(now(), not_before), \
         claimed_by = null, lease_expires_at = null, started_at = null, processed_at = null, \
         processed_data = null, processed_content_type = null, processed_width = null, \
         processed_height = null, thumbnail_data = null, thumbnail_content_type = null"
    };
}
pub(crate) use retry_set;

/// The statuses a retry takes back to pending: the finished ones.
macro_rules! retryable {
    () => {
        "('failed', 'completed', 'cancelled')"
    };
}
pub(crate) use retryable;

pub const RETRY_IMAGE: &str = concat!(
    "update processed_images ",
    retry_set!(),
    " where id = $1 and status in ",
    retryable!(),
    " returning ",
    record_columns!()
);

/// Puts a finished row back in the queue. `None` when it is not finished (or does not exist).
pub async fn retry_image(db: &impl GenericClient, id: Uuid) -> Result<Option<ImageRecord>, DbError> {
    let stmt = db.prepare_cached(RETRY_IMAGE).await?;
    let row = db.query_opt(&stmt, &[&id]).await?;
    row.map(|r| ImageRecord::from_row(&r))
        .transpose()
        .map_err(DbError::from)
}

pub const DELETE_IMAGE: &str = "delete from processed_images where id = $1";

/// Deletes a row; `false` when there was none. A worker holding it fails its fence and moves on.
pub async fn delete_image(db: &impl GenericClient, id: Uuid) -> Result<bool, DbError> {
    let stmt = db.prepare_cached(DELETE_IMAGE).await?;
    Ok(db.execute(&stmt, &[&id]).await? == 1)
}

/// The processed bytes of the given images that are `completed` (the watermarks a pipeline
/// draws); one larger than `$2` bytes comes back as `NULL`, unread.
pub const GET_WATERMARKS: &str =
    "select id, case when octet_length(processed_data) <= $2::int8 then processed_data end \
     from processed_images where id = any($1) and status = 'completed'";

/// The watermark images among `ids` that can be drawn: completed, at most `max_bytes`.
pub async fn watermarks(
    db: &impl GenericClient,
    ids: &[Uuid],
    max_bytes: i64,
) -> Result<Vec<(Uuid, Vec<u8>)>, DbError> {
    let stmt = db.prepare_cached(GET_WATERMARKS).await?;
    let rows = db.query(&stmt, &[&ids, &max_bytes]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let bytes: Option<Vec<u8>> = row.try_get(1)?;
        if let Some(bytes) = bytes {
            out.push((row.try_get(0)?, bytes));
        }
    }
    Ok(out)
}

/// Which of `ids` are completed images whose output the worker will load (at most `$2` bytes):
/// an upload's watermarks must be.
pub const COMPLETED_AMONG: &str = "select id from processed_images \
     where id = any($1) and status = 'completed' and octet_length(processed_data) <= $2::int8";

pub async fn completed_among(
    db: &impl GenericClient,
    ids: &[Uuid],
    max_bytes: i64,
) -> Result<Vec<Uuid>, DbError> {
    let stmt = db.prepare_cached(COMPLETED_AMONG).await?;
    let rows = db.query(&stmt, &[&ids, &max_bytes]).await?;
    rows.iter().map(|r| r.try_get(0).map_err(DbError::from)).collect()
}
