//! Faults, caused for real: workers killed with SIGKILL or stopped with SIGTERM mid-job, a
//! decoder crash, write-backs the database refuses (retried with backoff within the claim),
//! expired claims retried with backoff, stale writers fenced off, and upload backpressure.
//! Nothing lost, nothing done twice.

use std::time::{Duration, Instant};

use crate::common::*;
use image_processor::config::Role;
use image_processor::db::{self, jobs};
use nix::sys::signal::Signal;

/// Worker env that makes every job take `ms` (see `worker::job::test_hooks`).
fn slow(ms: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("WORKER_TEST_HOOKS", "1"), ("WORKER_TEST_DELAY_MS", ms)]
}

async fn processing_by(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "select claimed_by from processed_images where status = 'processing'",
            &[],
        )
        .await
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn worker_killed_mid_job_is_taken_over_after_lease() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let mut env = slow("60000");
    env.push(("LEASE_SECS", "3"));
    let victim = Proc::spawn("worker", &url, &env);
    insert_jobs(&db, 1).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            processing_by(&db).await.len() == 1
        })
        .await,
        "the job was never claimed:\n{}",
        victim.log_text()
    );
    victim.signal(Signal::SIGKILL);
    let killed_at = Instant::now();
    let rescuer = Proc::spawn("worker", &url, &[("LEASE_SECS", "3")]);
    let done = wait_completed(&db, 1, Duration::from_secs(30)).await;
    let took = killed_at.elapsed();
    assert!(
        done,
        "job not taken over: {:?}\n{}",
        counts(&db).await,
        rescuer.log_text()
    );
    println!(
        "worker SIGKILLed -> job completed elsewhere in {:.1} s (LEASE_SECS=3)",
        took.as_secs_f64()
    );
    // Lease 3 s + sweep 1 s + processing, with margin for a busy machine.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let row = db
        .query_one("select attempts, lost_leases from processed_images", &[])
        .await
        .expect("row");
    let (attempts, lost): (i32, i32) = (row.get(0), row.get(1));
    assert_eq!(
        (attempts, lost),
        (1, 1),
        "the killed claim is not charged (the job may have died of a neighbour); the rescuer's is"
    );
}

#[tokio::test]
async fn a_stale_claim_holder_cannot_overwrite_the_new_claim() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::pool(&url, 2).expect("pool");
    let db = pool.get().await.expect("connection");
    insert_jobs(&db, 1).await;
    let short = Duration::from_millis(100);
    let old = jobs::claim_jobs(&db, "old-worker", 1, short, i64::MAX)
        .await
        .expect("claim")
        .remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(jobs::reap_expired(&db, 5).await.expect("reap"), 1);
    assert!(
        jobs::claim_jobs(&db, "new-worker", 1, Duration::from_secs(30), i64::MAX)
            .await
            .expect("claim")
            .is_empty(),
        "a row that lost a lease must be claimed alone, not with the rest"
    );
    let new = jobs::claim_lost(&db, "new-worker", Duration::from_secs(30), i64::MAX)
        .await
        .expect("claim")
        .expect("the taken-back row");
    assert_eq!(new.attempt, old.attempt, "a first lost lease is not charged");
    assert!(new.lost_before && new.claim > old.claim);

    let old_fence = jobs::Fence {
        id: old.id,
        worker: "old-worker",
        claim: old.claim,
        variant: None,
    };
    let new_fence = jobs::Fence {
        id: new.id,
        worker: "new-worker",
        claim: new.claim,
        variant: None,
    };
    assert!(
        !jobs::renew_lease(&db, &old_fence, short).await.expect("renew"),
        "stale lease renewed"
    );
    assert!(
        !jobs::fail_if_still_owner(
            &db,
            &old_fence,
            &jobs::Failure {
                code: "corrupt_image",
                message: "late".into(),
            }
        )
        .await
        .expect("fail"),
        "stale fail applied"
    );
    let done = crate::reliability::late_completion();
    assert!(
        !jobs::complete_if_still_owner(&db, &old_fence, &done)
            .await
            .expect("complete"),
        "stale write applied"
    );
    let status: String = db
        .query_one("select status from processed_images", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(status, "processing");
    assert!(jobs::complete_if_still_owner(&db, &new_fence, &done)
        .await
        .expect("complete"));
}

