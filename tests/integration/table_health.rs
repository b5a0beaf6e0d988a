//! Issue 15, item 10 (`sql/0008_table_health.sql`): the status counters that `/api/stats` reads
//! stay exact whoever writes the table (the API, the worker, plain SQL, several connections at
//! once, TRUNCATE), the migration counts the rows already there, and heartbeats are HOT
//! updates. Speed at a million rows is measured by scripts/bench-table, not here.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::common::*;
use image_processor::config::Role;
use image_processor::db::{self, jobs, migrate};

/// The counters' sums and `count(*)` per status, read by one statement (one snapshot), so
/// they must agree even while other connections are writing.
const COUNTERS_VS_TABLE: &str = "\
select array[sum(pending), sum(processing), sum(completed), sum(failed)]::int8[],
       (select array[count(*) filter (where status = 'pending'),
                     count(*) filter (where status = 'processing'),
                     count(*) filter (where status = 'completed'),
                     count(*) filter (where status = 'failed')]::int8[]
        from processed_images)
from processed_images_counts";

/// `[pending, processing, completed, failed]` as counted by the triggers and by the table.
async fn counters_and_table(client: &tokio_postgres::Client) -> (Vec<i64>, Vec<i64>) {
    let row = client
        .query_one(COUNTERS_VS_TABLE, &[])
        .await
        .expect("counters vs table");
    (row.get(0), row.get(1))
}

async fn assert_counters_exact(client: &tokio_postgres::Client, context: &str) -> Vec<i64> {
    let (counters, table) = counters_and_table(client).await;
    assert_eq!(
        counters, table,
        "{context}: counters [pending, processing, completed, failed] != count(*)"
    );
    table
}

async fn upload_png(app: &TestApp, bytes: Vec<u8>) -> String {
    let part = Part::bytes(bytes)
        .file_name("t.png")
        .mime_str("image/png")
        .expect("mime");
    let res = app
        .http
        .post(app.url("/api/images"))
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
    let body: Value = res.json().await.expect("upload json");
    body["id"].as_str().expect("id").to_owned()
}

async fn wait_idle(client: &tokio_postgres::Client) {
    let idle = eventually(Duration::from_secs(60), || async {
        let c = counts(client).await;
        c.get("pending").copied().unwrap_or(0) + c.get("processing").copied().unwrap_or(0) == 0
    })
    .await;
    assert!(idle, "jobs still queued after 60 s: {:?}", counts(client).await);
}

