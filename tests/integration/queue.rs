//! The queue across processes: several worker processes on one database, missed
//! notifications, concurrent migrations.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::*;
use image_processor::config::Role;

#[tokio::test]
async fn three_worker_processes_complete_a_thousand_jobs_each_exactly_once() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let workers: Vec<Proc> = (0..3)
        .map(|_| Proc::spawn("worker", &url, &[("WORKER_THREADS", "2")]))
        .collect();
    let db = image_processor::db::connect(&url).await.expect("connect");
    let small = png(48, 32);
    const JOBS: i64 = 1000;
    // Inserted in batches while the workers run, so both NOTIFY and the sweep get exercised.
    for _ in 0..(JOBS / 50) {
        db.execute(
            "insert into processed_images (original_data) select $1 from generate_series(1, 50)",
            &[&small],
        )
        .await
        .expect("insert batch");
    }
    let all_done = wait_completed(&db, JOBS, Duration::from_secs(120)).await;
    assert!(all_done, "not every job completed: {:?}", counts(&db).await);

    // Each row was claimed once, and completed by exactly one worker process.
    let reclaimed: i64 = db
        .query_one("select count(*) from processed_images where attempts <> 1", &[])
        .await
        .expect("attempts")
        .get(0);
    assert_eq!(reclaimed, 0, "some rows were claimed more than once");
    let seen = logged_completions(&workers, JOBS as usize).await;
    let per_worker: Vec<usize> = workers
        .iter()
        .map(|w| completed_ids(&w.log_text()).len())
        .collect();
    println!("claims completed per worker process: {per_worker:?}");
    assert_eq!(
        seen.len() as i64,
        JOBS,
        "completion log lines cover {} of {JOBS} jobs",
        seen.len()
    );
    assert!(seen.values().all(|&n| n == 1), "a job was completed twice");
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() >= 2,
        "load went to one worker only: {per_worker:?}"
    );
}

#[tokio::test]
async fn jobs_whose_notification_never_arrived_are_found_by_the_sweep() {
    let app = spawn_app_with(Role::Worker, &[]).await;
    let db = app.db().await;
    // No NOTIFY at all for these rows: only the fallback sweep can find them.
    db.batch_execute("alter table processed_images disable trigger processed_images_wake_on_insert")
        .await
        .expect("disable trigger");
    let bytes = jpeg(64, 64);
    db.execute(
        "insert into processed_images (original_data) select $1 from generate_series(1, 5)",
        &[&bytes],
    )
    .await
    .expect("insert");
    let done = wait_completed(&db, 5, Duration::from_secs(20)).await;
    assert!(
        done,
        "sweep did not pick up un-notified jobs: {:?}",
        counts(&db).await
    );
    app.stop().await;
}