/// The reaper's side of a retry, driven by hand: a first lost lease goes straight back to the
/// queue uncharged (its process may have died of another job); after that the row runs alone,
/// and each lease it loses alone is charged and followed by a growing delay, until it is failed
/// after `max_attempts`. The failures that lead there, for real, are in `stranded`.
#[tokio::test]
async fn a_claim_whose_lease_keeps_expiring_is_retried_with_growing_delays_then_failed() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::pool(&url, 2).expect("pool");
    let db = pool.get().await.expect("connection");
    insert_jobs(&db, 1).await;
    let max_attempts = 3;
    let lease = Duration::from_millis(50);
    let first = jobs::claim_jobs(&db, "flaky", 1, lease, i64::MAX)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(jobs::reap_expired(&db, max_attempts).await.expect("reap"), 1);
    let row = db
        .query_one(
            "select status, attempts, run_after <= now() from processed_images",
            &[],
        )
        .await
        .expect("row");
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, i32>(1),
            row.get::<_, bool>(2)
        ),
        ("pending".to_owned(), 0, true),
        "a first loss is neither charged nor delayed"
    );
    let mut delays = Vec::new();
    for attempt in 1..=max_attempts {
        db.execute(
            "update processed_images set run_after = now() where status = 'pending'",
            &[],
        )
        .await
        .expect("skip the wait");
        let job = jobs::claim_lost(&db, "flaky", lease, i64::MAX)
            .await
            .expect("claim")
            .unwrap_or_else(|| panic!("not claimable on attempt {attempt}"));
        assert_eq!(job.attempt, attempt);
        tokio::time::sleep(Duration::from_millis(150)).await;
        // Measured from a moment just before the reap, so a stalled machine can only make the
        // delay look longer, never shorter.
        let before: chrono::DateTime<chrono::Utc> = db
            .query_one("select clock_timestamp()", &[])
            .await
            .expect("clock")
            .get(0);
        assert_eq!(jobs::reap_expired(&db, max_attempts).await.expect("reap"), 1);
        let row = db
            .query_one(
                "select status, extract(epoch from run_after - $1::timestamptz)::float8, error \
                 from processed_images",
                &[&before],
            )
            .await
            .expect("row");
        let status: String = row.get(0);
        let error: Option<String> = row.get(2);
        assert!(error.is_some_and(|e| e.contains("lease expired")));
        if attempt < max_attempts {
            assert_eq!(status, "pending");
            delays.push(row.get::<_, f64>(1));
        } else {
            assert_eq!(status, "failed", "still retried after {max_attempts} attempts");
        }
    }
    println!("backoff delays before attempts 2 and 3: {delays:?}");
    // Attempt n waits 2^(n-1) s × jitter in [0.5, 1].
    // Lower bounds are exact; upper bounds allow for a busy machine between the two statements.
    assert!(delays[0] >= 0.5 && delays[0] <= 1.0 + 3.0, "{delays:?}");
    assert!(delays[1] >= 1.0 && delays[1] <= 2.0 + 3.0, "{delays:?}");
}

/// Makes the database refuse the first `n` attempts to store a result, with SQLSTATE `code`.
/// A sequence counts every attempt: unlike the refused update, `nextval` is not rolled back.
async fn refuse_first_write_backs(db: &tokio_postgres::Client, n: i64, code: &str) {
    db.batch_execute(&format!(
        "create sequence write_backs;
         create function refuse_write_back() returns trigger language plpgsql as $$
         begin
             if nextval('write_backs') <= {n} then
                 raise exception 'write-back refused by the test' using errcode = '{code}';
             end if;
             return new;
         end $$;
         create trigger refuse_write_back before update on processed_images
             for each row when (new.status = 'completed') execute function refuse_write_back();"
    ))
    .await
    .expect("install the refusing trigger");
}

/// Attempts to store a result so far, refused or not.
async fn write_backs(db: &tokio_postgres::Client) -> i64 {
    db.query_one("select last_value from write_backs", &[])
        .await
        .expect("write-back count")
        .get(0)
}

async fn attempts(db: &tokio_postgres::Client) -> i32 {
    db.query_one("select attempts from processed_images", &[])
        .await
        .expect("row")
        .get(0)
}

/// A result the database will not store (an error it does not call unavailability) is written
/// again with backoff within the same claim (issue 15, item 8), not left to the lease.
#[tokio::test]
async fn a_result_the_database_refuses_is_written_again_with_backoff() {
    let app = spawn_app_with(Role::Worker, &[("lease-secs", "30")]).await;
    let db = app.db().await;
    refuse_first_write_backs(&db, 1, "P0001").await;
    insert_jobs(&db, 1).await;
    let done = wait_completed(&db, 1, Duration::from_secs(20)).await;
    assert!(done, "the write-back was not retried: {:?}", counts(&db).await);
    assert_eq!(write_backs(&db).await, 2, "one refused write-back, one stored");
    assert_eq!(
        attempts(&db).await,
        1,
        "retried within the claim, not claimed again"
    );
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let unwritten = metric_value(
        &text,
        r#"image_processor_jobs_total{outcome="unwritten",family="resize"}"#,
    );
    assert!(
        unwritten.is_none_or(|n| n == 0.0),
        "the stored result was counted as unwritten:\n{text}"
    );
    app.stop().await;
}

