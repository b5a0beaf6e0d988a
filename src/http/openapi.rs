//! The OpenAPI 3 document at `GET /openapi.json`, assembled here and nowhere else. Every route is
//! registered through `utoipa_axum::routes!` from its handler's `#[utoipa::path]`, so the router
//! and this document come from the same annotations and cannot drift; this module adds the
//! shared schemas (the types themselves live in `dto`), the bearer scheme, and marks the
//! token-protected group.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::OpenApi;

use super::dto::{
    AttemptObject, DeliveryList, DeliveryObject, ExifFacts, HealthAnswer, HistoryMinute, ImageBatch,
    ImageList, ImageObject, Links, MediaObject, OriginalObject, SignedUrl, SignedUrlRequest, Stats,
    StatusCounts, UploadAnswer, VariantObject, VariantStatus, WebhookEvent,
};
use super::error::{ErrorBody, ErrorDetail};
use super::legacy::operations_mut;
use crate::states::JobStatus;

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
    components(schemas(ErrorBody, ErrorDetail, ImageObject, MediaObject, OriginalObject, ExifFacts, Links, ImageList,
        ImageBatch, UploadAnswer, Stats, StatusCounts, HistoryMinute, HealthAnswer, JobStatus, WebhookEvent,
        DeliveryList, DeliveryObject, AttemptObject, VariantObject, VariantStatus, SignedUrl, SignedUrlRequest)),
    tags(
        (name = "images", description = "Upload, status, list, cancel, retry, delete (one or in bulk), stats"),
        (name = "downloads", description = "Original, processed and thumbnail bytes"),
        (name = "events", description = "Live status changes"),
        (name = "presets", description = "Named pipelines, managed over HTTP or by SQL"),
        (name = "variants", description = "An image processed with a preset: made on upload, on first request \
                                           or by SQL; served to the API and by signed public URLs"),
        (name = "legacy", description = "The original design's routes, kept for existing Postman collections"),
        (name = "operations", description = "Probes, metrics, this document, the web UI"),
    )
)]
struct ApiDoc;

/// The document for the two route groups of `http::route_groups`: `protected` (behind
/// `API_TOKEN`) and `open`.
pub fn assemble(protected: Document, open: Document) -> Document {
    let mut protected = protected;
    for op in protected.paths.paths.values_mut().flat_map(operations_mut) {
        // The token is needed only when the server has `API_TOKEN` set: `{}` says so.
        op.security = Some(vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::default(),
        ]);
    }
    let mut doc = ApiDoc::openapi();
    doc.merge(protected);
    doc.merge(open);
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

/// An axum route template as an OpenAPI path: a catch-all `{*rest}` becomes `{rest}`.
pub fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `$ref` to a schema that is not in `components` passes the validator but breaks every
    /// client generator (and schemathesis).
    #[test]
    fn every_reference_resolves() {
        fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(crate::http::document()).expect("document as JSON");
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .expect("a schema reference");
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
    }

    #[test]
    fn catch_all_routes_become_plain_parameters() {
        assert_eq!(openapi_path("/assets/{*path}"), "/assets/{path}");
        assert_eq!(openapi_path("/api/images/{id}"), "/api/images/{id}");
    }
}
