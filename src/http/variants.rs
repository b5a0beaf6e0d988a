//! Variants over HTTP (SPEC "Variants, presets and signed delivery"): an image processed with
//! a preset, made by the workers as a job of its own, asked for by the API
//! (`GET /api/images/{id}/variants/{preset}`, behind the token) or by a signed public URL
//! (`GET /v/{sig}/{id}/{preset}`, for pages and CDNs), and `POST /api/images/{id}/signed-url`.
//!
//! A variant not made yet is queued by the first request for it. Both routes can hold the
//! request until it is made: the API's with `?wait=N`, the signed one always (up to 30 s, so an
//! `<img>` gets its bytes on first load).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::downloads;
use super::dto::{Binary, SignedUrl, SignedUrlRequest, VariantObject, VariantStatus};
use super::error::{ApiError, ErrorBody};
use super::extract::{ImageId, Wait};
use super::state::AppState;
use crate::db::variants::{self, VariantLookup, VariantRecord};
use crate::imaging::Format;
use crate::presets::{self, PresetName, VariantFormat};
use crate::states::JobStatus;

/// How long a signed URL's first request waits for its variant to be made.
pub const SIGNED_WAIT: Duration = Duration::from_secs(30);

/// The largest `signed-url` request body.
const MAX_SIGNED_URL_BODY: u64 = 4096;

/// Routes behind the bearer token.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(variant))
        .routes(routes!(signed_url))
}

/// The signed public route: no token, the signature is the permission.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signed))
}

/// Which route is answering: what it may cache and how it says "not yet".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Api,
    Signed,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Api => "api",
            Route::Signed => "signed",
        }
    }
}

/// `{id}` and `{preset}` of the API's variant route: a malformed id is an unknown image (`404`),
/// a malformed preset name a `400` naming `preset`.
struct VariantPath {
    id: Uuid,
    preset: PresetName,
}

impl<S: Send + Sync> FromRequestParts<S> for VariantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((id, preset)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
        let preset = PresetName::parse(&preset).map_err(|e| ApiError::bad("preset", e))?;
        Ok(VariantPath { id, preset })
    }
}

#[utoipa::path(get, path = "/api/images/{id}/variants/{preset}", tag = "variants",
    params(
        ("id" = String, Path, description = "image id (UUID)"),
        ("preset" = String, Path, pattern = "^[a-z0-9_-]{1,64}$", description = "preset name"),
        Wait,
        ("Accept" = Option<String>, Header, description = "for a `format: auto` preset: `image/avif` or \
            `image/webp` named explicitly picks that format; anything else gets JPEG (PNG with alpha)"),
        ("If-None-Match" = Option<String>, Header, description = "an `ETag` from an earlier download"),
    ),
    responses(
        (status = 200, description = "the variant's bytes", body = Binary, content_type = "image/*",
            headers(
                ("ETag" = String, description = "strong; changes when the variant is made again"),
                ("Content-Disposition" = String, description = "`attachment; filename=\"<stem>-<preset>.<ext>\"`"),
                ("Vary" = String, description = "`Accept`, for a `format: auto` preset"),
            )),
        (status = 202, description = "not made yet: queued (now, if this was the first request) or being made; \
            `?wait=N` holds the answer until it is", body = VariantStatus),
        (status = 304, description = "unchanged since the `If-None-Match` tag"),
        (status = 400, description = "bad preset name or `wait`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown image, or no preset of that name (and no variant made with it)",
            body = ErrorBody),
        (status = 409, description = "the image failed or was cancelled and this variant was never made: \
            retry the image first", body = ErrorBody),
        (status = 422, description = "the variant failed (`variant_failed`); the message says why", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn variant(
    State(state): State<AppState>,
    VariantPath { id, preset }: VariantPath,
    Wait { wait }: Wait,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(&state, id, &preset, &headers, wait, Route::Api).await
}

#[utoipa::path(get, path = "/v/{sig}/{id}/{preset}", tag = "variants",
    params(
        ("sig" = String, Path, description = "unpadded base64url of HMAC-SHA256(URL_SIGNING_KEY, \"{id}/{preset}\")"),
        ("id" = String, Path, description = "image id (UUID, lower-case with hyphens, as signed)"),
        ("preset" = String, Path, pattern = "^[a-z0-9_-]{1,64}$", description = "preset name"),
        ("Accept" = Option<String>, Header, description = "negotiates a `format: auto` preset"),
        ("If-None-Match" = Option<String>, Header, description = "an `ETag` from an earlier answer"),
    ),
    responses(
        (status = 200, description = "the variant's bytes, cacheable for a year (`immutable`)", body = Binary,
            content_type = "image/*",
            headers(
                ("Cache-Control" = String, description = "`public, max-age=31536000, immutable`"),
                ("ETag" = String, description = "strong"),
                ("Vary" = String, description = "`Accept`, for a `format: auto` preset"),
            )),
        (status = 304, description = "unchanged since the `If-None-Match` tag"),
        (status = 403, description = "the signature does not match", body = ErrorBody),
        (status = 404, description = "signed URLs are off (no `URL_SIGNING_KEY`), or no such image or preset",
            body = ErrorBody),
        (status = 409, description = "the image failed or was cancelled", body = ErrorBody),
        (status = 422, description = "the variant failed", body = ErrorBody),
        (status = 503, description = "not made within 30 s (`Retry-After`), or database unavailable", body = ErrorBody),
    ))]
