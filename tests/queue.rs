//! The queue across processes: several worker processes on one database, missed
//! notifications, concurrent migrations.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::*;
use image_processor::config::Role;

#[tokio::test]
async fn three_worker_processes_complete_a_thousand_jobs_each_exactly_once() {
    let url = fresh_database().await;
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
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut per_worker = Vec::new();
    for w in &workers {
        let ids = completed_ids(&w.log_text());
        per_worker.push(ids.len());
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
    }
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

#[tokio::test]
async fn jobs_inserted_while_no_worker_listens_are_processed_on_start() {
    let url = fresh_database().await;
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
    let cluster = cluster().await;
    let name = format!("empty_{}", uuid::Uuid::new_v4().simple());
    let admin = image_processor::db::connect(&cluster.pg.url())
        .await
        .expect("connect");
    admin
        .batch_execute(&format!("create database {name}"))
        .await
        .expect("create db");
    let url = cluster.pg.url_for(&name);
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
