//! Job control: `priority` (higher first; among equals, the row runnable longest) and
//! `not_before` (scheduled jobs stay pending until then), through the API and plain SQL, with
//! a real worker claiming.

use std::time::Duration;

use chrono::{DateTime, Utc};
use image_processor::config::Role;
use image_processor::db;
use reqwest::StatusCode;

use crate::common::*;

async fn upload(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    upload_png(app, png(40, 30), fields).await
}

#[tokio::test]
async fn higher_priority_is_claimed_first_and_equals_oldest_first() {
    let test_db = fresh_database().await;
    let client = db::connect(&test_db.url).await.expect("connect");
    // Inserted before any worker runs, one by one so their run_after differ.
    let mut ids = Vec::new();
    for (name, priority) in [("a", 0i16), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 100)] {
        let id: uuid::Uuid = client
            .query_one(
                "insert into processed_images (original_data, filename, priority) values ($1, $2, $3) returning id",
                &[&png(16, 12), &name, &priority],
            )
            .await
            .expect("insert")
            .get(0);
        ids.push(id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One thread. Once its first job shows jobs are short, a claim takes several rows ahead
    // (`worker::ahead`); those share `started_at` (the claim's time) and run in queue order.
    let app = spawn_app_on(Role::Worker, test_db.url.clone(), &[("worker-threads", "1")]).await;
    assert!(
        wait_completed(&client, 6, Duration::from_secs(60)).await,
        "not all jobs completed"
    );
    let order: Vec<String> = client
        .query(
            "select filename from processed_images order by started_at, priority desc, run_after",
            &[],
        )
        .await
        .expect("order")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(order, ["f", "b", "d", "a", "e", "c"]);
    app.stop().await;
}

#[tokio::test]
async fn not_before_keeps_a_job_pending_until_then() {
    // The fallback sweep a minute away: only the worker's own due-time wake-up can claim it.
    let app = spawn_app_with(Role::Run, &[("sweep-secs", "60")]).await;
    let at = Utc::now() + chrono::Duration::milliseconds(2500);
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let res = upload(
        &app,
        &[("not_before", &at_text), ("priority", "7"), ("width", "20")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["priority"], 7);
    let id = body["id"].as_str().expect("id").to_owned();
    let stored: DateTime<Utc> = body["not_before"]
        .as_str()
        .expect("not_before")
        .parse()
        .expect("time");
    assert_eq!(stored, at.with_timezone(&Utc).trunc_subsecs_millis(), "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = app.get_json(&format!("/api/images/{id}")).await;
    assert_eq!(early["status"], "pending", "claimed before not_before: {early}");
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let started: DateTime<Utc> = done["started_at"]
        .as_str()
        .expect("started")
        .parse()
        .expect("time");
    assert!(started >= stored, "started {started} before not_before {stored}");
    // Woken when it came due, not at the next sweep (a minute away here).
    // (A generous bound for a loaded machine; the sweep would take a minute.)
    assert!(
        started - stored < chrono::Duration::seconds(15),
        "claimed {} ms after it came due",
        (started - stored).num_milliseconds()
    );

    // A plain SQL insert with not_before starts runnable there too.
    let client = app.db().await;
    let sql_at: DateTime<Utc> = client
        .query_one(
            "insert into processed_images (original_data, not_before) values ($1, now() + interval '1 hour') \
             returning run_after",
            &[&png(8, 8)],
        )
        .await
        .expect("insert")
        .get(0);
    assert!(
        sql_at > Utc::now() + chrono::Duration::minutes(59),
        "run_after {sql_at}"
    );
    // A SQL writer that brings not_before forward makes the row runnable then: it completes.
    let id: uuid::Uuid = client
        .query_one(
            "update processed_images set not_before = now() - interval '1 minute' \
             where run_after > now() + interval '59 minutes' returning id",
            &[],
        )
        .await
        .expect("update")
        .get(0);
    let done = app.wait_done(&id.to_string()).await;
    assert_eq!(done["status"], "completed", "{done}");
    app.stop().await;
}

trait Millis {
    fn trunc_subsecs_millis(self) -> Self;
}

impl Millis for DateTime<Utc> {
    fn trunc_subsecs_millis(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(chrono::Duration::milliseconds(1))
            .unwrap_or(self)
    }
}

#[tokio::test]
async fn priority_and_not_before_are_checked_and_named() {
    let app = spawn_app().await;
    let far = (Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    for (fields, param) in [
        (vec![("priority", "101")], "priority"),
        (vec![("priority", "-101")], "priority"),
        (vec![("priority", "1.5")], "priority"),
        (vec![("priority", "99999999999")], "priority"),
        (vec![("not_before", "tomorrow")], "not_before"),
        (vec![("not_before", "2026-13-01T00:00:00Z")], "not_before"),
        (vec![("not_before", "2026-12-01 10:00:00")], "not_before"),
        (vec![("not_before", far.as_str())], "not_before"),
    ] {
        let res = upload(&app, &fields).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_error(&format!("{fields:?}"), &body, "invalid_parameter");
        assert_eq!(body["error"]["param"], param, "{fields:?}: {body}");
    }
    // Beside a JSON pipeline, and in the past (runnable at once).
    let res = upload(
        &app,
        &[
            ("pipeline", r#"{"steps": [{"op": "grayscale"}]}"#),
            ("priority", "-100"),
            ("not_before", "2020-01-01T00:00:00+02:00"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["priority"], -100);
    assert_eq!(body["not_before"], "2019-12-31T22:00:00Z");
    let done = app.wait_done(body["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "completed", "{done}");
    // The table refuses what the API would: SQL writers get the constraint.
    let err = app
        .db()
        .await
        .execute(
            "insert into processed_images (original_data, priority) values ('x', 101)",
            &[],
        )
        .await
        .expect_err("out of range");
    assert_eq!(
        err.as_db_error().and_then(|e| e.constraint()),
        Some("processed_images_priority_range"),
        "{err:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn stats_and_metrics_say_how_long_the_oldest_runnable_job_has_waited() {
    // The API alone: nothing claims, so the rows stay pending.
    let app = spawn_app_with(Role::Api, &[]).await;
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["oldest_pending_seconds"], 0.0, "{stats}");
    let client = app.db().await;
    client
        .execute(
            "insert into processed_images (original_data, run_after) values ('a', now() - interval '30 seconds'), \
             ('b', now() - interval '5 seconds')",
            &[],
        )
        .await
        .expect("insert waiting rows");
    // Scheduled for later: not waiting yet, so it does not count.
    client
        .execute(
            "insert into processed_images (original_data, not_before) values ('c', now() + interval '1 hour')",
            &[],
        )
        .await
        .expect("insert a scheduled row");
    let stats = app.get_json("/api/stats").await;
    let oldest = stats["oldest_pending_seconds"].as_f64().expect("a number");
    assert!((30.0..40.0).contains(&oldest), "{stats}");
    // The gauge, from an API process of its own: in this test process the metrics registry
    // (and its refresh) is shared with every other test's app.
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let api = Proc::spawn("api", &app.db_url, &[("LISTEN_ADDR", &addr)]);
    let gauge = |text: &str| metric_value(text, "image_processor_queue_oldest_pending_seconds");
    let mut seen = None;
    for _ in 0..100 {
        if let Ok(res) = reqwest::get(format!("http://{addr}/metrics")).await {
            seen = gauge(&res.text().await.unwrap_or_default()).filter(|v| *v > 0.0);
            if seen.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let value = seen.unwrap_or_else(|| panic!("no gauge value:\n{}", api.log_text()));
    assert!((30.0..45.0).contains(&value), "{value}");
    drop(api);
    app.stop().await;
}

/// Rows for the retention tests: 250 completed and 3 failed long finished (expired), plus rows
/// that must stay: old but still pending, uploaded long ago but finished yesterday, recent.
async fn insert_retention_rows(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "insert into processed_images (original_data, status, uploaded_at, processed_at, filename)
               select 'x', 'completed', now() - interval '10 days', now() - interval '10 days', 'expired'
               from generate_series(1, 250);
             insert into processed_images (original_data, status, uploaded_at, processed_at, filename)
               select 'x', 'failed', now() - interval '9 days', now() - interval '9 days', 'expired'
               from generate_series(1, 3);
             insert into processed_images (original_data, status, uploaded_at, processed_at, filename)
               values ('x', 'completed', now() - interval '10 days', now() - interval '1 day', 'kept'),
                      ('x', 'completed', now() - interval '1 hour', now() - interval '1 hour', 'kept'),
                      ('x', 'failed', now(), now(), 'kept');",
        )
        .await
        .expect("insert rows");
}

async fn count_named(client: &tokio_postgres::Client, name: &str) -> i64 {
    client
        .query_one(
            "select count(*) from processed_images where filename = $1",
            &[&name],
        )
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn retention_deletes_old_finished_images_in_batches_and_keeps_the_rest() {
    let test_db = fresh_database().await;
    let client = db::connect(&test_db.url).await.expect("connect");
    insert_retention_rows(&client).await;
    // Two worker replicas with RETENTION_DAYS: each passes at start, one batch at a time.
    let extra = [("retention-days", "7")];
    let one = spawn_app_on(Role::Worker, test_db.url.clone(), &extra).await;
    let two = spawn_app_on(Role::Worker, test_db.url.clone(), &extra).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            count_named(&client, "expired").await == 0
        })
        .await,
        "expired rows left: {}",
        count_named(&client, "expired").await
    );
    assert_eq!(count_named(&client, "kept").await, 3, "only expired rows go");
    // The registry is this test process's (other tests delete too): at least these rows.
    let metrics = one.get("/metrics").await.text().await.expect("metrics");
    let expired = metric_value(&metrics, "image_processor_images_expired_total").expect("the counter");
    assert!(expired >= 253.0, "{expired}");
    two.stop().await;
    one.stop().await;
}

#[tokio::test]
async fn a_retention_pass_waits_its_turn_behind_another_replica() {
    let test_db = fresh_database().await;
    let client = db::connect(&test_db.url).await.expect("connect");
    insert_retention_rows(&client).await;
    let pool = db::worker_pool(&test_db.url, 2).expect("pool");
    let cancel = tokio_util::sync::CancellationToken::new();
    // Another replica mid-pass holds the fleet-wide lock: this one deletes nothing.
    client
        .execute(
            "select pg_advisory_lock($1)",
            &[&image_processor::retention::LOCK_KEY],
        )
        .await
        .expect("lock");
    let deleted = image_processor::retention::pass(&pool, 7, &cancel)
        .await
        .expect("pass");
    assert_eq!(deleted, 0);
    assert_eq!(count_named(&client, "expired").await, 253);
    client
        .execute(
            "select pg_advisory_unlock($1)",
            &[&image_processor::retention::LOCK_KEY],
        )
        .await
        .expect("unlock");
    let deleted = image_processor::retention::pass(&pool, 7, &cancel)
        .await
        .expect("pass");
    assert_eq!(deleted, 253, "three batches of 100 (the last one short)");
    assert_eq!(count_named(&client, "kept").await, 3);
}
