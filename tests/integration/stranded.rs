//! Issue 15, items 1, 2, 3 and 5: jobs that never end, jobs stranded by a killed worker behind a
//! backlog, a job that kills its own process, oversized rows from SQL, and thread slots held
//! until the result is written. Real worker processes (the hang and abort hooks need a process
//! of their own), real PostgreSQL, every wait bounded.

use std::time::{Duration, Instant};

use crate::common::*;
use image_processor::db;
use nix::sys::signal::Signal;

/// The worker's test hooks: `IMAGE-PROCESSOR-TEST-HANG` hangs the job's thread for an hour,
/// `IMAGE-PROCESSOR-TEST-ABORT` aborts the process (see `worker::job::test_hooks`).
const HOOKS: (&str, &str) = ("WORKER_TEST_HOOKS", "1");

async fn insert_blob(client: &tokio_postgres::Client, bytes: &[u8]) -> uuid::Uuid {
    client
        .query_one(
            "insert into processed_images (original_data) values ($1) returning id",
            &[&bytes],
        )
        .await
        .expect("insert")
        .get(0)
}

/// `(status, error_code, attempts, lost_leases)` of one row.
async fn row_state(client: &tokio_postgres::Client, id: uuid::Uuid) -> (String, Option<String>, i32, i32) {
    let row = client
        .query_one(
            "select status, error_code, attempts, lost_leases from processed_images where id = $1",
            &[&id],
        )
        .await
        .expect("row");
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

async fn status_of(client: &tokio_postgres::Client, id: uuid::Uuid) -> String {
    row_state(client, id).await.0
}

/// A worker process whose probes listen on a known port.
fn worker_with_port(url: &str, env: &[(&str, &str)]) -> (Proc, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("LISTEN_ADDR", &addr));
    (Proc::spawn("worker", url, &env), port)
}

async fn healthz(port: u16) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .expect("GET /healthz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

async fn metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test]
async fn job_past_its_timeout_fails_and_keeps_its_thread_until_it_returns() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let (worker, port) = worker_with_port(&url, &[HOOKS, ("WORKER_THREADS", "1"), ("JOB_TIMEOUT_SECS", "2")]);
    assert!(
        eventually(Duration::from_secs(20), || async {
            reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok()
        })
        .await,
        "the worker never served /healthz:\n{}",
        worker.log_text()
    );
    assert_eq!(healthz(port).await.0, 200);
    let started = Instant::now();
    let hung = insert_blob(&db, b"IMAGE-PROCESSOR-TEST-HANG").await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            status_of(&db, hung).await == "failed"
        })
        .await,
        "the hung job never failed: {:?}\n{}",
        row_state(&db, hung).await,
        worker.log_text()
    );
    let took = started.elapsed();
    let (_, code, _, _) = row_state(&db, hung).await;
    assert_eq!(code.as_deref(), Some("job_timeout"));
    assert!(
        took >= Duration::from_secs(2),
        "failed after {took:?}, before its timeout"
    );
    let error: String = db
        .query_one("select error from processed_images where id = $1", &[&hung])
        .await
        .expect("error")
        .get(0);
    assert!(error.contains("JOB_TIMEOUT_SECS"), "{error}");
    println!(
        "hung job failed job_timeout {:.1} s after its insert (JOB_TIMEOUT_SECS=2)",
        took.as_secs_f64()
    );

    // Its only thread is still busy: /healthz says so, and nothing else is claimed.
    let (status, body) = healthz(port).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "threads_stuck", "{body}");
    assert_eq!(body["stuck_threads"], 1, "{body}");
    let waiting = insert_blob(&db, &png(32, 24)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status_of(&db, waiting).await,
        "pending",
        "a job was claimed though the only thread is stuck"
    );
    let text = metrics(port).await;
    assert_eq!(
        metric_value(&text, "image_processor_worker_threads_stuck"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "image_processor_jobs_total{outcome=\"timed_out\",family=\"resize\"}"
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn one_stuck_thread_of_two_leaves_the_worker_healthy_and_working() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let (worker, port) = worker_with_port(&url, &[HOOKS, ("WORKER_THREADS", "2"), ("JOB_TIMEOUT_SECS", "2")]);
    let hung = insert_blob(&db, b"IMAGE-PROCESSOR-TEST-HANG").await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            status_of(&db, hung).await == "failed"
        })
        .await,
        "the hung job never failed:\n{}",
        worker.log_text()
    );
    insert_jobs(&db, 5).await;
    assert!(
        wait_completed(&db, 5, Duration::from_secs(30)).await,
        "the free thread did not work through the queue: {:?}\n{}",
        counts(&db).await,
        worker.log_text()
    );
    let (status, body) = healthz(port).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stuck_threads"], 1, "{body}");
}