/// API uploads notify after their commit (`sql/0003`), plain SQL inserts inside their
/// transaction; both must reach the workers and the event stream without the timer sweep.
#[tokio::test]
async fn uploads_and_sql_inserts_both_wake_the_workers_and_the_event_stream() {
    let api = spawn_app_with(Role::Api, &[]).await;
    // The worker's timer sweep is an hour away: only a notification can wake it in time.
    let worker = spawn_app_on(Role::Worker, api.db_url.clone(), &[("sweep-secs", "3600")]).await;
    let db = api.db().await;
    let upload = |name: &str| {
        api.http
            .post(api.url(&format!("/api/images?filename={name}")))
            .header("content-type", "image/jpeg")
            .body(jpeg(64, 48))
            .send()
    };
    // The worker sweeps once after it starts listening; once this job is done, that is behind us.
    assert_eq!(upload("warm-up.jpg").await.expect("upload").status(), 202);
    assert!(
        wait_completed(&db, 1, Duration::from_secs(30)).await,
        "warm-up job not done: {:?}",
        counts(&db).await
    );

    let mut events = api
        .http
        .get(api.url("/api/events"))
        .send()
        .await
        .expect("event stream");
    assert_eq!(events.status(), 200);
    let res = upload("after-commit.jpg").await.expect("upload");
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut seen = String::new();
    let pending = format!(r#"{{"id":"{id}","status":"pending"}}"#);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !seen.contains(&pending) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no pending event for {id} in 15 s; stream so far:\n{seen}"))
            .expect("event stream read");
        let chunk = chunk.unwrap_or_else(|| panic!("event stream ended; so far:\n{seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        wait_completed(&db, 2, Duration::from_secs(20)).await,
        "the upload was not picked up without the sweep: {:?}",
        counts(&db).await
    );

    db.execute(
        "insert into processed_images (original_data) values ($1)",
        &[&jpeg(32, 32)],
    )
    .await
    .expect("plain SQL insert");
    assert!(
        wait_completed(&db, 3, Duration::from_secs(20)).await,
        "the SQL insert was not picked up without the sweep: {:?}",
        counts(&db).await
    );
    worker.stop().await;
    api.stop().await;
}

#[tokio::test]
async fn jobs_inserted_while_no_worker_listens_are_processed_on_start() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = image_processor::db::connect(&url).await.expect("connect");
    let bytes = png(30, 30);
    db.execute(
        "insert into processed_images (original_data) select $1 from generate_series(1, 10)",
        &[&bytes],
    )
    .await
    .expect("insert");
    // The notifications went to nobody; a worker started now sweeps on connect.
    let app = spawn_app_on(Role::Worker, url, &[("sweep-secs", "3600")]).await;
    let done = wait_completed(&db, 10, Duration::from_secs(20)).await;
    assert!(done, "jobs left behind: {:?}", counts(&db).await);
    app.stop().await;
}

#[tokio::test]
async fn replicas_migrating_at_the_same_moment_apply_each_migration_once() {
    let empty = cluster().await.empty_database().await;
    let url = empty.url.clone();
    let mut procs: Vec<Proc> = (0..4).map(|_| Proc::spawn("migrate", &url, &[])).collect();
    for p in &mut procs {
        let status = p
            .wait_exit(Duration::from_secs(60))
            .expect("migrate did not exit");
        assert!(status.success(), "migrate failed: {}", p.log_text());
    }
    let db = image_processor::db::connect(&url).await.expect("connect");
    let versions: Vec<i32> = db
        .query("select version from schema_migrations", &[])
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let unique: HashSet<_> = versions.iter().collect();
    assert_eq!(versions.len(), unique.len());
    assert_eq!(versions.len(), image_processor::db::migrate::MIGRATIONS.len());
}

/// A single upload sends its notifications pipelined behind its INSERT on the same connection
/// (`images::insert_image_notified`). When the database refuses the INSERT, the upload gets a
/// clear error, the notification that followed it harms nothing, and the same connection (the
/// pool hands out the one used last) goes on serving uploads that a worker picks up at once.
#[tokio::test]
async fn a_refused_single_upload_leaves_its_connection_serving_and_waking_workers() {
    let api = spawn_app_with(Role::Api, &[]).await;
    let worker = spawn_app_on(Role::Worker, api.db_url.clone(), &[("sweep-secs", "3600")]).await;
    let db = api.db().await;
    refuse_uploads_named(&db, "refused.png").await;
    let upload = |name: &'static str| {
        api.http
            .post(api.url(&format!("/api/images?filename={name}")))
            .header("content-type", "image/png")
            .body(png(24, 16))
            .send()
    };
    for round in 0..3 {
        let refused = upload("refused.png").await.expect("upload");
        let status = refused.status();
        let body: serde_json::Value = refused.json().await.expect("an error body");
        assert!(
            status.is_server_error() && body["error"].is_object(),
            "round {round}: a refused INSERT answered {status} {body}"
        );
        let accepted = upload("accepted.png").await.expect("upload");
        assert_eq!(accepted.status(), 202, "round {round}");
        assert!(
            wait_completed(&db, round + 1, Duration::from_secs(20)).await,
            "round {round}: the upload after a refused one was not picked up without the sweep: {:?}",
            counts(&db).await
        );
    }
    let rows: i64 = db
        .query_one("select count(*) from processed_images", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 3, "a refused upload left a row");
    worker.stop().await;
    api.stop().await;
}