/// While the database says it is unavailable (here: out of connections, SQLSTATE 53300) the
/// worker keeps its claim and retries the write-back until it lands: one attempt, no lease.
#[tokio::test]
async fn a_write_back_during_a_database_outage_is_retried_until_it_lands() {
    // The lease is far longer than the test: only the write-back's own retries can finish it.
    let app = spawn_app_with(Role::Worker, &[("lease-secs", "60")]).await;
    let db = app.db().await;
    refuse_first_write_backs(&db, 3, "53300").await;
    insert_jobs(&db, 1).await;
    let done = wait_completed(&db, 1, Duration::from_secs(20)).await;
    assert!(done, "the write-back was not retried: {:?}", counts(&db).await);
    assert_eq!(write_backs(&db).await, 4, "three refused write-backs, one stored");
    assert_eq!(
        attempts(&db).await,
        1,
        "retried within the claim, not claimed again"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_decoder_crash_fails_that_job_and_the_worker_goes_on() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let worker = Proc::spawn("worker", &url, &slow("0"));
    let poison = b"IMAGE-PROCESSOR-TEST-PANIC and then some".to_vec();
    let id: uuid::Uuid = db
        .query_one(
            "insert into processed_images (original_data) values ($1) returning id",
            &[&poison],
        )
        .await
        .expect("insert poison")
        .get(0);
    insert_jobs(&db, 3).await;
    let done = eventually(Duration::from_secs(30), || async {
        let c = counts(&db).await;
        c.get("completed").copied() == Some(3) && c.get("failed").copied() == Some(1)
    })
    .await;
    assert!(done, "{:?}\n{}", counts(&db).await, worker.log_text());
    let row = db
        .query_one("select status, error from processed_images where id = $1", &[&id])
        .await
        .expect("row");
    assert_eq!(row.get::<_, String>(0), "failed");
    assert!(row
        .get::<_, Option<String>>(1)
        .is_some_and(|e| e.contains("crashed")));
    let mut worker = worker;
    assert!(
        worker.child.try_wait().expect("wait").is_none(),
        "the worker died"
    );
}

#[tokio::test]
async fn sigterm_releases_in_flight_jobs_to_another_worker_at_once() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let mut env = slow("60000");
    env.extend([
        ("SHUTDOWN_GRACE_SECS", "1"),
        ("WORKER_THREADS", "2"),
        ("LEASE_SECS", "60"),
    ]);
    let mut leaving = Proc::spawn("worker", &url, &env);
    insert_jobs(&db, 2).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            processing_by(&db).await.len() == 2
        })
        .await,
        "jobs were not claimed:\n{}",
        leaving.log_text()
    );
    let staying = Proc::spawn("worker", &url, &[("LEASE_SECS", "60")]);
    leaving.signal(Signal::SIGTERM);
    let asked = Instant::now();
    let status = leaving
        .wait_exit(Duration::from_secs(20))
        .expect("did not exit after SIGTERM");
    assert!(status.success(), "exit {status}:\n{}", leaving.log_text());
    let done = wait_completed(&db, 2, Duration::from_secs(20)).await;
    let took = asked.elapsed();
    assert!(
        done,
        "released jobs not picked up: {:?}\n{}",
        counts(&db).await,
        staying.log_text()
    );
    println!(
        "SIGTERM -> released jobs completed by the other worker in {:.1} s",
        took.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(20),
        "took {took:?}: looks like the lease, not the release"
    );
    let attempts: Vec<i32> = db
        .query("select attempts from processed_images", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        attempts,
        vec![1, 1],
        "a released claim must not count as an attempt"
    );
}

#[tokio::test]
async fn uploads_beyond_the_concurrency_limit_get_503_with_retry_after() {
    let app = spawn_app_with(
        image_processor::config::Role::Api,
        &[("max-concurrent-uploads", "1")],
    )
    .await;
    // The first upload trickles in and holds the only slot.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let slow = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url("/api/images"));
        async move {
            http.post(url)
                .header("content-type", "image/png")
                .body(body)
                .send()
                .await
        }
    });
    tx.send(Ok(png(10, 10)[..20].to_vec())).await.expect("send");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let res = app
        .http
        .post(app.url("/api/images"))
        .header("content-type", "image/png")
        .body(png(10, 10))
        .send()
        .await
        .expect("second upload");
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.expect("json");
    assert_error("second upload", &body, "overloaded");
    drop(tx);
    let _ = slow.await;
    // The slot is free again.
    let res = app
        .http
        .post(app.url("/api/images"))
        .header("content-type", "image/png")
        .body(png(10, 10))
        .send()
        .await
        .expect("third upload");
    assert_eq!(res.status(), reqwest::StatusCode::ACCEPTED);
}