/// A job running when shutdown starts, past its deadline during the grace period, ends `failed`
/// rather than being released to run out its time again on another replica.
#[tokio::test]
async fn job_that_times_out_during_shutdown_is_failed_not_released() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let (mut worker, _) = worker_with_port(
        &url,
        &[
            HOOKS,
            ("WORKER_THREADS", "1"),
            ("JOB_TIMEOUT_SECS", "3"),
            ("SHUTDOWN_GRACE_SECS", "10"),
        ],
    );
    let hung = insert_blob(&db, b"IMAGE-PROCESSOR-TEST-HANG").await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            status_of(&db, hung).await == "processing"
        })
        .await,
        "never claimed:\n{}",
        worker.log_text()
    );
    worker.signal(Signal::SIGTERM);
    let exit = worker.wait_exit(Duration::from_secs(30));
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}:\n{}",
        worker.log_text()
    );
    let (status, code, _, _) = row_state(&db, hung).await;
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("failed", Some("job_timeout"))
    );
}

/// Item 2: a worker SIGKILLed mid-job while the survivor is saturated by a backlog of small
/// jobs. The stranded jobs are taken back when their lease runs out and run before the backlog,
/// within `LEASE_SECS` + 5 s, and the lost claim is not charged to them.
#[tokio::test]
async fn stranded_jobs_do_not_wait_behind_backlog() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let lease = 5;
    let victim = Proc::spawn(
        "worker",
        &url,
        &[
            HOOKS,
            ("WORKER_TEST_DELAY_MS", "600000"),
            ("WORKER_THREADS", "2"),
            ("LEASE_SECS", "5"),
        ],
    );
    insert_jobs(&db, 2).await;
    assert!(
        wait_processing(&db, 2, Duration::from_secs(20)).await,
        "the victim never claimed both jobs:\n{}",
        victim.log_text()
    );
    let stranded: Vec<uuid::Uuid> = db
        .query("select id from processed_images where status = 'processing'", &[])
        .await
        .expect("stranded")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let backlog = 20_000;
    insert_jobs(&db, backlog).await;
    let survivor = Proc::spawn(
        "worker",
        &url,
        &[("WORKER_THREADS", "2"), ("LEASE_SECS", "5"), ("SWEEP_SECS", "5")],
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            counts(&db).await.get("completed").copied().unwrap_or(0) > 100
        })
        .await,
        "the survivor is not working through the backlog:\n{}",
        survivor.log_text()
    );
    victim.signal(Signal::SIGKILL);
    let killed = Instant::now();
    // The victim is dead: its leases are final now (nothing renews them).
    let expires: Option<chrono::DateTime<chrono::Utc>> = db
        .query_one(
            "select max(lease_expires_at) from processed_images where id = any($1)",
            &[&stranded],
        )
        .await
        .expect("lease expiry")
        .get(0);
    let recovered = eventually(Duration::from_secs(90), || async {
        let done: i64 = db
            .query_one(
                "select count(*) from processed_images where id = any($1) and status = 'completed'",
                &[&stranded],
            )
            .await
            .expect("count")
            .get(0);
        done == 2
    })
    .await;
    let took = killed.elapsed();
    assert!(
        recovered,
        "stranded jobs never completed:\n{}",
        survivor.log_text()
    );
    // The phases in the database's own clock, which a loaded machine slows but does not
    // reorder. A first loss sets `run_after` to the moment of the reap.
    let phases = db
        .query_one(
            "select max(run_after) as reaped, max(started_at) as claimed, max(processed_at) as done,
                    (select count(*) from processed_images b
                      where b.id <> all($1) and b.started_at > min(s.run_after)
                        and b.started_at < max(s.started_at)) as backlog_claimed_between,
                    (select count(*) from processed_images where status = 'pending') as pending
               from processed_images s where s.id = any($1)",
            &[&stranded],
        )
        .await
        .expect("phases");
    let reaped: chrono::DateTime<chrono::Utc> = phases.get("reaped");
    let claimed: chrono::DateTime<chrono::Utc> = phases.get("claimed");
    let done: chrono::DateTime<chrono::Utc> = phases.get("done");
    let jumped: i64 = phases.get("backlog_claimed_between");
    let pending: i64 = phases.get("pending");
    let secs = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
    let expires = expires.expect("the stranded rows had a lease when the victim died");
    let reap_delay = secs(reaped - expires);
    let run_delay = secs(done - reaped);
    println!(
        "stranded jobs completed {:.1} s after SIGKILL (LEASE_SECS={lease}, SWEEP_SECS=5): \
         the lease ran out, the reap came {reap_delay:.2} s later, the stranded jobs were claimed \
         {:.2} s and done {run_delay:.2} s after the reap; {jumped} backlog jobs claimed in \
         between; {pending} of {backlog} backlog jobs still pending",
        took.as_secs_f64(),
        secs(claimed - reaped),
    );
    assert!(
        pending > 0,
        "the backlog ran out first; the test proves nothing: make it larger"
    );
    // Taken-back jobs do not queue behind the backlog: once they are reaped the survivor only
    // lets the jobs it is running finish, then runs them, one at a time, before anything else.
    assert!(
        jumped <= 2,
        "{jumped} backlog jobs were claimed between the reap and the stranded jobs' claims"
    );
    // The sweep runs on time on a saturated worker (finishing jobs do not starve it) and the
    // reaped jobs run at once: together the LEASE_SECS + 5 s goal, timed by the database.
    // Measured 7.3-8.7 s from SIGKILL with this test alone; the allowances cover a machine
    // loaded by the rest of the suite (two shared cores). A recovery that waits behind the
    // backlog takes minutes here.
    assert!(
        reap_delay <= 5.0 + 5.0,
        "the reap came {reap_delay:.2} s after the lease ran out (SWEEP_SECS=5)"
    );
    assert!(
        run_delay <= 10.0,
        "the stranded jobs finished {run_delay:.2} s after the reap"
    );
    for id in stranded {
        let (status, _, attempts, lost) = row_state(&db, id).await;
        assert_eq!(
            (status.as_str(), attempts, lost),
            ("completed", 1, 1),
            "a first lost lease must not be charged"
        );
    }
}

