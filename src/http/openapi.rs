//! The OpenAPI 3 document at `GET /openapi.json`. Every route is registered through
//! `utoipa_axum::routes!` from its handler's `#[utoipa::path]`, so the router and this document
//! come from the same annotations and cannot drift; this module adds the shared schemas, the
//! bearer scheme, and marks the token-protected group.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, ErrorDetail};
use super::images::{ImageObject, Links, MediaObject};
use super::AppState;

/// The name of the bearer security scheme.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "image-processor",
        description = "Upload images, have them processed by worker replicas, download the results. \
                       Errors are always `{\"error\": {\"code\", \"message\", \"param\"?, \"status\"?}}`. \
                       With `API_TOKEN` set, every `/api` route and upload needs `Authorization: Bearer <token>`."
    ),
    components(schemas(ErrorBody, ErrorDetail, ImageObject, MediaObject, Links, ImageList, ImageBatch, UploadAnswer, Stats, StatusCounts, Probe)),
    tags(
        (name = "images", description = "Upload, status, list, retry, delete"),
        (name = "downloads", description = "Original, processed and thumbnail bytes"),
        (name = "events", description = "Live status changes"),
        (name = "legacy", description = "The original design's routes, kept for existing Postman collections"),
        (name = "operations", description = "Probes, metrics, this document, the web UI"),
    )
)]
struct ApiDoc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> Response {
    Json(document()).into_response()
}

/// The document, built once from the same route groups the router is built from.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let (protected, open) = super::route_groups();
        let mut protected = protected.into_openapi();
        for op in protected.paths.paths.values_mut().flat_map(operations_mut) {
            // The token is needed only when the server has `API_TOKEN` set: `{}` says so.
            op.security = Some(vec![
                SecurityRequirement::new(BEARER, Vec::<String>::new()),
                SecurityRequirement::default(),
            ]);
        }
        let mut doc = ApiDoc::openapi();
        doc.merge(protected);
        doc.merge(open.into_openapi());
        // The limits layer (`limits.rs`) answers these on every route.
        for op in doc.paths.paths.values_mut().flat_map(operations_mut) {
            for (status, description) in shared_refusals() {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(&description));
            }
        }
        doc.paths.paths = std::mem::take(&mut doc.paths.paths)
            .into_iter()
            .map(|(path, item)| (openapi_path(&path), item))
            .collect();
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some("one of the comma-separated `API_TOKEN` values"))
                        .build(),
                ),
            );
        }
        doc
    })
}

/// What the limits layer may answer on any route, with the error body.
fn shared_refusals() -> [(&'static str, String); 4] {
    use super::limits::{MAX_HEADER_BYTES, MAX_SMALL_BODY_BYTES, MAX_URI_BYTES, REQUEST_TIMEOUT};
    [
        (
            "408",
            format!(
                "not answered within the route's deadline ({} s; longer for uploads and `?wait=`): \
                 `request_timeout`",
                REQUEST_TIMEOUT.as_secs()
            ),
        ),
        (
            "413",
            format!(
                "a body over {MAX_SMALL_BODY_BYTES} bytes on a route that takes none: `payload_too_large`"
            ),
        ),
        ("414", format!("URL over {MAX_URI_BYTES} bytes: `uri_too_long`")),
        (
            "431",
            format!("headers over {MAX_HEADER_BYTES} bytes: `headers_too_large`"),
        ),
    ]
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// Every operation of a path item.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// An axum route template as an OpenAPI path: a catch-all `{*rest}` becomes `{rest}`.
pub fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// Raw bytes of an image.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Binary(#[allow(dead_code)] Vec<u8>);

/// A page of images, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageList {
    pub images: Vec<ImageObject>,
    /// Pass as `?before=` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// The answer to an upload of several files.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageBatch {
    pub images: Vec<ImageObject>,
}

/// The answer to an upload: the image object for one file, `{"images": [...]}` for several.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UploadAnswer {
    One(Box<ImageObject>),
    Several(ImageBatch),
}

/// Counts per status and recent throughput.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub counts: StatusCounts,
    /// `pending` + `processing`.
    pub queue_depth: i64,
    /// Images completed in the last 60 s.
    pub completed_last_minute: i64,
    pub max_upload_bytes: u64,
    pub max_pixels: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
}