async fn signed(
    State(state): State<AppState>,
    Path((sig, id, preset)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(key) = state.config.url_signing_key() else {
        return Err(signing_off());
    };
    // Nothing unsigned is looked up: a malformed id or name is a signature that cannot match.
    let parsed = Uuid::parse_str(&id)
        .ok()
        .filter(|u| u.hyphenated().to_string() == id)
        .zip(PresetName::parse(&preset).ok());
    let Some((id, preset)) =
        parsed.filter(|(id, preset)| presets::verify_url_signature(key, *id, preset.as_str(), &sig))
    else {
        crate::metrics::variant_request("-", Route::Signed.label(), "refused");
        return Err(ApiError::Forbidden(
            "the signature does not match this image and preset".into(),
        ));
    };
    serve(&state, id, &preset, &headers, SIGNED_WAIT, Route::Signed).await
}

#[utoipa::path(post, path = "/api/images/{id}/signed-url", tag = "variants",
    params(("id" = String, Path, description = "image id (UUID)")),
    request_body(content = SignedUrlRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "the signed path (relative to this service)", body = SignedUrl),
        (status = 400, description = "bad body or preset name; `param` names it", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "unknown image or preset, or signed URLs are off (no `URL_SIGNING_KEY`)",
            body = ErrorBody),
        (status = 413, description = "body over 4 KiB", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn signed_url(
    State(state): State<AppState>,
    ImageId(id): ImageId,
    SignedUrlBody(preset): SignedUrlBody,
) -> Result<Json<SignedUrl>, ApiError> {
    let Some(key) = state.config.url_signing_key() else {
        return Err(signing_off());
    };
    let client = state.pool.get().await?;
    let lookup = variants::get_variant(&client, id, preset.as_str(), VariantFormat::Own)
        .await?
        .ok_or(ApiError::NotFound)?;
    if lookup.preset_pipeline.is_none() && lookup.variant.is_none() {
        return Err(unknown_preset(&preset));
    }
    Ok(Json(SignedUrl {
        url: presets::signed_path(key, id, preset.as_str()),
    }))
}

/// The `{"preset": "..."}` body of `signed-url`.
struct SignedUrlBody(PresetName);

impl<S: Send + Sync> FromRequest<S> for SignedUrlBody {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _: &S) -> Result<Self, ApiError> {
        let limit = MAX_SIGNED_URL_BODY;
        let bytes = axum::body::to_bytes(request.into_body(), limit as usize)
            .await
            .map_err(|_| ApiError::BodyTooLarge { limit })?;
        let value: Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(ApiError::bad(
                "body",
                "expected a JSON object such as {\"preset\": \"thumb\"}",
            ));
        };
        let preset = match map.remove("preset") {
            Some(Value::String(s)) => PresetName::parse(&s).map_err(|e| ApiError::bad("preset", e))?,
            Some(_) => return Err(ApiError::bad("preset", "must be a string")),
            None => return Err(ApiError::bad("preset", "is required")),
        };
        if let Some(key) = map.keys().next() {
            return Err(ApiError::bad(key, "unknown field (only `preset` is accepted)"));
        }
        Ok(SignedUrlBody(preset))
    }
}

/// Signed URLs without `URL_SIGNING_KEY`: `404`, saying why.
fn signing_off() -> ApiError {
    ApiError::Missing("signed URLs are off: the server has no URL_SIGNING_KEY".into())
}

