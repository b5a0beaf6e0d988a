//! Uploads: multipart (one or more `file` parts plus operation fields or a `pipeline` JSON part)
//! or a raw image body. Every file is size-checked while streaming, sniffed from its bytes and
//! checked against `MAX_PIXELS` from its header before anything is stored.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::images::{record_location, ImageObject};
use super::openapi::{Binary, ImageBatch, Operations, UploadAnswer, UploadForm};
use super::{ApiError, AppState};
use crate::db::images::{self, NewImage};
use crate::imaging::{self, Pipeline, Probe};

/// Most files one request may carry.
pub const MAX_FILES: usize = 20;
/// Most non-file form fields one request may carry.
const MAX_FIELDS: usize = 64;
/// Longest stored filename, in characters.
const MAX_FILENAME_CHARS: usize = 255;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(legacy_upload))
}

/// One received file.
struct Upload {
    filename: Option<String>,
    data: Bytes,
}

/// `POST /api/images` and the original design's `POST /upload`.
#[utoipa::path(post, path = "/api/images", tag = "images",
    params(Operations, ("filename" = Option<String>, Query, description = "the stored name of a raw-body upload")),
    request_body(description = "multipart with one or more `file` parts (operation fields or `pipeline` \
                                alongside), or the raw image bytes",
        content(
            (UploadForm = "multipart/form-data"),
            (Binary = "image/*"),
            (Binary = "application/octet-stream"),
        )),
    responses(
        (status = 202, description = "stored and queued: the image object for one file, `{\"images\": [...]}` for several",
            headers(("Location" = String, description = "the (first) image's URL")),
            body = UploadAnswer),
        (status = 400, description = "bad operation field, pipeline or form; `param` names it", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "a file over `MAX_UPLOAD_BYTES`", body = ErrorBody),
        (status = 415, description = "not an image we read (sniffed from the bytes)", body = ErrorBody),
        (status = 422, description = "readable but refused (over `MAX_PIXELS`, corrupt header)", body = ErrorBody),
        (status = 503, description = "database unavailable or too many uploads at once (`Retry-After`)", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Result<Response, ApiError> {
    // Bounded concurrency keeps memory bounded: excess load is told to come back.
    let _slot = state
        .upload_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let limit = state.config.max_upload_bytes;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut query_filename = None;
    for (k, v) in query {
        if k == "filename" {
            query_filename = Some(v);
        } else {
            fields.push((k, v));
        }
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let files = if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &state)
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
    let pipeline = parse_pipeline(&fields)?;
    let pipeline_json = pipeline
        .as_ref()
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?;

    let probes = probe_all(&state, &files).await?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await.map_err(crate::db::DbError::from)?;
    let mut records = Vec::with_capacity(files.len());
    for (file, probe) in files.iter().zip(&probes) {
        let new = NewImage {
            data: &file.data,
            filename: file.filename.as_deref(),
            pipeline: pipeline_json.as_ref(),
            content_type: probe.format.content_type(),
            width: probe.width as i32,
            height: probe.height as i32,
        };
        records.push(images::insert_image(&tx, &new).await?);
    }
    tx.commit().await.map_err(crate::db::DbError::from)?;
    // The rows are stored: a failed notification only delays them until the workers' sweep.
    if let Err(e) = images::notify_inserted(&client, &records).await {
        tracing::warn!(error = %e, "could not notify workers after the upload; the sweep will find it");
    }
    tracing::info!(files = records.len(), "accepted upload");
    crate::metrics::upload_accepted(files.len(), files.iter().map(|f| f.data.len()).sum());

    let location = records.first().map(record_location).unwrap_or_default();
    let body = if records.len() == 1 {
        UploadAnswer::One(Box::new(ImageObject::from(records.remove(0))))
    } else {
        UploadAnswer::Several(ImageBatch {
            images: records.into_iter().map(ImageObject::from).collect(),
        })
    };
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response())
}

/// The original design's `POST /upload`: the same as `POST /api/images`.
#[utoipa::path(post, path = "/upload", tag = "legacy",
    params(Operations, ("filename" = Option<String>, Query, description = "the stored name of a raw-body upload")),
    request_body(description = "as for `POST /api/images`",
        content(
            (UploadForm = "multipart/form-data"),
            (Binary = "image/*"),
            (Binary = "application/octet-stream"),
        )),
    responses(
        (status = 202, description = "stored and queued, as for `POST /api/images`",
            headers(("Location" = String, description = "the (first) image's URL")),
            body = UploadAnswer),
        (status = 400, description = "bad operation field, pipeline or form; `param` names it", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 413, description = "a file over `MAX_UPLOAD_BYTES`", body = ErrorBody),
        (status = 415, description = "not an image we read (sniffed from the bytes)", body = ErrorBody),
        (status = 422, description = "readable but refused (over `MAX_PIXELS`, corrupt header)", body = ErrorBody),
        (status = 503, description = "database unavailable or too many uploads at once (`Retry-After`)", body = ErrorBody),
    ))]
