//! Cancelling pending and running jobs (a real worker process told through NOTIFY), bulk retry
//! and delete by filter, and the per-minute history in `/api/stats`.

use std::time::{Duration, Instant};

use image_processor::config::Role;
use image_processor::db;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

async fn post_json(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let res = app
        .http
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let res = app.call(reqwest::Method::POST, path).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn status_of(client: &tokio_postgres::Client, id: uuid::Uuid) -> String {
    client
        .query_one("select status from processed_images where id = $1", &[&id])
        .await
        .expect("status")
        .get(0)
}

async fn insert_one(client: &tokio_postgres::Client, name: &str) -> uuid::Uuid {
    client
        .query_one(
            "insert into processed_images (original_data, filename) values ($1, $2) returning id",
            &[&png(32, 24), &name],
        )
        .await
        .expect("insert")
        .get(0)
}

#[tokio::test]
async fn a_pending_job_is_cancelled_then_retried_and_the_counts_follow() {
    let app = spawn_app_with(Role::Run, &[]).await;
    // Scheduled an hour ahead: pending, and no worker will touch it.
    let at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let res = upload_png(&app, png(40, 30), &[("not_before", &at)]).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_owned();

    let (status, cancelled) = post(&app, &format!("/api/images/{id}/cancel")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["error_code"], "cancelled", "{cancelled}");
    let shown = app.get_json(&format!("/api/images/{id}")).await;
    assert_eq!(shown["status"], "cancelled");
    let listed = app.get_json("/api/images?status=cancelled").await;
    assert_eq!(listed["images"][0]["id"], id.as_str(), "{listed}");
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["counts"]["cancelled"], 1, "{stats}");
    assert_eq!(stats["counts"]["pending"], 0, "{stats}");

    // Finished now: a second cancel is a conflict that says the status.
    let (status, again) = post(&app, &format!("/api/images/{id}/cancel")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_error("second cancel", &again, "conflict");
    assert_eq!(again["error"]["status"], "cancelled", "{again}");

    // Retry puts it back; not_before still holds, so it stays pending.
    let (status, retried) = post(&app, &format!("/api/images/{id}/retry")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["status"], "pending", "{retried}");
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["counts"]["cancelled"], 0, "{stats}");
    assert_eq!(stats["counts"]["pending"], 1, "{stats}");

    let (status, missing) = post(&app, &format!("/api/images/{}/cancel", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (status, bad) = post(&app, "/api/images/not-a-uuid/cancel").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
    app.stop().await;
}

#[tokio::test]
async fn a_running_job_stops_when_cancelled_and_frees_its_thread() {
    let test_db = fresh_database().await;
    let client = db::connect(&test_db.url).await.expect("connect");
    let api = spawn_app_on(Role::Api, test_db.url.clone(), &[]).await;
    // One thread, and every job takes 60 s (in steps that look at the stop flag).
    let worker = Proc::spawn(
        "worker",
        &test_db.url,
        &[
            ("WORKER_THREADS", "1"),
            ("WORKER_TEST_HOOKS", "1"),
            ("WORKER_TEST_DELAY_MS", "60000"),
        ],
    );
    let first = insert_one(&client, "first").await;
    assert!(
        wait_processing(&client, 1, Duration::from_secs(30)).await,
        "the first job was never claimed"
    );
    let second = insert_one(&client, "second").await;

    // A notification nobody's cancel stands behind is checked against the row and ignored.
    client
        .execute("select pg_notify('image_cancel', $1)", &[&first.to_string()])
        .await
        .expect("notify");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status_of(&client, first).await, "processing");
    assert!(
        eventually(Duration::from_secs(5), || async {
            worker.log_text().contains("claim still holds; ignored")
        })
        .await,
        "the worker did not check the stray notification: {}",
        worker.log_text()
    );

    let cancelled_at = Instant::now();
    let (status, body) = post(&api, &format!("/api/images/{first}/cancel")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "cancelled");
    // The only thread comes free: the second job is claimed long before the first's 60 s.
    assert!(
        eventually(Duration::from_secs(10), || async {
            status_of(&client, second).await == "processing"
        })
        .await,
        "the cancelled job kept its thread: {}",
        worker.log_text()
    );
    let freed_after = cancelled_at.elapsed();
    assert!(
        worker.log_text().contains("cancelled job stopped"),
        "{}",
        worker.log_text()
    );
    // The cancelled row keeps its status; nothing was written over it.
    let row = client
        .query_one(
            "select status, processed_data is null, claimed_by is null from processed_images where id = $1",
            &[&first],
        )
        .await
        .expect("row");
    assert_eq!(row.get::<_, String>(0), "cancelled");
    assert!(row.get::<_, bool>(1) && row.get::<_, bool>(2));
    eprintln!("cancel to the thread claiming the next job: {freed_after:?}");

    // Cancel the second too, so the worker stops at once.
    let (status, _) = post(&api, &format!("/api/images/{second}/cancel")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(counts(&client).await.get("cancelled").copied(), Some(2));
    api.stop().await;
}

#[tokio::test]
async fn bulk_retry_and_delete_take_exactly_what_the_filter_says() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    client
        .batch_execute(
            "insert into processed_images (original_data, status, uploaded_at, processed_at, filename)
               select 'x', 'failed', now() - interval '2 days', now(), 'old-failed' from generate_series(1, 3);
             insert into processed_images (original_data, status, processed_at, filename)
               select 'x', 'failed', now(), 'new-failed' from generate_series(1, 2);
             insert into processed_images (original_data, status, processed_at, filename)
               values ('x', 'completed', now(), 'done'), ('x', 'cancelled', now(), 'stopped');",
        )
        .await
        .expect("insert rows");
    let day_ago = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();

    let (status, body) = post_json(
        &app,
        "/api/images/retry",
        &json!({"status": "failed", "before": day_ago}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"retried": 3, "more": false}));
    let c = counts(&client).await;
    assert_eq!((c.get("pending"), c.get("failed")), (Some(&3), Some(&2)), "{c:?}");

    let stopped: uuid::Uuid = client
        .query_one("select id from processed_images where filename = 'stopped'", &[])
        .await
        .expect("id")
        .get(0);
    let (status, body) = post_json(&app, "/api/images/retry", &json!({"ids": [stopped]})).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"retried": 1, "more": false}))
    );

    // Pending rows cannot be retried; the filter says which key is wrong.
    let (status, body) = post_json(&app, "/api/images/retry", &json!({"status": "pending"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "status", "{body}");

    let (status, body) = post_json(&app, "/api/images/delete", &json!({"status": "failed"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"deleted": 2, "more": false}))
    );
    let (status, body) = post_json(&app, "/api/images/delete", &json!({"status": "failed"})).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"deleted": 0, "more": false}))
    );
    let c = counts(&client).await;
    assert_eq!(c.get("failed"), None, "{c:?}");
    assert_eq!(c.values().sum::<i64>(), 5, "only the failed rows went: {c:?}");
    let stats = app.get_json("/api/stats").await;
    assert_eq!(
        stats["counts"]["pending"], 4,
        "the counters follow bulk changes: {stats}"
    );
    assert_eq!(stats["counts"]["failed"], 0, "{stats}");
    app.stop().await;
}

