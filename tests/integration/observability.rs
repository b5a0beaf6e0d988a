//! What operators and their tools see: the OpenAPI document matches the router both ways,
//! `/metrics` shows every family after a few jobs, requests carry an `x-request-id`, and logs
//! never carry a token.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every (method, path) the document lists, e.g. `("get", "/api/images/{id}")`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths object");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// A concrete URL path for a template: ids are random (unknown) UUIDs, files a real UI asset.
fn concrete(template: &str) -> String {
    template
        .replace("{id}", &uuid::Uuid::new_v4().to_string())
        .replace("{path}", "app.js")
}

/// True when the router's fallbacks answered, i.e. no route took the request.
async fn answered_by_fallback(res: reqwest::Response) -> bool {
    match res.status() {
        StatusCode::METHOD_NOT_ALLOWED => true,
        StatusCode::NOT_FOUND => {
            let body: Value = res.json().await.unwrap_or(Value::Null);
            body["error"]["message"] == "no such route"
        }
        _ => false,
    }
}

async fn fetch_document(app: &TestApp) -> Value {
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn every_documented_route_is_served_and_nothing_else_is() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "not OpenAPI 3: {}",
        doc["openapi"]
    );
    let routes = documented(&doc);

    // The contract's routes are all there.
    for (method, path) in [
        ("post", "/api/images"),
        ("get", "/api/images"),
        ("get", "/api/images/{id}"),
        ("delete", "/api/images/{id}"),
        ("get", "/api/images/{id}/processed"),
        ("get", "/api/images/{id}/original"),
        ("get", "/api/images/{id}/thumbnail"),
        ("post", "/api/images/{id}/retry"),
        ("get", "/api/events"),
        ("get", "/api/stats"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/"),
        ("post", "/upload"),
        ("get", "/status/{id}"),
        ("get", "/download/{id}"),
    ] {
        assert!(
            routes.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is not documented"
        );
    }

    // Documented → served: a route (not the fallback) answers each operation.
    for (method, path) in &routes {
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let res = app
            .http
            .request(method.clone(), app.url(&concrete(path)))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        assert!(
            !answered_by_fallback(res).await,
            "{method} {path} is documented but not served"
        );
    }

    // Served → documented, per path: every method the document leaves out is refused (405).
    let paths: BTreeSet<&String> = routes.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            if routes.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let res = app
                .http
                .request(m, app.url(&concrete(path)))
                .send()
                .await
                .expect("request");
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not documented"
            );
        }
    }
    app.stop().await;
}

/// Served → documented, across paths: a route can only enter the router through
/// `utoipa_axum::routes!`, which takes its path and method from the handler's
/// `#[utoipa::path]`. Plain axum registration anywhere in the crate would bypass the document.
#[test]
fn no_route_is_registered_outside_the_openapi_annotations() {
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if [".route(", ".route_service(", ".nest(", ".nest_service("]
                    .iter()
                    .any(|p| code.contains(p))
                {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "routes registered without `routes!` (they would be missing from /openapi.json):\n{}",
        offenders.join("\n")
    );
}

