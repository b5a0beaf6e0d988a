//! The web UI: files from `ui/`, embedded in the binary at build time, under a strict CSP.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::AssetPath;
use super::state::AppState;

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// No inline script or style, nothing from other origins, no framing.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(index)).routes(routes!(asset))
}

/// The web UI.
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "the page", content_type = "text/html", body = String)))]
async fn index() -> Response {
    serve("index.html")
}

/// The UI's scripts, styles and icons.
#[utoipa::path(get, path = "/assets/{*path}", tag = "operations",
    params(("path" = String, Path, description = "a file of the UI")),
    responses(
        (status = 200, description = "the file", content_type = "*/*", body = String),
        (status = 404, description = "no such file", body = ErrorBody),
    ))]
async fn asset(AssetPath(path): AssetPath) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::RouteNotFound.into_response();
    };
    let mime = file.metadata.mimetype().to_owned();
    let mut response = file.data.into_owned().into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