fn unknown_preset(preset: &PresetName) -> ApiError {
    ApiError::Missing(format!("there is no preset named \"{preset}\""))
}

/// Whether a stored preset pipeline asks for `format: auto`.
fn is_auto(pipeline: Option<&Value>) -> bool {
    pipeline.and_then(|p| p.get("format")).and_then(Value::as_str) == Some("auto")
}

/// Looks the variant up, queues it when it was never asked for, waits up to `wait` for it to be
/// made, and answers with its bytes or its state.
async fn serve(
    state: &AppState,
    id: Uuid,
    preset: &PresetName,
    headers: &HeaderMap,
    wait: Duration,
    route: Route,
) -> Result<Response, ApiError> {
    // Subscribed before the first read, so a completion between the read and the wait is seen.
    let mut changes = state.events.subscribe();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (lookup, format) = look_up(state, id, preset, accept).await?;
    let auto = is_auto(lookup.preset_pipeline.as_ref());
    let record = match lookup.variant.clone() {
        Some(record) => record,
        None => {
            let record = queue(state, id, preset, format, &lookup).await?;
            crate::metrics::variant_request(preset.as_str(), route.label(), "queued");
            record
        }
    };
    let record = if record.status.is_active() && !wait.is_zero() {
        wait_for(state, &mut changes, id, preset, format, wait).await;
        look_up_format(state, id, preset, format)
            .await?
            .variant
            .ok_or(ApiError::NotFound)?
    } else {
        record
    };
    match record.status {
        JobStatus::Completed => bytes(state, id, preset, format, &lookup, headers, route, auto).await,
        JobStatus::Failed | JobStatus::Cancelled => {
            crate::metrics::variant_request(preset.as_str(), route.label(), "failed");
            Err(ApiError::Unprocessable {
                code: "variant_failed",
                message: format!(
                    "the variant \"{preset}\" {}: {} ({})",
                    record.status,
                    record.error.as_deref().unwrap_or("no reason recorded"),
                    record.error_code.as_deref().unwrap_or("unknown"),
                ),
            })
        }
        JobStatus::Pending | JobStatus::Processing => {
            crate::metrics::variant_request(preset.as_str(), route.label(), "pending");
            not_yet(id, preset, format, record, route)
        }
    }
}

/// The variant in the format this request gets: for a `format: auto` preset the one `Accept`
/// negotiates, else the preset's own.
async fn look_up(
    state: &AppState,
    id: Uuid,
    preset: &PresetName,
    accept: Option<&str>,
) -> Result<(VariantLookup, VariantFormat), ApiError> {
    let own = look_up_format(state, id, preset, VariantFormat::Own).await?;
    if !is_auto(own.preset_pipeline.as_ref()) {
        return Ok((own, VariantFormat::Own));
    }
    match VariantFormat::negotiate(accept) {
        VariantFormat::Own => Ok((own, VariantFormat::Own)),
        negotiated => Ok((look_up_format(state, id, preset, negotiated).await?, negotiated)),
    }
}

async fn look_up_format(
    state: &AppState,
    id: Uuid,
    preset: &PresetName,
    format: VariantFormat,
) -> Result<VariantLookup, ApiError> {
    let client = state.pool.get().await?;
    variants::get_variant(&client, id, preset.as_str(), format)
        .await?
        .ok_or(ApiError::NotFound)
}

/// Queues a variant asked for the first time, unless its preset or image says it never can be.
async fn queue(
    state: &AppState,
    id: Uuid,
    preset: &PresetName,
    format: VariantFormat,
    lookup: &VariantLookup,
) -> Result<VariantRecord, ApiError> {
    if lookup.preset_pipeline.is_none() {
        return Err(unknown_preset(preset));
    }
    if matches!(lookup.image_status, JobStatus::Failed | JobStatus::Cancelled) {
        return Err(ApiError::Conflict {
            message: format!(
                "the image is {}; retry it before asking for its variants",
                lookup.image_status
            ),
            status: lookup.image_status,
        });
    }
    let client = state.pool.get().await?;
    variants::queue_variants(&client, id, &[preset.as_str().to_owned()], format).await?;
    // After the (autocommitted) insert: wake the workers, as an upload does.
    if let Err(e) = variants::notify_variants(&client).await {
        tracing::warn!(error = %e, "could not wake the workers for a variant; the sweep will find it");
    }
    // Another request may have queued it a moment earlier: either way it is waiting now.
    Ok(variants::get_variant(&client, id, preset.as_str(), format)
        .await?
        .and_then(|l| l.variant)
        .unwrap_or(VariantRecord {
            status: JobStatus::Pending,
            content_type: None,
            bytes: None,
            width: None,
            height: None,
            error: None,
            error_code: None,
            claim_seq: 0,
            processed_at: None,
        }))
}