/// The document the server serves has its shared schemas, and every reference resolves
/// (`scripts/check-openapi` validates it and runs schemathesis against the live server).
#[tokio::test]
async fn the_served_document_has_its_schemas_and_every_reference_resolves() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    // Shared schemas are referenced, and every reference resolves.
    let text = doc.to_string();
    for schema in ["ErrorBody", "ImageObject", "ImageList", "UploadForm", "Stats"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "schema {schema} missing"
        );
    }
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or("");
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref to {name}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_every_family_after_a_few_jobs() {
    let app = spawn_app().await;
    for i in 0..3 {
        let form = Form::new().text("width", "64").part(
            "file",
            Part::bytes(jpeg(320, 240))
                .file_name(format!("m{i}.jpg"))
                .mime_str("image/jpeg")
                .expect("mime"),
        );
        let res = app
            .http
            .post(app.url("/api/images"))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        let body: Value = res.json().await.expect("json");
        let id = body["id"].as_str().expect("id").to_owned();
        let done = app.wait_done(&id).await;
        assert_eq!(done["status"], "completed", "{done}");
    }
    // A pipeline stored by SQL that does not parse: failed, and counted as such.
    let db = app.db().await;
    let bad: uuid::Uuid = db
        .query_one(
            "insert into processed_images (original_data, pipeline) values ($1, '{\"steps\": 7}') returning id",
            &[&jpeg(16, 16)],
        )
        .await
        .expect("insert")
        .get(0);
    let failed = app.wait_done(&bad.to_string()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    // One 404 by route template, never by raw path.
    let missing = uuid::Uuid::new_v4();
    app.get(&format!("/api/images/{missing}")).await;

    let res = app.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    let text = res.text().await.expect("text");
    for family in [
        "image_processor_http_requests_total",
        "image_processor_http_request_duration_seconds_bucket",
        "image_processor_upload_bytes_total",
        "image_processor_upload_files_total",
        "image_processor_jobs_total",
        "image_processor_job_processing_seconds_bucket",
        "image_processor_job_pickup_latency_seconds_bucket",
        "image_processor_worker_threads_busy",
        "image_processor_write_back_batch_size_bucket",
        "image_processor_queue_depth",
        "image_processor_queue_oldest_pending_seconds",
    ] {
        assert!(text.contains(family), "{family} missing from /metrics:\n{text}");
    }
    assert!(
        text.contains(r#"route="/api/images/{id}",status="404""#),
        "the 404 is not labelled by its route template:\n{text}"
    );
    assert!(
        !text.contains(&missing.to_string()),
        "a raw path leaked into a label"
    );
    let completed = metric_value(
        &text,
        r#"image_processor_jobs_total{outcome="completed",family="resize"}"#,
    )
    .unwrap_or(0.0);
    // Other tests of this binary share the process-wide recorder: at least ours.
    assert!(completed >= 3.0, "completed jobs: {completed}\n{text}");
    let invalid = metric_value(
        &text,
        r#"image_processor_jobs_total{outcome="failed",family="unknown"}"#,
    )
    .unwrap_or(0.0);
    assert!(
        invalid >= 1.0,
        "the invalid stored pipeline was not counted:\n{text}"
    );
    assert!(metric_value(&text, "image_processor_upload_bytes_total").unwrap_or(0.0) > 0.0);
    assert!(
        text.contains(r#"image_processor_queue_depth{status="pending"}"#),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_echoes_the_clients() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("x-request-id on the answer");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "not a UUID: {id}");

    let res = app
        .http
        .get(app.url("/no/such/route"))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        res.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("client-chosen-42")
    );
    app.stop().await;
}

#[tokio::test]
async fn logs_name_the_request_but_never_the_token() {
    const TOKEN: &str = "s3cret-token-that-must-not-be-logged";
    let test_db = fresh_database().await;
    let db_url = test_db.url.clone();
    let proc = Proc::spawn(
        "api",
        &db_url,
        &[("API_TOKEN", TOKEN), ("RUST_LOG", "debug,tokio_postgres=info")],
    );
    let addr = wait_for_listen_addr(&proc).await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("http://{addr}/api/images"))
        .bearer_auth(TOKEN)
        .header("x-request-id", "traced-request-7")
        .send()
        .await
        .expect("list");
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .get(format!("http://{addr}/api/events?access_token={TOKEN}"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("events");
    assert_eq!(res.status(), StatusCode::OK);
    drop(res);
    let res = http
        .get(format!("http://{addr}/api/images"))
        .bearer_auth("wrong-token")
        .send()
        .await
        .expect("list");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let logged = eventually(Duration::from_secs(5), || async {
        proc.log_text().contains("traced-request-7")
    })
    .await;
    let log = proc.log_text();
    assert!(logged, "the request id is not in the log:\n{log}");
    assert!(
        log.contains(r#""route":"/api/images""#),
        "no route in the request span:\n{log}"
    );
    assert!(!log.contains(TOKEN), "the token was logged:\n{log}");
    assert!(
        !log.contains("wrong-token"),
        "a presented token was logged:\n{log}"
    );
}

/// The address a `Proc` bound on port 0, from its JSON log.
async fn wait_for_listen_addr(proc: &Proc) -> String {
    let mut addr = None;
    let found = eventually(Duration::from_secs(30), || {
        let text = proc.log_text();
        let found = text
            .lines()
            .filter(|l| l.contains("HTTP listening"))
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["addr"].as_str().map(str::to_owned));
        let hit = found.is_some();
        addr = found;
        async move { hit }
    })
    .await;
    assert!(found, "the server did not start:\n{}", proc.log_text());
    addr.unwrap_or_default()
}

/// A worker whose claim was taken over while it processed: its result is refused by the fence at
/// write-back, and `/metrics` counts the job as `fenced`, not `completed`.
#[tokio::test]
async fn a_result_refused_by_the_fence_counts_as_fenced_not_completed() {
    let test_db = fresh_database().await;
    let db_url = test_db.url.clone();
    // The lease (30 s, renewed every 10 s) outlives the 3 s of processing, so no heartbeat can
    // notice the takeover first: the fence at write-back is what refuses the result.
    let worker = Proc::spawn(
        "worker",
        &db_url,
        &[
            ("WORKER_TEST_HOOKS", "1"),
            ("WORKER_TEST_DELAY_MS", "3000"),
            ("LEASE_SECS", "30"),
        ],
    );
    let addr = wait_for_listen_addr(&worker).await;
    let db = image_processor::db::connect(&db_url).await.expect("connect");
    let id: uuid::Uuid = db
        .query_one(
            "insert into processed_images (original_data) values ($1) returning id",
            &[&jpeg(64, 48)],
        )
        .await
        .expect("insert")
        .get(0);
    let claimed = eventually(Duration::from_secs(20), || async {
        let row = db
            .query_one("select status from processed_images where id = $1", &[&id])
            .await
            .expect("status");
        row.get::<_, String>(0) == "processing"
    })
    .await;
    assert!(
        claimed,
        "the worker never claimed the job:\n{}",
        worker.log_text()
    );
    // Another claim takes the row over: a new holder and a new fencing token.
    db.execute(
        "update processed_images set claimed_by = 'another-worker', attempts = attempts + 1 where id = $1",
        &[&id],
    )
    .await
    .expect("take over");

    let http = reqwest::Client::new();
    let fenced_series = r#"image_processor_jobs_total{outcome="fenced",family="resize"}"#;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (fenced, text) = loop {
        let text = http
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        let fenced = metric_value(&text, fenced_series) == Some(1.0);
        if fenced || std::time::Instant::now() > deadline {
            break (fenced, text);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(fenced, "the refused result was not counted as fenced:\n{text}");
    assert_eq!(
        metric_value(
            &text,
            r#"image_processor_jobs_total{outcome="completed",family="resize"}"#
        ),
        Some(0.0),
        "the refused result was counted as completed:\n{text}"
    );
    let row = db
        .query_one(
            "select status, claimed_by, processed_data is null from processed_images where id = $1",
            &[&id],
        )
        .await
        .expect("row");
    assert_eq!(row.get::<_, String>(0), "processing");
    assert_eq!(row.get::<_, String>(1), "another-worker");
    assert!(row.get::<_, bool>(2), "the stale result was written");
}