/// Item 3: a job that aborts its process. The first crash costs nobody an attempt; then it runs
/// alone, so every later crash is charged to it only; it ends `failed` after `MAX_ATTEMPTS`
/// solo crashes, and the jobs that shared its process complete with their attempts untouched.
#[tokio::test]
async fn job_that_kills_its_process_costs_no_other_job_an_attempt() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let env = [
        HOOKS,
        ("WORKER_TEST_DELAY_MS", "2000"),
        ("WORKER_THREADS", "3"),
        ("LEASE_SECS", "2"),
        ("MAX_ATTEMPTS", "2"),
    ];
    let mut worker = Proc::spawn("worker", &url, &env);
    insert_jobs(&db, 2).await;
    assert!(
        wait_processing(&db, 2, Duration::from_secs(20)).await,
        "the innocent jobs were never claimed:\n{}",
        worker.log_text()
    );
    let killer = insert_blob(&db, b"IMAGE-PROCESSOR-TEST-ABORT").await;
    // A supervisor, as Kubernetes would be: restart the worker whenever it dies.
    let mut crashes = 0;
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut logs = String::new();
    while status_of(&db, killer).await != "failed" {
        assert!(
            Instant::now() < deadline,
            "the killer job never ended: {:?} after {crashes} crashes\n{logs}",
            row_state(&db, killer).await
        );
        if let Ok(Some(_)) = worker.child.try_wait() {
            crashes += 1;
            logs.push_str(&worker.log_text());
            worker = Proc::spawn("worker", &url, &env);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        wait_completed(&db, 2, Duration::from_secs(30)).await,
        "the innocent jobs did not complete: {:?}\n{}",
        counts(&db).await,
        worker.log_text()
    );
    let (_, code, attempts, lost) = row_state(&db, killer).await;
    println!("killer job failed after {crashes} crashes: attempts {attempts}, lost leases {lost}");
    assert_eq!(code.as_deref(), Some("worker_lost"));
    assert_eq!(attempts, 2, "the solo crashes are what it is charged for");
    assert_eq!(lost, 3, "one shared crash, then one per charged attempt");
    let innocent = db
        .query(
            "select attempts, lost_leases from processed_images where id <> $1",
            &[&killer],
        )
        .await
        .expect("innocent rows");
    for row in innocent {
        let (attempts, lost): (i32, i32) = (row.get(0), row.get(1));
        assert_eq!(attempts, 1, "an innocent job was charged for the killer's crash");
        assert!(
            lost <= 1,
            "an innocent job shared a process with the killer after its first crash"
        );
    }
}