async fn legacy_upload(
    state: State<AppState>,
    query: Query<Vec<(String, String)>>,
    request: Request,
) -> Result<Response, ApiError> {
    upload(state, query, request).await
}

async fn read_multipart(
    mut multipart: Multipart,
    limit: u64,
    declared: Option<u64>,
    fields: &mut Vec<(String, String)>,
) -> Result<Vec<Upload>, ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::bad("body", format!("malformed multipart body: {}", e.body_text()))
        }
    };
    let mut files = Vec::new();
    let mut field_count = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
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
            let mut data = BytesMut::with_capacity(hint);
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                if (data.len() + chunk.len()) as u64 > limit {
                    return Err(ApiError::TooLarge { limit });
                }
                data.extend_from_slice(&chunk);
            }
            files.push(Upload {
                filename,
                data: data.freeze(),
            });
        } else {
            field_count += 1;
            if field_count > MAX_FIELDS {
                return Err(ApiError::bad(
                    &name,
                    format!("at most {MAX_FIELDS} form fields per request"),
                ));
            }
            // Operation values are short; a huge text field is refused before it is buffered.
            let mut value = BytesMut::new();
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                if value.len() + chunk.len() > 64 * 1024 {
                    return Err(ApiError::bad(&name, "field value too long"));
                }
                value.extend_from_slice(&chunk);
            }
            let value =
                String::from_utf8(value.to_vec()).map_err(|_| ApiError::bad(&name, "not valid UTF-8"))?;
            fields.push((name, value));
        }
    }
    Ok(files)
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

/// A `pipeline` JSON field, or flat operation fields, or neither (the worker's default).
fn parse_pipeline(fields: &[(String, String)]) -> Result<Option<Pipeline>, ApiError> {
    let json = fields.iter().find(|(k, _)| k == "pipeline");
    if let Some((_, text)) = json {
        if fields.len() > 1 {
            return Err(ApiError::bad(
                "pipeline",
                "send either a `pipeline` JSON field or operation fields, not both",
            ));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ApiError::bad("pipeline", format!("not valid JSON: {e}")))?;
        return Ok(Some(Pipeline::from_json(&value)?));
    }
    Ok(Pipeline::from_fields(
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// Sniffs and header-checks every file on a blocking thread (TIFF and GIF headers can take
/// a scan); the first bad file refuses the whole request, so nothing is half-stored.
async fn probe_all(state: &AppState, files: &[Upload]) -> Result<Vec<Probe>, ApiError> {
    let limits = state.config.limits();
    let datas: Vec<Bytes> = files.iter().map(|f| f.data.clone()).collect();
    let names: Vec<Option<String>> = files.iter().map(|f| f.filename.clone()).collect();
    let results = tokio::task::spawn_blocking(move || {
        datas
            .iter()
            .map(|d| std::panic::catch_unwind(|| imaging::probe(d, &limits)))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let several = files.len() > 1;
    results
        .into_iter()
        .zip(names)
        .map(|(r, name)| {
            let r = r.unwrap_or_else(|_| {
                Err(imaging::ImagingError::Corrupt(
                    "the header could not be parsed".into(),
                ))
            });
            r.map_err(|e| {
                let e = ApiError::from(e);
                match (several, name) {
                    (true, Some(name)) => prefix_error(e, &name),
                    _ => e,
                }
            })
        })
        .collect()
}

fn prefix_error(e: ApiError, name: &str) -> ApiError {
    match e {
        ApiError::UnsupportedMedia(m) => ApiError::UnsupportedMedia(format!("{name}: {m}")),
        ApiError::Unprocessable { code, message } => ApiError::Unprocessable {
            code,
            message: format!("{name}: {message}"),
        },
        other => other,
    }
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
}