/// Waits until this variant finishes (or its image is deleted), `wait` at most.
async fn wait_for(
    state: &AppState,
    changes: &mut tokio::sync::broadcast::Receiver<super::events::StatusEvent>,
    id: Uuid,
    preset: &PresetName,
    format: VariantFormat,
    wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let change = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            change = tokio::time::timeout_at(deadline, changes.recv()) => change,
        };
        match change {
            Ok(Ok(e)) if e.id != id => continue,
            Ok(Ok(e)) if e.preset.is_none() => {
                if e.status == "deleted" {
                    return;
                }
            }
            Ok(Ok(e)) => {
                let ours = e.preset.as_deref() == Some(preset.as_str())
                    && e.format.as_deref().unwrap_or("") == format.as_str();
                if ours && matches!(e.status.as_str(), "completed" | "failed" | "cancelled") {
                    return;
                }
            }
            // Timed out, or lagged / closed: the caller reads the row again.
            Err(_) | Ok(Err(_)) => return,
        }
    }
}

/// A completed variant's bytes with its caching headers.
#[allow(clippy::too_many_arguments)]
async fn bytes(
    state: &AppState,
    id: Uuid,
    preset: &PresetName,
    format: VariantFormat,
    lookup: &VariantLookup,
    headers: &HeaderMap,
    route: Route,
    auto: bool,
) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    // Made again (a retry) between the two reads: its state is asked for once more.
    let Some((data, content_type, claim)) =
        variants::get_variant_data(&client, id, preset.as_str(), format).await?
    else {
        return Err(ApiError::NotReady {
            status: JobStatus::Pending,
        });
    };
    drop(client);
    let format_tag = match format {
        VariantFormat::Own => "o",
        other => other.as_str(),
    };
    let tag = format!("\"{}-{}-{}-{}\"", id.simple(), preset, format_tag, claim);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let image_format = content_type
        .as_deref()
        .and_then(|ct| ct.strip_prefix("image/"))
        .and_then(Format::from_name)
        .or_else(|| Format::sniff(&data));
    let mut response = if not_modified {
        crate::metrics::variant_request(preset.as_str(), route.label(), "not_modified");
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        crate::metrics::variant_request(preset.as_str(), route.label(), "served");
        let len = data.len();
        let mut r = data.into_response();
        let h = r.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                image_format
                    .map(Format::content_type)
                    .unwrap_or("application/octet-stream"),
            ),
        );
        let name = format!(
            "{}-{}.{}",
            downloads::stem(lookup.filename.as_deref()),
            preset,
            image_format.map(Format::extension).unwrap_or("bin")
        );
        let disposition = downloads::content_disposition(&name);
        // A signed URL is for pages: shown in place, downloaded under the same name.
        let disposition = match route {
            Route::Api => disposition,
            Route::Signed => disposition.replacen("attachment", "inline", 1),
        };
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        r
    };
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match route {
            Route::Api => "private, no-cache",
            Route::Signed => "public, max-age=31536000, immutable",
        }),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    if auto {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    Ok(response)
}

/// Not made yet: the API answers `202` with the variant's state; a signed URL `503` with
/// `Retry-After` (a CDN must not cache a placeholder).
fn not_yet(
    id: Uuid,
    preset: &PresetName,
    format: VariantFormat,
    record: VariantRecord,
    route: Route,
) -> Result<Response, ApiError> {
    let url = VariantObject::url(id, preset.as_str());
    let body = VariantStatus {
        id,
        preset: preset.as_str().to_owned(),
        format: (format != VariantFormat::Own).then(|| format.as_str().to_owned()),
        status: record.status,
        url: url.clone(),
    };
    match route {
        Route::Api => Ok((StatusCode::ACCEPTED, [(header::LOCATION, url)], Json(body)).into_response()),
        Route::Signed => {
            let mut r = ApiError::NotYetMade.into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(r)
        }
    }
}