#[tokio::test]
async fn stats_stay_exact_through_uploads_sql_writes_retries_deletes_and_truncate() {
    let app = spawn_app().await;
    let db = app.db().await;
    assert_counters_exact(&db, "fresh database").await;

    // API uploads, and SQL inserts of good and undecodable rows (which the worker fails).
    let mut uploaded = Vec::new();
    for _ in 0..3 {
        uploaded.push(upload_png(&app, png(24, 16)).await);
    }
    db.execute(
        "insert into processed_images (original_data) \
         select case when g % 3 = 0 then '\\x00ff'::bytea else $1 end from generate_series(1, 9) g",
        &[&png(16, 16)],
    )
    .await
    .expect("sql insert");
    assert_counters_exact(&db, "while the worker runs").await;
    wait_idle(&db).await;
    let done = assert_counters_exact(&db, "after the worker").await;
    assert_eq!(done, vec![0, 0, 9, 3], "9 decodable rows completed, 3 failed");

    // Retry (completed -> pending, processed again) and delete through the API.
    let res = app
        .call(
            reqwest::Method::POST,
            &format!("/api/images/{}/retry", uploaded[0]),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
    let res = app
        .call(reqwest::Method::DELETE, &format!("/api/images/{}", uploaded[1]))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    wait_idle(&db).await;
    assert_counters_exact(&db, "after a retry and a delete").await;

    // Plain SQL: status changes, deletes, rows inserted with a status, and a rolled-back
    // savepoint inside a transaction with several statements.
    db.batch_execute(
        "update processed_images set status = 'failed' \
             where id = (select id from processed_images where status = 'completed' limit 1);
         delete from processed_images where status = 'failed' and error_code = 'corrupt_image' \
             and id = (select id from processed_images where error_code = 'corrupt_image' limit 1);
         insert into processed_images (original_data, status, processed_at) \
             select '\\x00', 'completed', now() from generate_series(1, 5);
         begin;
         update processed_images set status = 'processing', claimed_by = 'sql', \
             lease_expires_at = now() + interval '1 hour' where status = 'completed';
         savepoint s;
         delete from processed_images;
         rollback to s;
         update processed_images set status = 'failed' where claimed_by = 'sql' and status = 'processing' \
             and id in (select id from processed_images where claimed_by = 'sql' limit 2);
         commit;",
    )
    .await
    .expect("sql writes");
    let mixed = assert_counters_exact(&db, "after SQL writes").await;
    assert!(mixed[1] > 0, "rows left processing by SQL: {mixed:?}");

    // /api/stats says what count(*) says.
    let stats = app.get_json("/api/stats").await;
    let from_api: Vec<i64> = ["pending", "processing", "completed", "failed"]
        .iter()
        .map(|s| stats["counts"][*s].as_i64().expect("count"))
        .collect();
    assert_eq!(from_api, mixed, "/api/stats: {stats}");
    assert_eq!(stats["queue_depth"].as_i64(), Some(mixed[0] + mixed[1]));
    // 9 + 3 completions by the worker, +1 for the retried upload; rows inserted already
    // completed are not throughput.
    assert_eq!(stats["completed_last_minute"].as_i64(), Some(10), "{stats}");

    // TRUNCATE resets everything, and counting resumes from zero.
    db.batch_execute(
        "update processed_images set status = 'failed', claimed_by = null where claimed_by = 'sql';
         truncate processed_images;",
    )
    .await
    .expect("truncate");
    assert_eq!(
        assert_counters_exact(&db, "after truncate").await,
        vec![0, 0, 0, 0]
    );
    let stats = app.get_json("/api/stats").await;
    assert_eq!(stats["completed_last_minute"].as_i64(), Some(0), "{stats}");
    upload_png(&app, png(8, 8)).await;
    wait_idle(&db).await;
    assert_eq!(
        assert_counters_exact(&db, "after truncate and an upload").await,
        vec![0, 0, 1, 0]
    );
    app.stop().await;
}

/// Eight connections writing at once (multi-row inserts, status changes, deletes, in
/// transactions of several statements, read committed and repeatable read), while the counters are compared with `count(*)` in one
/// snapshot over and over. No worker: the writers are the only ones changing rows.
#[tokio::test]
async fn counters_stay_exact_with_concurrent_writers() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let url = url.clone();
        writers.spawn(async move {
            let db = db::connect(&url).await.expect("connect");
            for i in 0..40 {
                let statuses = ["pending", "processing", "completed", "failed"];
                let (from, to) = (statuses[(w + i) % 4], statuses[(w + i + 1) % 4]);
                // Half the writers in REPEATABLE READ: the counters must not make them fail.
                let isolation = if w % 2 == 1 {
                    " isolation level repeatable read"
                } else {
                    ""
                };
                db.batch_execute(&format!(
                    "begin{isolation};
                     insert into processed_images (original_data, status, filename) \
                         select '\\x00', '{from}', 'w{w}' from generate_series(1, {n});
                     update processed_images set status = '{to}' \
                         where id in (select id from processed_images where filename = 'w{w}' \
                                      and status = '{from}' limit 2);
                     delete from processed_images \
                         where id in (select id from processed_images where filename = 'w{w}' limit 1);
                     commit;",
                    n = 1 + i % 5
                ))
                .await
                .expect("writer transaction");
            }
        });
    }
    let reader = db::connect(&url).await.expect("connect");
    let mut compared = 0;
    while !writers.is_empty() {
        assert_counters_exact(&reader, "while 8 connections write").await;
        compared += 1;
        while let Some(done) = writers.try_join_next() {
            done.expect("writer task");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let end = assert_counters_exact(&reader, "after the writers").await;
    assert_eq!(end.iter().sum::<i64>(), 8 * (40 * 3 - 40), "rows left: {end:?}");
    assert!(compared > 1, "the counters were compared while writers ran");
    // The writers spread over slots rather than queueing on one counter row.
    let slots: i64 = reader
        .query_one(
            "select count(*) from processed_images_counts \
             where (pending, processing, completed, failed) <> (0, 0, 0, 0)",
            &[],
        )
        .await
        .expect("slots")
        .get(0);
    assert!(slots > 1, "every writer used the same counter slot");
}

/// The migration that adds the counters starts them from the rows already in the table
/// (inserted here under the migrations before it, which had no counters).
#[tokio::test]
async fn the_counters_migration_counts_existing_rows() {
    let test_db = cluster().await.empty_database().await;
    let mut client = db::connect(&test_db.url).await.expect("connect");
    let before = migrate::MIGRATIONS.iter().take_while(|m| m.1 != "table_health");
    client
        .batch_execute(
            "create table schema_migrations (version integer primary key, name text not null, \
             applied_at timestamptz not null default now())",
        )
        .await
        .expect("schema_migrations");
    for (version, name, sql) in before {
        client.batch_execute(sql).await.expect("an earlier migration");
        client
            .execute(
                "insert into schema_migrations (version, name) values ($1, $2)",
                &[version, name],
            )
            .await
            .expect("record it");
    }
    client
        .batch_execute(
            "insert into processed_images (original_data, status) \
             select '\\x00', (array['pending', 'processing', 'completed', 'failed'])[1 + g % 4] \
             from generate_series(0, 999) g where g % 4 <> 0 or g < 100",
        )
        .await
        .expect("rows under the old schema");
    migrate::run(&mut client).await.expect("migrate");
    assert_eq!(
        assert_counters_exact(&client, "right after the migration").await,
        vec![25, 250, 250, 250]
    );
    client
        .batch_execute("delete from processed_images where status = 'processing'")
        .await
        .expect("delete");
    assert_counters_exact(&client, "after a delete").await;
}

/// A heartbeat changes only `lease_expires_at`, which no index holds, so PostgreSQL updates the
/// row in place on its page (HOT): no index entries, and the old versions are pruned as they die.
#[tokio::test]
async fn heartbeats_are_hot_updates() {
    let test_db = fresh_database().await;
    // The worker's own kind of connection (asynchronous commit), as heartbeats use.
    let pool = db::worker_pool(&test_db.url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    let indexed: Vec<String> = client
        .query(
            "select pg_get_indexdef(indexrelid) from pg_index \
             where indrelid = 'processed_images'::regclass \
               and pg_get_indexdef(indexrelid) like '%lease_expires_at%'",
            &[],
        )
        .await
        .expect("indexes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(indexed.is_empty(), "an index holds lease_expires_at: {indexed:?}");

    // A one-byte original keeps the row small: should another test's snapshot hold back
    // pruning meanwhile, all the versions still fit on the row's page, which is what HOT
    // needs (a real row's blobs are out of line, and pruning keeps up).
    client
        .execute(
            "insert into processed_images (original_data) values ('\\x00')",
            &[],
        )
        .await
        .expect("insert");
    let lease = Duration::from_secs(30);
    let job = jobs::claim_jobs(&client, "hot-test", 1, lease, i64::MAX)
        .await
        .expect("claim")
        .pop()
        .expect("a job");
    let fence = jobs::Fence {
        id: job.id,
        worker: "hot-test",
        claim: job.claim,
        variant: None,
    };
    let stats = "select n_tup_upd, n_tup_hot_upd from pg_stat_user_tables \
                 where relid = 'processed_images'::regclass";
    // Statistics reach the shared counters when a backend goes idle; force that, then read.
    client
        .execute("select pg_stat_force_next_flush()", &[])
        .await
        .expect("flush");
    let before = client.query_one(stats, &[]).await.expect("stats");
    let (upd0, hot0): (i64, i64) = (before.get(0), before.get(1));
    const HEARTBEATS: i64 = 30;
    for _ in 0..HEARTBEATS {
        assert!(jobs::renew_lease(&client, &fence, lease).await.expect("renew"));
    }
    client
        .execute("select pg_stat_force_next_flush()", &[])
        .await
        .expect("flush");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let row = client.query_one(stats, &[]).await.expect("stats");
        let seen = (row.get::<_, i64>(0) - upd0, row.get::<_, i64>(1) - hot0);
        if seen.0 >= HEARTBEATS || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        seen,
        (HEARTBEATS, HEARTBEATS),
        "(updates, HOT updates) over {HEARTBEATS} heartbeats"
    );
}

/// Each list shape is its own statement now; walk the one with a status and a cursor, over
/// rows that share an `uploaded_at` (the id breaks the tie), and get every row once, in order.
#[tokio::test]
async fn pages_filtered_by_status_walk_every_row_once_newest_first() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let db = app.db().await;
    db.batch_execute(
        "insert into processed_images (original_data, status, uploaded_at) \
         select '\\x00', case when g % 3 = 0 then 'completed' else 'failed' end, \
                timestamptz '2024-01-01' + make_interval(secs => g / 2) \
         from generate_series(1, 15) g",
    )
    .await
    .expect("rows");
    let want: Vec<String> = db
        .query(
            "select id::text from processed_images where status = 'failed' \
             order by uploaded_at desc, id desc",
            &[],
        )
        .await
        .expect("expected order")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(want.len(), 10);
    let mut seen = Vec::new();
    let mut path = "/api/images?status=failed&limit=3".to_owned();
    loop {
        let page = app.get_json(&path).await;
        for img in page["images"].as_array().expect("images") {
            assert_eq!(img["status"], "failed", "{img}");
            seen.push(img["id"].as_str().expect("id").to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/images?status=failed&limit=3&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, want);
    app.stop().await;
}