/// A liveness or readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Probe {
    /// `ok`, `ready`, `schema_outdated`, `database_unavailable` or `database_timeout`.
    pub status: String,
    pub schema_version: Option<i64>,
    pub expected: Option<i64>,
    pub detail: Option<String>,
}

/// Output format.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatParam {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
    Avif,
}

/// How `width`/`height` fit the image.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FitParam {
    /// Keep the aspect ratio inside the box.
    Contain,
    /// Fill the box and centre-crop.
    Cover,
    /// Stretch to the box.
    Fill,
}

/// Mirror axis.
#[derive(Deserialize, ToSchema)]
pub enum FlipParam {
    #[serde(rename = "h")]
    H,
    #[serde(rename = "v")]
    V,
}

/// The flat operation fields, as query parameters or multipart fields, applied in this order.
/// No field at all: `DEFAULT_PIPELINE` (fit within 800×800, keep the format).
#[derive(Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Operations {
    /// Apply the EXIF orientation and strip metadata (default true).
    auto_orient: Option<bool>,
    /// `x,y,w,h` in pixels; must lie inside the image.
    #[schema(pattern = r"^\d+,\d+,\d+,\d+$")]
    #[param(pattern = r"^\d+,\d+,\d+,\d+$")]
    crop: Option<String>,
    /// Clockwise degrees: 90, 180 or 270.
    #[schema(minimum = 90, maximum = 270, multiple_of = 90)]
    #[param(minimum = 90, maximum = 270, multiple_of = 90)]
    rotate: Option<u16>,
    #[param(inline)]
    flip: Option<FlipParam>,
    /// Box width in pixels.
    #[schema(minimum = 1)]
    #[param(minimum = 1)]
    width: Option<u32>,
    /// Box height in pixels.
    #[schema(minimum = 1)]
    #[param(minimum = 1)]
    height: Option<u32>,
    #[param(inline)]
    fit: Option<FitParam>,
    /// Allow a result larger than the input (default false).
    upscale: Option<bool>,
    /// Drop colour.
    grayscale: Option<bool>,
    /// −100 (black) … 100 (white).
    #[schema(minimum = -100, maximum = 100)]
    #[param(minimum = -100, maximum = 100)]
    brightness: Option<i32>,
    /// −100 (flat grey) … 100.
    #[schema(minimum = -100, maximum = 100)]
    #[param(minimum = -100, maximum = 100)]
    contrast: Option<i32>,
    /// Gaussian blur sigma in pixels.
    #[schema(minimum = 0)]
    #[param(minimum = 0)]
    blur: Option<f32>,
    /// Unsharp-mask strength.
    #[schema(minimum = 0)]
    #[param(minimum = 0)]
    sharpen: Option<f32>,
    #[param(inline)]
    format: Option<FormatParam>,
    /// Encoder quality for JPEG, WebP and AVIF.
    #[schema(minimum = 1, maximum = 100)]
    #[param(minimum = 1, maximum = 100)]
    quality: Option<u8>,
}

/// A multipart upload: one or more `file` parts, plus either operation fields or `pipeline`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The image(s); repeat the part for several (at most 20).
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// The JSON pipeline form, e.g. `{"steps": [{"op": "resize", "width": 800}], "format": "webp"}`;
    /// instead of the operation fields.
    pipeline: Option<String>,
    #[serde(flatten)]
    operations: Operations,
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn operation_fields_match_the_pipeline_parser() {
        let schema = match Operations::schema() {
            RefOr::T(utoipa::openapi::Schema::Object(o)) => o,
            _ => panic!("Operations is not an object schema"),
        };
        let documented: Vec<&str> = schema.properties.keys().map(String::as_str).collect();
        let mut parsed: Vec<&str> = crate::imaging::FIELD_NAMES.to_vec();
        parsed.sort_unstable();
        let mut documented_sorted = documented.clone();
        documented_sorted.sort_unstable();
        assert_eq!(documented_sorted, parsed);
    }

    #[test]
    fn catch_all_routes_become_plain_parameters() {
        assert_eq!(openapi_path("/assets/{*path}"), "/assets/{path}");
        assert_eq!(openapi_path("/api/images/{id}"), "/api/images/{id}");
    }
}
