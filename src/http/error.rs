//! The HTTP error type: each variant maps to a status and a stable `code`. Internal causes are
//! logged here, once, and the client gets a clean sentence.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::imaging::{ImagingError, PipelineError};
use crate::states::JobStatus;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for machines (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: `invalid_parameter`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `not_ready`, `conflict`, `payload_too_large`, `uri_too_long`,
    /// `headers_too_large`, `request_timeout`,
    /// `unsupported_media_type`, `overloaded`, `database_unavailable`, `internal`, or a
    /// `422` imaging code (`image_too_large`, `corrupt_image`, ...) or `variant_failed`.
    #[schema(example = "invalid_parameter")]
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// The offending parameter, on `400`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The image's current status, on `409`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid `{param}`: {message}")]
    BadParameter { param: String, message: String },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("no image with this id")]
    NotFound,
    /// A `404` that says what is missing (a preset, signed URLs being off).
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("no such route")]
    RouteNotFound,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the image is {status}, not completed")]
    NotReady { status: JobStatus },
    #[error("{message}")]
    Conflict { message: String, status: JobStatus },
    #[error("file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("request body is larger than the limit of {limit} bytes for this route")]
    BodyTooLarge { limit: u64 },
    #[error("URL is longer than the limit of {limit} bytes")]
    UriTooLong { limit: usize },
    #[error("request headers are larger than the limit of {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("request not completed within {secs} s")]
    Timeout { secs: u64 },
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("too many uploads in progress; try again shortly")]
    Busy,
    #[error("the variant is not made yet; try again shortly")]
    NotYetMade,
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad(param: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            param: param.to_owned(),
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound | ApiError::RouteNotFound | ApiError::Missing(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::NotReady { .. } => (StatusCode::CONFLICT, "not_ready"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge { .. } | ApiError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::UriTooLong { .. } => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::HeadersTooLarge { .. } => {
                (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large")
            }
            ApiError::Timeout { .. } => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::UnsupportedMedia(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::NotYetMade => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            ApiError::Unavailable => tracing::warn!("database unavailable"),
            _ => tracing::debug!(code, error = %self, "request refused"),
        }
        let mut error = ErrorDetail {
            code: code.to_owned(),
            message: self.to_string(),
            param: None,
            status: None,
        };
        match &self {
            ApiError::BadParameter { param, .. } => error.param = Some(param.clone()),
            ApiError::NotReady { status } | ApiError::Conflict { status, .. } => error.status = Some(*status),
            _ => {}
        }
        let mut response = (status, Json(ErrorBody { error })).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Busy | ApiError::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"image-processor\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                ApiError::Unavailable
            }
            DbError::Query(e) => ApiError::Internal(e.into()),
            DbError::Encode(detail) => ApiError::Internal(anyhow::anyhow!(detail)),
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::from(DbError::from(e))
    }
}

impl From<PipelineError> for ApiError {
    fn from(e: PipelineError) -> Self {
        ApiError::BadParameter {
            param: e.param,
            message: e.message,
        }
    }
}

impl From<ImagingError> for ApiError {
    fn from(e: ImagingError) -> Self {
        match e {
            ImagingError::Unsupported(detail) => ApiError::UnsupportedMedia(format!(
                "not an image in a format we read (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/HEIF, AVIF, JPEG XL): {detail}"
            )),
            other => ApiError::Unprocessable {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}
