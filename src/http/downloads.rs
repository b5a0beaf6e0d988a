//! Downloads of the original, the processed result and the thumbnail, with the headers SPEC
//! lists (type, length, ETag, nosniff, attachment with a safe filename).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::Binary;
use super::error::ApiError;
use super::error::ErrorBody;
use super::extract::ImageId;
use super::legacy;
use super::state::AppState;
use crate::db::images::{self, Blob};
use crate::imaging::Format;
use crate::states::JobStatus;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(processed))
        .routes(routes!(original))
        .routes(routes!(thumbnail))
        .routes(legacy::alias("/download/{id}", routes!(processed)))
}

/// Documents one download route; every one answers alike.
macro_rules! download_path {
    ($method:ident, $blob:expr, $path:tt, $what:tt) => {
        #[utoipa::path(get, path = $path, tag = "downloads",
            params(
                ("id" = String, Path, description = "image id (UUID)"),
                ("If-None-Match" = Option<String>, Header, description = "an `ETag` from an earlier download"),
            ),
            responses(
                (status = 200, description = $what, body = Binary, content_type = "image/*",
                    headers(
                        ("Content-Length" = u64),
                        ("ETag" = String),
                        ("Content-Disposition" = String, description = "`attachment` with a safe filename"),
                        ("X-Content-Type-Options" = String, description = "`nosniff`"),
                    )),
                (status = 304, description = "unchanged since the `If-None-Match` tag"),
                (status = 401, description = "missing or wrong token", body = ErrorBody),
                (status = 404, description = "unknown or malformed id", body = ErrorBody),
                (status = 409, description = "not completed yet; `status` says what it is", body = ErrorBody),
                (status = 503, description = "database unavailable", body = ErrorBody),
            ))]
        async fn $method(
            state: State<AppState>,
            id: ImageId,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            download(state, id, headers, $blob).await
        }
    };
}

download_path!(
    processed,
    Blob::Processed,
    "/api/images/{id}/processed",
    "the processed image"
);
download_path!(
    original,
    Blob::Original,
    "/api/images/{id}/original",
    "the uploaded bytes"
);
download_path!(
    thumbnail,
    Blob::Thumbnail,
    "/api/images/{id}/thumbnail",
    "a small preview"
);

async fn download(
    State(state): State<AppState>,
    ImageId(id): ImageId,
    headers: HeaderMap,
    which: Blob,
) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    let row = images::get_blob(&client, id, which)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(client);
    let data = match (which, row.data) {
        (Blob::Original, Some(data)) => data,
        (_, Some(data)) if row.status == JobStatus::Completed => data,
        _ => return Err(ApiError::NotReady { status: row.status }),
    };
    // Rows inserted by SQL have no stored type until processed: sniff it.
    let format = row
        .content_type
        .as_deref()
        .and_then(|ct| ct.strip_prefix("image/"))
        .and_then(Format::from_name)
        .or_else(|| Format::sniff(&data));
    let content_type = format
        .map(Format::content_type)
        .unwrap_or("application/octet-stream");
    let tag = format!(
        "\"{}-{}-{}\"",
        id.simple(),
        match which {
            Blob::Original => "o",
            Blob::Processed => "p",
            Blob::Thumbnail => "t",
        },
        row.version
    );
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let len = data.len();
        let mut r = data.into_response();
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    let name = download_name(row.filename.as_deref(), which, format);
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// The upload's name without its extension (`image` when it has none).
pub(super) fn stem(filename: Option<&str>) -> &str {
    let name = filename.unwrap_or("image");
    name.rsplit_once('.')
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
        .unwrap_or(name)
}

/// `<stem>-processed.<ext>` for results, the upload's own name for originals.
fn download_name(filename: Option<&str>, which: Blob, format: Option<Format>) -> String {
    let stem = stem(filename);
    let ext = format.map(Format::extension).unwrap_or("bin");
    match which {
        Blob::Original => filename
            .map(str::to_owned)
            .unwrap_or_else(|| format!("image.{ext}")),
        Blob::Processed => format!("{stem}-processed.{ext}"),
        Blob::Thumbnail => format!("{stem}-thumbnail.{ext}"),
    }
}

/// What RFC 5987 `filename*` escapes: everything but letters, digits and `-_.` (a subset of
/// its `attr-char`, so the value needs no quoting).
const RFC5987_ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `attachment` with an ASCII fallback and an RFC 5987 UTF-8 name, so no uploaded name can
/// inject a header (CR/LF), break the quoting, or carry a path.
pub(super) fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_. ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(name, RFC5987_ESCAPED);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processed_names_keep_the_stem_and_take_the_new_extension() {
        assert_eq!(
            download_name(Some("cat.jpg"), Blob::Processed, Some(Format::Webp)),
            "cat-processed.webp"
        );
        assert_eq!(
            download_name(None, Blob::Processed, Some(Format::Png)),
            "image-processed.png"
        );
        assert_eq!(
            download_name(Some("cat.jpg"), Blob::Original, Some(Format::Jpeg)),
            "cat.jpg"
        );
    }

    #[test]
    fn hostile_names_cannot_break_the_header() {
        let v = content_disposition("a\"b\r\nSet-Cookie: x=1;é.png");
        assert!(!v.contains('\r') && !v.contains('\n'));
        assert!(
            v.starts_with("attachment; filename=\"a_b__Set-Cookie_ x_1__.png\""),
            "{v}"
        );
        assert!(
            v.contains("filename*=UTF-8''a%22b%0D%0ASet-Cookie%3A%20x%3D1%3B%C3%A9.png"),
            "{v}"
        );
    }
}
