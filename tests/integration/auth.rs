//! Bearer-token auth (`API_TOKEN`) over real HTTP: every protected route with no, a wrong and a
//! right token (two tokens configured, as during a rotation), and the routes that stay open.
//!
//! Open on purpose: `/healthz` and `/readyz` (Kubernetes probes carry no token), `/metrics`
//! (scraped inside the cluster; counts only, no image data), `/` and `/assets/*` (the UI asks
//! for the token itself), and `/openapi.json` (the API's public description: routes and
//! schemas, no data; clients and tooling read it before they hold a token).

use crate::common::*;
use image_processor::config::Role;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const OLD: &str = "old-token-0123456789";
const NEW: &str = "new-token-abcdefghij";

async fn app_with_tokens() -> TestApp {
    // API only: no worker, so the uploaded image stays pending and every answer is stable.
    spawn_app_with(Role::Api, &[("api-token", &format!("{OLD}, {NEW}"))]).await
}

/// One request: method, path, and how to build its body.
#[derive(Clone, Copy)]
enum Body {
    None,
    Multipart,
    Raw,
}

fn protected_routes(id: &str) -> Vec<(Method, String, Body)> {
    let get = |p: String| (Method::GET, p, Body::None);
    vec![
        get("/api/images".into()),
        (Method::POST, "/api/images".into(), Body::Multipart),
        (Method::POST, "/api/images?filename=a.png".into(), Body::Raw),
        get(format!("/api/images/{id}")),
        get(format!("/api/images/{id}/processed")),
        get(format!("/api/images/{id}/original")),
        get(format!("/api/images/{id}/thumbnail")),
        (Method::POST, format!("/api/images/{id}/retry"), Body::None),
        get("/api/stats".into()),
        get("/api/events".into()),
        (Method::POST, "/upload".into(), Body::Multipart),
        get(format!("/status/{id}")),
        get(format!("/download/{id}")),
        // Unknown ids and unknown /api paths must not tell an outsider what exists.
        get("/api/images/00000000-0000-0000-0000-000000000000".into()),
        (Method::DELETE, format!("/api/images/{id}"), Body::None),
    ]
}

async fn send(
    app: &TestApp,
    method: &Method,
    path: &str,
    body: Body,
    auth: Option<&str>,
) -> reqwest::Response {
    let mut req = app.http.request(method.clone(), app.url(path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    req = match body {
        Body::None => req,
        Body::Multipart => req.multipart(
            Form::new().part(
                "file",
                Part::bytes(png(8, 8))
                    .file_name("a.png")
                    .mime_str("image/png")
                    .expect("mime"),
            ),
        ),
        Body::Raw => req.header("content-type", "image/png").body(png(8, 8)),
    };
    req.send().await.expect("request")
}

async fn assert_unauthorized(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: WWW-Authenticate is {challenge:?}"
    );
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "{what}: not JSON"
    );
    let body: Value = res.json().await.expect("error JSON");
    assert_error(what, &body, "unauthorized");
}

async fn upload_one(app: &TestApp, token: &str) -> String {
    let res = send(
        app,
        &Method::POST,
        "/api/images",
        Body::Multipart,
        Some(&format!("Bearer {token}")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.expect("json");
    body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_or_wrong_token() {
    let app = app_with_tokens().await;
    let id = upload_one(&app, OLD).await;
    let wrong = [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {OLD}x")),
        Some(format!("Bearer {}", &OLD[..OLD.len() - 1])),
        Some(format!("Basic {OLD}")),
        Some(OLD.to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Bearer {OLD},{NEW}")),
    ];
    for (method, path, body) in protected_routes(&id) {
        for auth in &wrong {
            let res = send(&app, &method, &path, body, auth.as_deref()).await;
            assert_unauthorized(res, &format!("{method} {path} with {auth:?}")).await;
        }
    }
    // Nothing was changed by the refused requests: the one upload is still there, untouched.
    let db = app.db().await;
    let rows = db
        .query("select id::text, status from processed_images", &[])
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), id);
    assert_eq!(rows[0].get::<_, String>(1), "pending");
}

#[tokio::test]
async fn either_configured_token_opens_every_protected_route() {
    let app = app_with_tokens().await;
    for token in [OLD, NEW] {
        let id = upload_one(&app, token).await;
        let auth = format!("Bearer {token}");
        for (method, path, body) in protected_routes(&id) {
            let res = send(&app, &method, &path, body, Some(&auth)).await;
            let status = res.status();
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {token}");
            let expected: &[StatusCode] = match (method.as_str(), path.as_str()) {
                ("POST", p) if p.ends_with("/retry") => &[StatusCode::CONFLICT],
                ("POST", _) => &[StatusCode::ACCEPTED],
                ("DELETE", _) => &[StatusCode::NO_CONTENT],
                (_, p)
                    if p.ends_with("/processed")
                        || p.ends_with("/thumbnail")
                        || p.starts_with("/download/") =>
                {
                    &[StatusCode::CONFLICT]
                }
                (_, p) if p.contains("00000000-0000") => &[StatusCode::NOT_FOUND],
                _ => &[StatusCode::OK],
            };
            assert!(
                expected.contains(&status),
                "{method} {path} with {token}: {status}"
            );
        }
    }
}

#[tokio::test]
async fn events_accept_the_token_in_the_query_and_nothing_else_does() {
    let app = app_with_tokens().await;
    let id = upload_one(&app, NEW).await;
    let res = send(
        &app,
        &Method::GET,
        &format!("/api/events?access_token={NEW}"),
        Body::None,
        None,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    drop(res);
    let res = send(
        &app,
        &Method::GET,
        "/api/events?access_token=nope",
        Body::None,
        None,
    )
    .await;
    assert_unauthorized(res, "events with a wrong query token").await;
    // Everywhere else a query token is ignored: it would end up in logs and browser history.
    for path in [
        format!("/api/images/{id}?access_token={NEW}"),
        format!("/api/images?access_token={NEW}"),
    ] {
        let res = send(&app, &Method::GET, &path, Body::None, None).await;
        assert_unauthorized(res, &path).await;
    }
}

#[tokio::test]
async fn probes_metrics_ui_and_the_api_document_stay_open() {
    let app = app_with_tokens().await;
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
        "/assets/app.js",
        "/assets/style.css",
        "/openapi.json",
    ] {
        let res = send(&app, &Method::GET, path, Body::None, None).await;
        assert_eq!(res.status(), StatusCode::OK, "{path} should be open");
    }
    // A wrong token on an open route is not an error either (the UI may send a stale one).
    let res = send(&app, &Method::GET, "/healthz", Body::None, Some("Bearer stale")).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Unknown routes answer 404 whether or not a token came, so the token reveals nothing.
    let res = send(&app, &Method::GET, "/nope", Body::None, None).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_api_token_everything_is_open() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let id = upload_one(&app, "ignored").await;
    let res = send(&app, &Method::GET, &format!("/api/images/{id}"), Body::None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = send(&app, &Method::GET, "/api/stats", Body::None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
}
