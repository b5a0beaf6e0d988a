//! Optional bearer-token auth (`API_TOKEN`, comma-separated to allow rotation).

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::state::AppState;

/// Rejects requests without a valid token when tokens are configured. `/api/events` may carry
/// the token as `?access_token=`, since browsers' EventSource cannot set headers.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.tokens.is_empty() {
        return Ok(next.run(request).await);
    }
    let from_header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let from_query = (request.uri().path() == "/api/events")
        .then(|| request.uri().query())
        .flatten()
        .and_then(|q| url_param(q, "access_token"));
    let presented = from_header.map(str::to_owned).or(from_query);
    match presented {
        Some(token)
            if state
                .tokens
                .iter()
                .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes())) =>
        {
            Ok(next.run(request).await)
        }
        _ => Err(ApiError::Unauthorized),
    }
}

fn url_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Compares without an early exit, so timing does not reveal how much of a token matched
/// (only whether the lengths differ).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn access_token_is_read_from_the_query() {
        assert_eq!(
            url_param("a=1&access_token=t%20x", "access_token").as_deref(),
            Some("t x")
        );
        assert_eq!(url_param("a=1", "access_token"), None);
    }
}
