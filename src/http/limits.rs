//! Request limits every route shares: URL and header size, a body cap on routes that take no
//! upload, and a per-request deadline sized to the route (long-polls and slow uploads get
//! longer; the SSE stream is not held to it, since its headers are answered at once).
//!
//! hyper refuses what is far larger first (about 400 KiB of headers, 100 headers) with a bare
//! `431`; these tighter limits answer with the JSON error every client can read.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::extract::{content_length, MAX_WAIT};

/// Longest path plus query string.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes of header names and values together.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Largest body a route that takes no upload accepts (none of them reads one).
pub const MAX_SMALL_BODY_BYTES: u64 = 16 * 1024;
/// Deadline for an ordinary request to be answered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for an upload: 25 MiB at 512 kbit/s takes about 7 minutes.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Refuses oversized URLs, headers and bodies, then answers within the route's deadline.
pub async fn enforce(request: Request, next: Next) -> Result<Response, ApiError> {
    let uri_len = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong { limit: MAX_URI_BYTES });
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    if let Some(limit) = body_limit(request.method(), request.uri().path()) {
        let declared = content_length(request.headers());
        if declared.is_some_and(|n| n > limit) {
            return Err(ApiError::BodyTooLarge { limit });
        }
    }
    let deadline = deadline_for(request.method(), request.uri());
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => Ok(response),
        Err(_) => Err(ApiError::Timeout {
            secs: deadline.as_secs(),
        }),
    }
}

/// Error answers to requests that carry a body say `Connection: close`.
///
/// Such an answer may come before the body was read (the 21st file of an upload, a `413`, a
/// `401`). hyper cannot reuse a connection with unread body bytes on it and drops it after the
/// answer, so a client that kept it alive and sent its next request on it saw that request
/// fail ("connection aborted"). Told to close, the client opens a new connection instead.
/// Errors are rare enough that the extra connection costs nothing.
pub async fn close_after_error_with_body(request: Request, next: Next) -> Response {
    let has_body = content_length(request.headers()).is_some_and(|n| n > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    let mut response = next.run(request).await;
    let status = response.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// How long a request may take to be answered (its response head; a body streamed after that,
/// like the SSE stream or a download, is not cut).
fn deadline_for(method: &Method, uri: &Uri) -> Duration {
    if is_upload(method, uri.path()) {
        UPLOAD_TIMEOUT
    } else if method == Method::GET && has_wait(uri.query()) {
        MAX_WAIT + REQUEST_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    }
}

/// The largest body a route accepts, checked on the declared length before the handler runs;
/// `None` for uploads (their own limits apply as the parts stream in). The bulk routes read a
/// filter with up to 10 000 ids, and cap the bytes they read themselves too (`bulk::Filter`).
fn body_limit(method: &Method, path: &str) -> Option<u64> {
    if is_upload(method, path) {
        None
    } else if method == Method::POST
        && matches!(
            path.trim_end_matches('/'),
            "/api/images/retry" | "/api/images/delete"
        )
    {
        Some(super::bulk::MAX_BULK_BODY_BYTES)
    } else {
        Some(MAX_SMALL_BODY_BYTES)
    }
}

/// `POST /api/images` and the original design's `POST /upload`.
fn is_upload(method: &Method, path: &str) -> bool {
    method == Method::POST && matches!(path.trim_end_matches('/'), "/api/images" | "/upload")
}

fn has_wait(query: Option<&str>) -> bool {
    query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "wait"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_upload_routes_take_large_bodies() {
        assert!(is_upload(&Method::POST, "/api/images"));
        assert!(is_upload(&Method::POST, "/upload"));
        assert!(!is_upload(&Method::GET, "/api/images"));
        assert!(!is_upload(&Method::POST, "/api/images/x/retry"));
        assert_eq!(body_limit(&Method::POST, "/api/images"), None);
        assert_eq!(
            body_limit(&Method::POST, "/api/images/x/retry"),
            Some(MAX_SMALL_BODY_BYTES)
        );
        assert_eq!(
            body_limit(&Method::POST, "/api/images/retry"),
            Some(super::super::bulk::MAX_BULK_BODY_BYTES)
        );
    }

    #[test]
    fn deadlines_cover_the_longest_legitimate_wait() {
        let at = |m: Method, u: &str| deadline_for(&m, &u.parse().expect("uri"));
        assert_eq!(at(Method::POST, "/api/images?width=10"), UPLOAD_TIMEOUT);
        assert_eq!(at(Method::POST, "/upload"), UPLOAD_TIMEOUT);
        assert!(at(Method::GET, "/api/images/x?wait=60") > MAX_WAIT);
        assert!(at(Method::GET, "/status/x?wait=60") > MAX_WAIT);
        assert_eq!(at(Method::GET, "/api/stats"), REQUEST_TIMEOUT);
        assert_eq!(at(Method::POST, "/api/images/x/retry?wait=60"), REQUEST_TIMEOUT);
    }

    #[test]
    fn long_polls_are_recognised_by_their_wait_parameter() {
        assert!(has_wait(Some("wait=30")));
        assert!(has_wait(Some("a=1&wait=")));
        assert!(!has_wait(Some("waiting=1")));
        assert!(!has_wait(None));
    }
}