/// Item 3: a row a plain SQL `INSERT` made, over `MAX_UPLOAD_BYTES`, fails on its size without
/// its blob ever being read into the worker (the worker's peak memory stays far below it).
#[tokio::test]
async fn sql_row_over_max_upload_bytes_fails_without_being_read() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let worker = Proc::spawn("worker", &url, &[("MAX_UPLOAD_BYTES", "1000000")]);
    let id: uuid::Uuid = db
        .query_one(
            "insert into processed_images (original_data) \
             values (convert_to(repeat('x', 150000000), 'UTF8')) returning id",
            &[],
        )
        .await
        .expect("insert a 150 MB row")
        .get(0);
    assert!(
        eventually(Duration::from_secs(30), || async {
            status_of(&db, id).await == "failed"
        })
        .await,
        "never failed:\n{}",
        worker.log_text()
    );
    let (_, code, _, _) = row_state(&db, id).await;
    assert_eq!(code.as_deref(), Some("payload_too_large"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", worker.child.id())).expect("proc status");
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    println!("worker peak RSS {} MB after failing a 150 MB row", peak_kb / 1024);
    assert!(
        peak_kb < 100 * 1024,
        "the worker's peak RSS is {peak_kb} kB: the blob was read"
    );
}

/// Item 5: results stalled on a slow database never pile up. A thread is given back as soon as
/// its result waits in the write budget, which holds `ENDINGS_PER_THREAD` (16) endings per
/// thread, and a worker claims at most `MAX_AHEAD_PER_THREAD` (8) rows ahead per thread: with
/// one thread, never more than 1 + 8 + 16 rows are `processing` here, however slow the
/// write-backs, and every row still completes once.
#[tokio::test]
async fn rows_in_flight_stay_bounded_while_write_backs_stall() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    db.batch_execute(
        "create function slow_completion() returns trigger language plpgsql as $$
         begin
             if new.status = 'completed' then perform pg_sleep(0.2); end if;
             return new;
         end $$;
         create trigger slow_completion before update on processed_images
             for each row execute function slow_completion();",
    )
    .await
    .expect("install the slow trigger");
    let worker = Proc::spawn("worker", &url, &[("WORKER_THREADS", "1")]);
    const JOBS: i64 = 30;
    insert_jobs(&db, JOBS as i32).await;
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let c = counts(&db).await;
        most = most.max(c.get("processing").copied().unwrap_or(0));
        if c.get("completed").copied() == Some(JOBS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not done: {c:?}\n{}",
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("at most {most} rows processing at once");
    assert!(
        most <= 25,
        "rows in flight while write-backs stalled: {most}; one thread, eight claimed ahead and sixteen endings waiting is the bound"
    );
    assert!(
        most >= 3,
        "only {most} rows processing at once: write-backs stalled, so at least one being made and two waiting to be written were expected"
    );
    let attempts: i64 = db
        .query_one("select max(attempts)::int8 from processed_images", &[])
        .await
        .expect("attempts")
        .get(0);
    assert_eq!(attempts, 1, "a row ran twice");
}

/// Runs `n` small jobs through `worker` and waits until all are completed, so the worker has
/// measured its jobs as short and claims ahead from then on (`worker::ahead`).
async fn warm_up_short_jobs(db: &tokio_postgres::Client, worker: &Proc, n: i64) {
    insert_jobs(db, n as i32).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            counts(db).await.get("completed").copied() == Some(n)
        })
        .await,
        "the warm-up jobs never completed: {:?}\n{}",
        counts(db).await,
        worker.log_text()
    );
}

/// Waits until the rows `ids` all have `status`.
async fn all_have_status(
    db: &tokio_postgres::Client,
    ids: &[uuid::Uuid],
    status: &str,
    within: Duration,
) -> bool {
    eventually(within, || async {
        let n: i64 = db
            .query_one(
                "select count(*) from processed_images where id = any($1) and status = $2",
                &[&ids, &status],
            )
            .await
            .expect("count")
            .get(0);
        n == ids.len() as i64
    })
    .await
}

