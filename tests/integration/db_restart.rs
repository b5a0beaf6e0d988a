//! PostgreSQL restarted mid-run, on a cluster of its own (the suite's other tests share one
//! and would feel the restart too): every job ends completed, none twice, workers and
//! API recover unaided, and requests during the outage get a quick 503.

use std::time::{Duration, Instant};

use crate::common::*;
use image_processor::db;

#[tokio::test]
async fn postgres_restarted_mid_run_loses_nothing_and_everyone_recovers() {
    let cluster = Cluster::start().await;
    let test_db = cluster.fresh_database().await;
    let url = test_db.url.clone();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let api = Proc::spawn("api", &url, &[("LISTEN_ADDR", listen.as_str())]);
    let slow = [
        ("WORKER_TEST_HOOKS", "1"),
        ("WORKER_TEST_DELAY_MS", "30"),
        ("WORKER_THREADS", "2"),
    ];
    let workers = [
        Proc::spawn("worker", &url, &slow),
        Proc::spawn("worker", &url, &slow),
    ];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    assert!(
        eventually(Duration::from_secs(30), || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await,
        "api not ready:\n{}",
        api.log_text()
    );

    let client = db::connect(&url).await.expect("connect");
    const JOBS: i64 = 300;
    insert_jobs_of(&client, &png(96, 64), JOBS as i32).await;
    drop(client);
    assert!(
        eventually(Duration::from_secs(20), || async {
            let c = db::connect(&url).await.expect("connect");
            counts(&c).await.get("completed").copied().unwrap_or(0) > 10
        })
        .await,
        "processing never started"
    );

    // Stop the database with jobs in flight.
    cluster.pg.pg_ctl(&["stop", "-m", "fast"]).expect("pg_ctl stop");
    let down_at = Instant::now();

    // During the outage: a quick 503 with a JSON error, never a hang or a 500.
    let started = Instant::now();
    let res = http
        .post(format!("{base}/api/images"))
        .header("content-type", "image/png")
        .body(png(10, 10))
        .send()
        .await
        .expect("upload during outage");
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_error("upload during outage", &body, "database_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "503 took {:?}",
        started.elapsed()
    );
    let res = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz during outage");
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.pg.pg_ctl(&["start"]).expect("pg_ctl start");
    let up_at = Instant::now();
    println!("database down for {:.1} s", (up_at - down_at).as_secs_f64());

    // Everything resumes without a restart.
    let client = db::connect(&url).await.expect("reconnect");
    let before: i64 = counts(&client).await.get("completed").copied().unwrap_or(0);
    let mut first_after = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    let all = loop {
        let done = counts(&client).await.get("completed").copied().unwrap_or(0);
        if done > before && first_after.is_none() {
            first_after = Some(up_at.elapsed());
        }
        if done == JOBS || Instant::now() > deadline {
            break done == JOBS;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(all, "not all jobs completed: {:?}", counts(&client).await);
    println!(
        "database back -> first job completed in {:.2} s; all {JOBS} completed {:.1} s after restart",
        first_after.unwrap_or_default().as_secs_f64(),
        up_at.elapsed().as_secs_f64()
    );
    let seen = logged_completions(&workers, JOBS as usize).await;
    assert_eq!(seen.len() as i64, JOBS);
    assert!(seen.values().all(|&n| n == 1), "a job was completed twice");

    // The API serves again.
    assert!(
        eventually(Duration::from_secs(20), || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await
    );
    let res = http
        .post(format!("{base}/api/images"))
        .header("content-type", "image/png")
        .body(png(10, 10))
        .send()
        .await
        .expect("upload after outage");
    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
}
