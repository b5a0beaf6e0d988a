//! Extractors: every value a handler takes from a path, a query string or headers, parsed into
//! a type once, here. Each rejection is an [`ApiError`], so a malformed request gets the same
//! JSON error as any other (axum's own extractors answer some in plain text).

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use utoipa::IntoParams;
use uuid::Uuid;

use super::dto::Cursor;
use super::error::ApiError;
use crate::states::JobStatus;

/// The `{id}` of an image route. A malformed id (not a UUID, not UTF-8) answers like an
/// unknown one: `404`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ImageId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        Uuid::parse_str(&raw).map(ImageId).map_err(|_| ApiError::NotFound)
    }
}

/// The `{*path}` of the UI's asset route. A path that does not decode (e.g. `%FF`) is simply
/// no such file: `404`.
#[derive(Debug, Clone)]
pub struct AssetPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for AssetPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::RouteNotFound)?;
        Ok(AssetPath(raw))
    }
}

/// The query string as `(name, value)` pairs, percent-decoded (invalid UTF-8 is replaced, so
/// this never fails). Typed parameters below are read from it.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: Option<&str>) -> QueryParams {
        QueryParams(
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The one value of `name`; absent or empty is `None`, and a repeated name is a `400`
    /// naming it (which of two values was meant cannot be guessed).
    pub fn single(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (Some(_), Some(_)) => Err(ApiError::bad(name, "given more than once")),
            (Some(v), None) if !v.is_empty() => Ok(Some(v)),
            _ => Ok(None),
        }
    }

    /// Every pair, in order.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(QueryParams::parse(parts.uri.query()))
    }
}

/// Longest `?wait=` a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// `?wait=N`: how long a status read may be held while the job is pending or processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Seconds (0–60, fractions allowed): while pending or processing, hold the answer until
    /// the status changes. Empty means 0.
    #[param(value_type = Option<f64>, minimum = 0, maximum = 60)]
    pub wait: Duration,
}

impl Wait {
    fn from_params(q: &QueryParams) -> Result<Wait, ApiError> {
        let Some(raw) = q.single("wait")? else {
            return Ok(Wait::default());
        };
        let secs: f64 = raw
            .parse()
            .map_err(|_| ApiError::bad("wait", "must be a number of seconds"))?;
        if !(0.0..=MAX_WAIT.as_secs_f64()).contains(&secs) {
            return Err(ApiError::bad(
                "wait",
                format!("must be between 0 and {}", MAX_WAIT.as_secs()),
            ));
        }
        Ok(Wait {
            wait: Duration::from_secs_f64(secs),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Wait {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Wait::from_params(&QueryParams::parse(parts.uri.query()))
    }
}

/// Most a page can hold.
pub const MAX_PAGE: i64 = 200;
/// A page's size when `limit` is not given.
pub const DEFAULT_PAGE: i64 = 50;

/// The filters and keyset cursor of `GET /api/images`. An empty value is the same as none.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only images with this status.
    #[param(value_type = Option<String>, pattern = "^(pending|processing|completed|failed|cancelled)?$")]
    pub status: Option<JobStatus>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    pub limit: i64,
    /// The `next` cursor of the previous page.
    #[param(value_type = Option<String>, pattern = "^([0-9]{1,16}_[0-9a-f]{32})?$")]
    pub before: Option<Cursor>,
}

impl ListParams {
    fn from_params(q: &QueryParams) -> Result<ListParams, ApiError> {
        let status = q
            .single("status")?
            .map(|s| {
                s.parse::<JobStatus>()
                    .map_err(|_| ApiError::bad("status", format!("must be {}", JobStatus::choices())))
            })
            .transpose()?;
        let limit = match q.single("limit")? {
            None => DEFAULT_PAGE,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| ApiError::bad("limit", format!("must be between 1 and {MAX_PAGE}")))?,
        };
        let before = q
            .single("before")?
            .map(|c| {
                c.parse::<Cursor>()
                    .map_err(|_| ApiError::bad("before", "not a cursor from `next`"))
            })
            .transpose()?;
        Ok(ListParams {
            status,
            limit,
            before,
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        ListParams::from_params(&QueryParams::parse(parts.uri.query()))
    }
}

/// The request's declared `Content-Length`, when it has a valid one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// The request's `Content-Type`, lower-cased (empty when absent or not ASCII).
pub fn content_type(headers: &HeaderMap) -> Cow<'static, str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| Cow::Owned(v.to_ascii_lowercase()))
        .unwrap_or(Cow::Borrowed(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> QueryParams {
        QueryParams::parse(Some(s))
    }

    fn param_of(e: ApiError) -> String {
        match e {
            ApiError::BadParameter { param, .. } => param,
            other => panic!("not a bad parameter: {other:?}"),
        }
    }

    #[test]
    fn wait_is_bounded_and_single() {
        assert_eq!(Wait::from_params(&q("")).ok(), Some(Wait::default()));
        assert_eq!(Wait::from_params(&q("wait=")).ok(), Some(Wait::default()));
        assert_eq!(
            Wait::from_params(&q("wait=1.5")).ok().map(|w| w.wait),
            Some(Duration::from_millis(1500))
        );
        for bad in ["wait=-1", "wait=61", "wait=NaN", "wait=x", "wait=1&wait=2"] {
            let e = Wait::from_params(&q(bad)).expect_err(bad);
            assert_eq!(param_of(e), "wait", "{bad}");
        }
    }

    #[test]
    fn list_parameters_name_what_is_wrong() {
        let p = ListParams::from_params(&q("status=failed&limit=7")).expect("valid");
        assert_eq!((p.status, p.limit), (Some(JobStatus::Failed), 7));
        let p = ListParams::from_params(&q("status=&limit=&before=")).expect("empty is absent");
        assert_eq!(
            (p.status, p.limit, p.before.is_none()),
            (None, DEFAULT_PAGE, true)
        );
        for (bad, param) in [
            ("status=bogus", "status"),
            ("status=failed&status=pending", "status"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=1e3", "limit"),
            ("before=xyz", "before"),
        ] {
            let e = ListParams::from_params(&q(bad)).expect_err(bad);
            assert_eq!(param_of(e), param, "{bad}");
        }
    }

    /// Attributes cannot name constants: the documented grammars are checked here.
    #[test]
    fn documented_patterns_match_the_parsers() {
        let doc = ListParams::into_params(|| None);
        let pattern = |name: &str| {
            let p = doc.iter().find(|p| p.name == name).expect("documented");
            serde_json::to_value(&p.schema).expect("schema")["pattern"]
                .as_str()
                .map(str::to_owned)
        };
        // The grammar `Cursor::from_str` enforces (its tests try each way out of it).
        assert_eq!(
            pattern("before").as_deref(),
            Some("^([0-9]{1,16}_[0-9a-f]{32})?$")
        );
        let statuses: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(pattern("status"), Some(format!("^({})?$", statuses.join("|"))));
    }

    #[test]
    fn undecodable_query_bytes_never_fail_the_parse() {
        let p = q("status=%FF%FE&x=%zz");
        assert!(p.single("status").expect("single").is_some());
    }
}
