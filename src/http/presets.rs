//! Presets (SPEC "Variants, presets and signed delivery"): named pipelines.
//! `PUT /api/presets/{name}` creates (`201`) or replaces (`200`) one, `GET /api/presets` lists
//! them by name, `GET` and `DELETE /api/presets/{name}` read and remove one. Names are checked
//! by [`PresetName::parse`] and pipelines by [`PresetPipeline::from_json`]: a bad one is a `400`
//! naming the parameter, never a `500`.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::dto::{PresetList, PresetObject, PresetPipelineBody};
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::state::AppState;
use crate::db::presets;
use crate::presets::{PresetName, PresetPipeline};

/// Largest preset body: the small-body limit every route without an upload has
/// (`limits::MAX_SMALL_BODY_BYTES`, 16 KiB); a pipeline of many steps is a few KiB.
pub const MAX_PRESET_BODY_BYTES: u64 = super::limits::MAX_SMALL_BODY_BYTES;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one, put, delete))
}

/// The `{name}` of a preset route, checked. Anything [`PresetName::parse`] refuses (and a
/// segment that does not percent-decode to UTF-8) is a `400` naming `name`. (The empty name,
/// `/api/presets/`, matches no route: the router's `404`. Every route is a documented one, so
/// it gets no route of its own.)
pub struct PresetPath(pub PresetName);

impl<S: Send + Sync> FromRequestParts<S> for PresetPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::bad(
                    "name",
                    "a preset name uses only a-z, 0-9, '_' and '-' (not UTF-8)",
                )
            })?;
        PresetName::parse(&raw)
            .map(PresetPath)
            .map_err(|message| ApiError::bad("name", message))
    }
}

/// `404` for a preset that does not exist (the shared `NotFound` speaks of images).
fn no_such_preset(name: &PresetName) -> Response {
    let error = ErrorDetail {
        code: "not_found".into(),
        message: format!("no preset named {name}"),
        param: None,
        status: None,
    };
    (StatusCode::NOT_FOUND, Json(ErrorBody { error })).into_response()
}