#[tokio::test]
async fn bulk_filters_are_bounded_and_named_when_wrong() {
    let app = spawn_app_with(Role::Api, &[]).await;
    for (body, param) in [
        (json!({}), "body"),
        (json!({"status": "done"}), "status"),
        (json!({"before": "tomorrow"}), "before"),
        (json!({"before": "2026-13-01T00:00:00Z"}), "before"),
        (json!({"ids": ["x"]}), "ids[0]"),
        (json!({"ids": 3}), "ids"),
        (json!({"everything": true}), "everything"),
        (json!([1, 2]), "body"),
    ] {
        for path in ["/api/images/retry", "/api/images/delete"] {
            let (status, answer) = post_json(&app, path, &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
            assert_eq!(answer["error"]["param"], param, "{path} {body}: {answer}");
        }
    }
    let many: Vec<String> = (0..10_001).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (status, answer) = post_json(&app, "/api/images/delete", &json!({ "ids": many })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["param"], "ids");
    // 10 000 ids fit the body limit; a body far over it is refused by its declared length.
    let most: Vec<String> = (0..10_000).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let (status, answer) = post_json(&app, "/api/images/delete", &json!({ "ids": most })).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"deleted": 0, "more": false}))
    );
    let huge = format!("{{\"ids\": [\"{}\"]}}", "a".repeat(600 * 1024));
    let res = app
        .http
        .post(app.url("/api/images/delete"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn stats_history_counts_completions_and_failures_per_minute() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    insert_jobs(&client, 5).await;
    insert_jobs_of(&client, b"not an image at all", 2).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            let c = counts(&client).await;
            c.get("completed") == Some(&5) && c.get("failed") == Some(&2)
        })
        .await,
        "{:?}",
        counts(&client).await
    );
    let stats = app.get_json("/api/stats").await;
    let history = stats["history"].as_array().expect("history");
    assert_eq!(history.len(), 60, "{stats}");
    let minutes: Vec<chrono::DateTime<chrono::Utc>> = history
        .iter()
        .map(|m| m["minute"].as_str().expect("minute").parse().expect("time"))
        .collect();
    assert!(
        minutes
            .windows(2)
            .all(|w| w[1] - w[0] == chrono::Duration::minutes(1)),
        "{minutes:?}"
    );
    let sum = |key: &str| {
        history
            .iter()
            .map(|m| m[key].as_i64().expect("count"))
            .sum::<i64>()
    };
    assert_eq!((sum("completed"), sum("failed")), (5, 2), "{stats}");
    // All in the last minute or two (the jobs may straddle a minute boundary).
    let recent: i64 = history[58..]
        .iter()
        .map(|m| m["completed"].as_i64().unwrap_or(0) + m["failed"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(recent, 7, "{stats}");
    // A bucket from an earlier hour in the same ring slot is not shown.
    client
        .execute(
            "update processed_images_history set minute = minute - interval '64 minutes'",
            &[],
        )
        .await
        .expect("age the buckets");
    let stats = app.get_json("/api/stats").await;
    let total: i64 = stats["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|m| m["completed"].as_i64().unwrap_or(0) + m["failed"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(total, 0, "{stats}");
    app.stop().await;
}
