//! The upload body as an extractor: a multipart form (one or more `file` parts plus operation
//! fields or a `pipeline` part) or a raw image body, read with every size bound enforced while
//! streaming, so no request can make the server buffer more than an honest upload could.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::http::dto::MAX_FILES;
use crate::http::error::ApiError;
use crate::http::extract::{content_length, content_type, QueryParams};
use crate::http::state::AppState;

/// Most non-file form fields one request may carry.
const MAX_FIELDS: usize = 64;
/// Longest operation field value; operation values are short.
const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Longest stored filename, in characters.
const MAX_FILENAME_CHARS: usize = 255;

/// One received file.
pub struct Upload {
    /// The client's name for it, cleaned ([`clean_filename`]).
    pub filename: Option<String>,
    pub data: Bytes,
}

/// Everything an upload request carried: at least one file, and the operation fields (from
/// the query string and the form, in that order) still as text.
pub struct UploadBody {
    pub files: Vec<Upload>,
    pub fields: Vec<(String, String)>,
    /// One of `MAX_CONCURRENT_UPLOADS` slots, taken before the body is read and held while
    /// this upload's bytes are in memory.
    pub slot: OwnedSemaphorePermit,
}

impl FromRequest<AppState> for UploadBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Bounded concurrency keeps memory bounded: excess load is told to come back.
        let slot = state
            .upload_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Busy)?;
        let limit = state.config.max_upload_bytes;
        let content_type = content_type(request.headers());
        let declared = content_length(request.headers());
        let mut query_filename = None;
        let mut fields = Vec::new();
        for (k, v) in QueryParams::parse(request.uri().query()).into_pairs() {
            if k == "filename" {
                query_filename = Some(v);
            } else {
                fields.push((k, v));
            }
        }
        let files = if content_type.starts_with("multipart/form-data") {
            let multipart = Multipart::from_request(request, state)
                .await
                .map_err(|e| ApiError::bad("body", format!("malformed multipart body: {}", e.body_text())))?;
            read_multipart(multipart, limit, declared, &mut fields).await?
        } else if content_type.starts_with("image/") || content_type.starts_with("application/octet-stream") {
            // A declared length over the limit is refused before a byte is read.
            if declared.is_some_and(|n| n > limit) {
                return Err(ApiError::TooLarge { limit });
            }
            let data = read_raw(request.into_body(), limit, declared).await?;
            vec![Upload {
                filename: query_filename.as_deref().map(clean_filename),
                data,
            }]
        } else {
            return Err(ApiError::UnsupportedMedia(
                "send multipart/form-data with one or more `file` parts, or a raw body with an image/* or \
                 application/octet-stream Content-Type"
                    .into(),
            ));
        };
        if files.is_empty() {
            return Err(ApiError::bad("file", "no `file` part in the form"));
        }
        Ok(UploadBody { files, fields, slot })
    }
}

async fn read_multipart(
    mut multipart: Multipart,
    limit: u64,
    declared: Option<u64>,
    fields: &mut Vec<(String, String)>,
) -> Result<Vec<Upload>, ApiError> {
    let mut files = Vec::new();
    let mut field_count = 0;
    while let Some(field) = multipart.next_field().await.map_err(|e| malformed(e, limit))? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            if files.len() == MAX_FILES {
                return Err(ApiError::bad(
                    "file",
                    format!("at most {MAX_FILES} files per request"),
                ));
            }
            let filename = field.file_name().map(clean_filename);
            // Sized from the request's length (bounded by the limit) for the first file, so the
            // buffer does not grow by doubling: that held several times each upload's size.
            let hint = if files.is_empty() {
                initial_capacity(declared, limit)
            } else {
                0
            };
            let data = read_field(field, hint, limit, limit, || ApiError::TooLarge { limit }).await?;
            files.push(Upload { filename, data });
        } else {
            field_count += 1;
            if field_count > MAX_FIELDS {
                return Err(ApiError::bad(
                    &name,
                    format!("at most {MAX_FIELDS} form fields per request"),
                ));
            }
            // A huge text field is refused before it is buffered.
            let value = read_field(field, 0, MAX_FIELD_BYTES as u64, limit, || {
                ApiError::bad(&name, "field value too long")
            })
            .await?;
            let value =
                String::from_utf8(value.to_vec()).map_err(|_| ApiError::bad(&name, "not valid UTF-8"))?;
            fields.push((name, value));
        }
    }
    Ok(files)
}

/// Reads one multipart field of at most `max` bytes; `too_long` says what to answer past it.
/// `upload_limit` is what a `413` from the body limit names.
async fn read_field(
    mut field: axum::extract::multipart::Field<'_>,
    capacity: usize,
    max: u64,
    upload_limit: u64,
    too_long: impl Fn() -> ApiError,
) -> Result<Bytes, ApiError> {
    // A field that arrives in one chunk is kept as it is (no copy); more are joined.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut len = 0usize;
    while let Some(chunk) = field.chunk().await.map_err(|e| malformed(e, upload_limit))? {
        len += chunk.len();
        if len as u64 > max {
            return Err(too_long());
        }
        if let Some(data) = joined.as_mut() {
            data.extend_from_slice(&chunk);
        } else if let Some(head) = first.take() {
            let mut data = BytesMut::with_capacity(capacity.max(len));
            data.extend_from_slice(&head);
            data.extend_from_slice(&chunk);
            joined = Some(data);
        } else {
            first = Some(chunk);
        }
    }
    Ok(match (joined, first) {
        (Some(data), _) => data.freeze(),
        (None, Some(chunk)) => chunk,
        (None, None) => Bytes::new(),
    })
}

/// A multipart error as the client should see it: the body limit as `413`, the rest as `400`.
fn malformed(e: axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge { limit }
    } else {
        ApiError::bad("body", format!("malformed multipart body: {}", e.body_text()))
    }
}

async fn read_raw(body: Body, limit: u64, declared: Option<u64>) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut data = BytesMut::with_capacity(initial_capacity(declared, limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad("body", format!("could not read the body: {e}")))?;
        if (data.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::TooLarge { limit });
        }
        data.extend_from_slice(&chunk);
    }
    if data.is_empty() {
        return Err(ApiError::bad("body", "the body is empty"));
    }
    Ok(data.freeze())
}

/// Capacity to reserve for a body of `declared` bytes: never more than the limit allows, so a
/// lying Content-Length cannot make us allocate more than an honest upload could.
fn initial_capacity(declared: Option<u64>, limit: u64) -> usize {
    usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0)
}

/// Keeps a filename as plain data: the last path component, no control characters, bounded.
fn clean_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "upload".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_stripped_of_paths_and_control_characters() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\photos\\cat.jpg"), "cat.jpg");
        assert_eq!(clean_filename("a\r\nb.png"), "ab.png");
        assert_eq!(clean_filename(".."), "upload");
        assert_eq!(clean_filename(&"x".repeat(1000)).len(), MAX_FILENAME_CHARS);
    }

    #[test]
    fn a_lying_length_cannot_reserve_more_than_the_limit() {
        assert_eq!(initial_capacity(Some(u64::MAX), 1000), 1000);
        assert_eq!(initial_capacity(None, 1000), 0);
        assert_eq!(initial_capacity(Some(10), 1000), 10);
    }
}