/// `GET /api/presets`: every preset, ordered by name.
#[utoipa::path(get, path = "/api/presets", tag = "presets", operation_id = "list_presets",
    responses(
        (status = 200, description = "every preset, by name", body = PresetList),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn list(State(state): State<AppState>) -> Result<Json<PresetList>, ApiError> {
    let client = state.pool.get().await?;
    let rows = presets::list_presets(&client).await?;
    Ok(Json(PresetList {
        presets: rows.into_iter().map(PresetObject::from).collect(),
    }))
}

/// `GET /api/presets/{name}`.
#[utoipa::path(get, path = "/api/presets/{name}", tag = "presets", operation_id = "get_preset",
    params(("name" = String, Path, description = "preset name, `[a-z0-9_-]{1,64}`",
        pattern = "^[a-z0-9_-]{1,64}$", min_length = 1, max_length = 64)),
    responses(
        (status = 200, description = "the preset", body = PresetObject),
        (status = 400, description = "bad name; `param` is `name`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no preset of this name (or the empty name: no such route)", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn get_one(State(state): State<AppState>, PresetPath(name): PresetPath) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    Ok(match presets::get_preset(&client, &name).await? {
        Some(record) => Json(PresetObject::from(record)).into_response(),
        None => no_such_preset(&name),
    })
}

/// `PUT /api/presets/{name}`: creates or replaces a preset. Variants already made with it stay
/// as they are; the ones made from now on use the new pipeline.
#[utoipa::path(put, path = "/api/presets/{name}", tag = "presets", operation_id = "put_preset",
    params(("name" = String, Path, description = "preset name, `[a-z0-9_-]{1,64}`",
        pattern = "^[a-z0-9_-]{1,64}$", min_length = 1, max_length = 64)),
    request_body(content = PresetPipelineBody, content_type = "application/json",
        description = "the pipeline, e.g. `{\"width\": 320, \"height\": 320, \"fit\": \"cover\", \"format\": \"auto\"}`"),
    responses(
        (status = 201, description = "created", body = PresetObject,
            headers(("Location" = String, description = "the preset's URL"))),
        (status = 200, description = "replaced", body = PresetObject),
        (status = 400, description = "bad name, body or pipeline value; `param` names it (`name`, `body`, \
                                      `width`, `steps[0].width`, ...)", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "the empty name (`/api/presets/`): no such route", body = ErrorBody),
        (status = 413, description = "body over 16 KiB", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn put(
    State(state): State<AppState>,
    PresetPath(name): PresetPath,
    PresetBody(preset): PresetBody,
) -> Result<Response, ApiError> {
    super::upload::check_watermarks(&state, &preset.pipeline).await?;
    let stored = preset.to_json().map_err(|e| ApiError::Internal(e.into()))?;
    let client = state.pool.get().await?;
    let (record, created) = presets::upsert_preset(&client, &name, &stored).await?;
    tracing::info!(preset = %name, created, "preset stored");
    let body = Json(PresetObject::from(record));
    Ok(if created {
        let location = PresetObject::location(name.as_str());
        (StatusCode::CREATED, [(header::LOCATION, location)], body).into_response()
    } else {
        body.into_response()
    })
}

/// `DELETE /api/presets/{name}`. Completed variants of it are kept (and served); unfinished
/// ones end `failed` (`preset_deleted`).
#[utoipa::path(delete, path = "/api/presets/{name}", tag = "presets", operation_id = "delete_preset",
    params(("name" = String, Path, description = "preset name, `[a-z0-9_-]{1,64}`",
        pattern = "^[a-z0-9_-]{1,64}$", min_length = 1, max_length = 64)),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "bad name; `param` is `name`", body = ErrorBody),
        (status = 401, description = "missing or wrong token", body = ErrorBody),
        (status = 404, description = "no preset of this name (or the empty name: no such route)", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
async fn delete(State(state): State<AppState>, PresetPath(name): PresetPath) -> Result<Response, ApiError> {
    let client = state.pool.get().await?;
    Ok(if presets::delete_preset(&client, &name).await? {
        tracing::info!(preset = %name, "preset deleted");
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_such_preset(&name)
    })
}

/// A preset's pipeline, read from a JSON object body of at most [`MAX_PRESET_BODY_BYTES`].
pub struct PresetBody(pub PresetPipeline);

impl<S: Send + Sync> FromRequest<S> for PresetBody {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, _: &S) -> Result<Self, ApiError> {
        let limit = MAX_PRESET_BODY_BYTES;
        let bytes = axum::body::to_bytes(request.into_body(), limit as usize)
            .await
            .map_err(|_| ApiError::BodyTooLarge { limit })?;
        parse_body(&bytes).map(PresetBody)
    }
}

fn parse_body(bytes: &[u8]) -> Result<PresetPipeline, ApiError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad("body", format!("not JSON: {e}")))?;
    let mut value = value;
    let Value::Object(fields) = &mut value else {
        return Err(ApiError::bad(
            "body",
            "expected a JSON object, the pipeline, such as {\"width\": 320, \"format\": \"auto\"}",
        ));
    };
    check_fields(fields)?;
    Ok(PresetPipeline::from_json(&value)?)
}

/// Every top-level field is a documented one (or `steps`), with the JSON type the document
/// gives it: the pipeline parser reads flat fields from text and would take `"width": "200"`
/// or `"grayscale": 1`, which the document says are not pipelines. An integer written with a
/// fraction of zero (`80.0`) is an integer to JSON Schema, and is read as one.
fn check_fields(fields: &mut serde_json::Map<String, Value>) -> Result<(), ApiError> {
    let types = PresetPipelineBody::field_types();
    for (key, value) in fields.iter_mut() {
        if key == "steps" {
            continue;
        }
        let Some(kind) = types.get(key) else {
            let key: String = key.chars().take(64).collect();
            return Err(ApiError::bad(
                &key,
                "unknown field: a pipeline takes the operation fields (width, height, fit, ...), \
                 `steps`, format, quality, frames and auto_orient",
            ));
        };
        if kind == "integer" {
            if let Some(whole) = whole_number(value) {
                *value = Value::from(whole);
            }
        }
        let fits = match (kind.as_str(), &*value) {
            ("boolean", Value::Bool(_)) | ("string", Value::String(_)) | ("number", Value::Number(_)) => true,
            ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        if !fits {
            let article = if kind == "integer" { "an" } else { "a" };
            return Err(ApiError::bad(
                key,
                format!("expected {article} {kind}, not {}", json_kind(value)),
            ));
        }
    }
    Ok(())
}

/// `80.0` as `80`; `None` for anything else (a fraction, a value past `i64`, not a number).
fn whole_number(value: &Value) -> Option<i64> {
    let f = value.as_f64().filter(|_| value.is_f64())?;
    // Exactly representable and in range: |f| < 2^63.
    (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(result: Result<PresetPipeline, ApiError>) -> String {
        match result {
            Err(ApiError::BadParameter { param, .. }) => param,
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn bodies_are_objects_and_bad_values_are_named() {
        assert_eq!(param_of(parse_body(b"")), "body");
        assert_eq!(param_of(parse_body(b"{")), "body");
        assert_eq!(param_of(parse_body(b"[]")), "body");
        assert_eq!(param_of(parse_body(b"\"thumb\"")), "body");
        assert_eq!(param_of(parse_body(b"null")), "body");
        assert_eq!(param_of(parse_body(br#"{"format": "bogus"}"#)), "format");
        assert_eq!(param_of(parse_body(br#"{"width": 0}"#)), "width");
        assert!(
            param_of(parse_body(br#"{"steps": [{"op": "resize", "width": -1}]}"#)).starts_with("steps[0]")
        );
        assert_eq!(param_of(parse_body(br#"{"width": "200"}"#)), "width");
        assert_eq!(param_of(parse_body(br#"{"width": 2.5}"#)), "width");
        assert_eq!(param_of(parse_body(br#"{"width": 1e300}"#)), "width");
        let whole =
            parse_body(br#"{"quality": 81.0, "format": "webp", "width": 2e2}"#).expect("whole numbers");
        assert_eq!(whole.pipeline.quality, Some(81));
        assert_eq!(
            param_of(parse_body(br#"{"grayscale": 1, "width": 9}"#)),
            "grayscale"
        );
        assert_eq!(param_of(parse_body(br#"{"format": null}"#)), "format");
        assert_eq!(param_of(parse_body(br#"{"quality": "80"}"#)), "quality");
        assert_eq!(param_of(parse_body(br#"{"colour": "red"}"#)), "colour");
        assert!(parse_body(br#"{"blur": 2, "sharpen": 1.5, "upscale": true, "width": 9}"#).is_ok());
        assert!(parse_body(br#"{"steps": [{"op": "grayscale"}], "quality": 80, "format": "webp"}"#).is_ok());
        let auto = parse_body(br#"{"width": 200, "format": "auto"}"#).expect("auto");
        assert!(auto.auto_format);
    }

    const NAME_PATTERN: &str = "^[a-z0-9_-]{1,64}$";

    /// The pattern in the attributes is a literal (attributes cannot name constants): it must be
    /// the parser's rule.
    #[test]
    fn the_documented_name_is_the_parsers() {
        assert_eq!(
            NAME_PATTERN,
            format!("^[a-z0-9_-]{{1,{}}}$", crate::presets::MAX_NAME_LEN)
        );
        let doc = serde_json::to_value(crate::http::document()).expect("document as JSON");
        let item = &doc["paths"]["/api/presets/{name}"];
        for method in ["get", "put", "delete"] {
            let param = &item[method]["parameters"][0];
            assert_eq!(param["name"], "name", "{method}");
            assert_eq!(param["schema"]["pattern"], NAME_PATTERN, "{method}");
            assert_eq!(
                param["schema"]["maxLength"],
                crate::presets::MAX_NAME_LEN,
                "{method}"
            );
        }
        // Operation ids are the document's keys for clients: the handlers' names (`list`,
        // `delete`) are taken by the image routes.
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item.as_object())
            .flat_map(|item| item.values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        for id in ["list_presets", "get_preset", "put_preset", "delete_preset"] {
            assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{id}");
        }
    }
}