/// Inserts four small jobs in one statement: a worker whose waiting jobs already cover its
/// threads claims nothing more, so rows arriving one by one would be claimed ahead one by one.
async fn insert_four_small(db: &tokio_postgres::Client) -> Vec<uuid::Uuid> {
    db.query(
        "insert into processed_images (original_data) select $1 from generate_series(1, 4) returning id",
        &[&png(32, 24)],
    )
    .await
    .expect("insert")
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// A worker with one thread, warmed with short jobs, whose thread is then stuck in a job that
/// never ends, with four small rows claimed ahead behind it: `(worker, its port, the hung row,
/// the four)`.
async fn stuck_with_four_claimed_ahead(
    url: &str,
    db: &tokio_postgres::Client,
    env: &[(&str, &str)],
) -> (Proc, u16, uuid::Uuid, Vec<uuid::Uuid>) {
    let mut env = env.to_vec();
    env.extend([HOOKS, ("WORKER_THREADS", "1"), ("JOB_TIMEOUT_SECS", "120")]);
    let (worker, port) = worker_with_port(url, &env);
    warm_up_short_jobs(db, &worker, 20).await;
    let hung = insert_blob(db, b"IMAGE-PROCESSOR-TEST-HANG").await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            status_of(db, hung).await == "processing"
        })
        .await,
        "the hung job was never claimed:\n{}",
        worker.log_text()
    );
    let small = insert_four_small(db).await;
    assert!(
        all_have_status(db, &small, "processing", Duration::from_secs(10)).await,
        "the worker with short jobs behind it did not claim the four small ones ahead: {:?}\n{}",
        counts(db).await,
        worker.log_text()
    );
    // `processing` is the claim's commit; the worker counts them as waiting once the claim's
    // answer reaches it, a moment later. A signal sent between the two found them uncounted.
    assert!(
        eventually(Duration::from_secs(10), || async {
            metrics(port)
                .await
                .contains("image_processor_worker_jobs_waiting 4")
        })
        .await,
        "the four claimed ahead are never shown waiting:\n{}",
        metrics(port).await
    );
    (worker, port, hung, small)
}

/// Claiming ahead never strands a job: rows a worker claimed ahead while its only thread is
/// stuck in a job that never ends are handed back after `ahead::MAX_WAIT` (2 s), with their
/// attempt given back, and this worker claims nothing ahead again until a thread starts a job;
/// another worker then runs them.
#[tokio::test]
async fn jobs_claimed_ahead_of_a_stuck_thread_are_handed_back_to_another_worker() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let (stuck, port, hung, small) = stuck_with_four_claimed_ahead(&url, &db, &[]).await;
    assert!(
        metrics(port)
            .await
            .contains("image_processor_worker_jobs_waiting 4"),
        "the four claimed ahead are not shown waiting:\n{}",
        metrics(port).await
    );
    let seen = Instant::now();
    assert!(
        all_have_status(&db, &small, "pending", Duration::from_secs(10)).await,
        "the jobs claimed ahead were never handed back: {:?}\n{}",
        counts(&db).await,
        stuck.log_text()
    );
    println!("handed back {:?} after they were seen claimed", seen.elapsed());
    for id in &small {
        assert_eq!(
            row_state(&db, *id).await.2,
            0,
            "a handed-back job kept its attempt"
        );
    }
    // Stalled: it claims nothing ahead now, so they stay pending for the next worker.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        all_have_status(&db, &small, "pending", Duration::from_millis(10)).await,
        "the stuck worker claimed the handed-back jobs again: {:?}",
        counts(&db).await
    );
    assert!(metrics(port)
        .await
        .contains("image_processor_worker_jobs_waiting 0"));
    let other = Proc::spawn("worker", &url, &[("WORKER_THREADS", "1")]);
    assert!(
        all_have_status(&db, &small, "completed", Duration::from_secs(20)).await,
        "another worker never ran the handed-back jobs: {:?}\n{}",
        counts(&db).await,
        other.log_text()
    );
    assert_eq!(status_of(&db, hung).await, "processing");
}

/// SIGTERM hands the jobs claimed ahead back at once, without waiting for the grace period
/// (which is for jobs already on a thread) or for `ahead::MAX_WAIT`.
#[tokio::test]
async fn sigterm_hands_back_jobs_claimed_ahead_at_once() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let db = db::connect(&url).await.expect("connect");
    let (mut worker, _, hung, small) =
        stuck_with_four_claimed_ahead(&url, &db, &[("SHUTDOWN_GRACE_SECS", "8")]).await;
    worker.signal(Signal::SIGTERM);
    assert!(
        all_have_status(&db, &small, "pending", Duration::from_secs(6)).await,
        "the jobs claimed ahead were not handed back during the grace period: {:?}\n{}",
        counts(&db).await,
        worker.log_text()
    );
    assert_eq!(
        status_of(&db, hung).await,
        "processing",
        "the hung job should still be in its grace period"
    );
    let exit = worker.wait_exit(Duration::from_secs(30));
    assert!(exit.is_some_and(|s| s.success()), "exit {exit:?}");
    let log = worker.log_text();
    assert!(
        !log.contains("no thread came free"),
        "handed back by the 2 s wait, not by the shutdown:\n{log}"
    );
    for id in &small {
        assert_eq!(
            row_state(&db, *id).await.2,
            0,
            "a handed-back job kept its attempt"
        );
    }
}
