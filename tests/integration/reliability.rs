//! Nothing stuck, nothing lost (issue 15): fencing tokens that never repeat, completions that
//! survive a database crash, write-backs that back off, and the small things (null pipelines,
//! a flapping LISTEN connection, metrics from start-up, early answers on kept-alive
//! connections). Real PostgreSQL, real worker processes, every wait bounded.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::*;
use image_processor::db::{self, jobs};

/// A result as a worker would write it, for writes the fence must refuse.
pub(crate) fn late_completion() -> jobs::Completion<'static> {
    jobs::Completion {
        data: b"stale",
        content_type: "image/png",
        width: 1,
        height: 1,
        thumbnail: b"t",
        thumbnail_content_type: "image/jpeg",
        original_content_type: "image/png",
        original_width: 32,
        original_height: 24,
        original_frames: 1,
        processed_frames: 1,
        blurhash: None,
        dominant_color: None,
        sha256: None,
        exif: None,
    }
}

/// Tries every post-claim write with `stale` and asserts the fence refuses each one.
async fn assert_fenced_off(client: &impl deadpool_postgres::GenericClient, stale: &jobs::Fence<'_>) {
    let lease = Duration::from_secs(30);
    assert!(
        !jobs::renew_lease(client, stale, lease).await.expect("renew"),
        "a stale claim renewed the lease"
    );
    let failure = jobs::Failure {
        code: "corrupt_image",
        message: "late".into(),
    };
    assert!(
        !jobs::fail_if_still_owner(client, stale, &failure)
            .await
            .expect("fail"),
        "a stale claim failed the row"
    );
    assert!(
        !jobs::complete_if_still_owner(client, stale, &late_completion())
            .await
            .expect("complete"),
        "a stale claim completed the row"
    );
    assert!(
        !jobs::release_job(client, stale).await.expect("release"),
        "a stale claim released the row"
    );
}

/// The same worker process claims a row, hands it back at shutdown (which gives the attempt
/// back), and claims it again: `(claimed_by, attempts)` is then the same as the first claim's,
/// so only a token that never repeats keeps the first claim's late writes out.
#[tokio::test]
async fn stale_claim_cannot_pass_the_fence_after_release() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    insert_jobs(&client, 1).await;
    let lease = Duration::from_secs(30);

    let first = jobs::claim_jobs(&client, "worker-a", 1, lease, i64::MAX)
        .await
        .expect("claim")
        .remove(0);
    let stale = jobs::Fence {
        id: first.id,
        worker: "worker-a",
        claim: first.claim,
        variant: None,
    };
    assert!(jobs::release_job(&client, &stale).await.expect("release"));
    let second = jobs::claim_jobs(&client, "worker-a", 1, lease, i64::MAX)
        .await
        .expect("re-claim")
        .remove(0);
    assert_eq!(second.id, first.id);
    assert_eq!(second.attempt, first.attempt, "a release gives the attempt back");
    assert!(second.claim > first.claim, "the token must grow with every claim");

    assert_fenced_off(&client, &stale).await;
    let (status, data): (String, Option<Vec<u8>>) = {
        let row = client
            .query_one("select status, processed_data from processed_images", &[])
            .await
            .expect("row");
        (row.get(0), row.get(1))
    };
    assert_eq!(status, "processing", "the live claim must still hold the row");
    assert_eq!(data, None);

    let live = jobs::Fence {
        id: second.id,
        worker: "worker-a",
        claim: second.claim,
        variant: None,
    };
    assert!(jobs::renew_lease(&client, &live, lease).await.expect("renew"));
    assert!(jobs::complete_if_still_owner(&client, &live, &late_completion())
        .await
        .expect("complete"));
}

/// A row completed, retried by a user (which resets `attempts` to 0) and claimed again by the
/// same worker: the first claim, still running somewhere, must not write over the new one.
#[tokio::test]
async fn stale_claim_cannot_pass_the_fence_after_retry() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    insert_jobs(&client, 1).await;
    let lease = Duration::from_secs(30);

    let first = jobs::claim_jobs(&client, "worker-a", 1, lease, i64::MAX)
        .await
        .expect("claim")
        .remove(0);
    let stale = jobs::Fence {
        id: first.id,
        worker: "worker-a",
        claim: first.claim,
        variant: None,
    };
    // The first claim's lease runs out; the sweep re-queues it and it ends failed, then a user
    // retries it. A row that lost a lease before (so ran alone) is charged, and reaping it with
    // a budget of 1 fails it at once.
    client
        .execute(
            "update processed_images set lease_expires_at = now() - interval '1 s', lost_leases = 1",
            &[],
        )
        .await
        .expect("expire the lease");
    assert_eq!(jobs::reap_expired(&client, 1).await.expect("reap"), 1);
    assert!(db::images::retry_image(&client, first.id)
        .await
        .expect("retry")
        .is_some());
    let second = jobs::claim_jobs(&client, "worker-a", 1, lease, i64::MAX)
        .await
        .expect("re-claim")
        .remove(0);
    assert_eq!(second.attempt, first.attempt, "a retry resets the budget");
    assert!(second.claim > first.claim, "the token must grow with every claim");

    assert_fenced_off(&client, &stale).await;
    let status: String = client
        .query_one("select status from processed_images", &[])
        .await
        .expect("row")
        .get(0);
    assert_eq!(status, "processing", "the live claim must still hold the row");
}

/// Ids that `client` sees `completed` right now.
async fn completed_now(client: &tokio_postgres::Client) -> Option<HashSet<uuid::Uuid>> {
    let rows = client
        .query("select id from processed_images where status = 'completed'", &[])
        .await
        .ok()?;
    Some(rows.iter().map(|r| r.get(0)).collect())
}

/// PostgreSQL crashes while two worker processes complete a run of small jobs. Every
/// completion that another connection saw before the crash must still be there after crash
/// recovery, and must not be processed again.
///
/// A crash of PostgreSQL alone loses only WAL still in its shared buffers, which the WAL writer
/// writes out to the kernel within milliseconds; a machine crash or power cut loses everything
/// not yet fsynced, the WAL writer's last few hundred milliseconds. The test reproduces that
/// window by stopping (SIGSTOP) the WAL writer shortly before `pg_ctl stop -m immediate` and
/// killing it during the shutdown, so only WAL that a committing backend flushed itself, i.e.
/// a synchronous commit, survives.
#[tokio::test]
async fn completion_survives_database_crash() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    // Its own cluster: crashing the shared one would fail the binary's other tests.
    let cluster = Cluster::start().await;
    let test_db = cluster.fresh_database().await;
    let url = test_db.url.clone();
    let envs = [
        ("WORKER_TEST_HOOKS", "1"),
        ("WORKER_TEST_DELAY_MS", "5"),
        ("WORKER_THREADS", "2"),
        ("LEASE_SECS", "5"),
    ];
    let workers = [
        Proc::spawn("worker", &url, &envs),
        Proc::spawn("worker", &url, &envs),
    ];
    const JOBS: usize = 600;
    let observer = db::connect(&url).await.expect("connect");
    insert_jobs(&observer, JOBS as i32).await;
    let walwriter: i32 = observer
        .query_one(
            "select pid from pg_stat_activity where backend_type = 'walwriter'",
            &[],
        )
        .await
        .expect("walwriter pid")
        .get(0);
    let walwriter = Pid::from_raw(walwriter);

    // Watch completions from a connection of our own, as SSE or a client polling would.
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < JOBS / 4 {
        assert!(
            Instant::now() < deadline,
            "only {} jobs completed in 60 s",
            seen.len()
        );
        seen = completed_now(&observer).await.expect("poll completions");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kill(walwriter, Signal::SIGSTOP).expect("stop the WAL writer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The last look before the crash: everything in it was reported completed to a client.
    seen = completed_now(&observer).await.expect("poll completions");
    std::thread::scope(|scope| {
        let stopping = scope.spawn(|| cluster.pg.pg_ctl(&["stop", "-m", "immediate"]));
        // The postmaster has sent its SIGQUIT by now; a stopped process cannot act on it.
        std::thread::sleep(Duration::from_millis(300));
        let _ = kill(walwriter, Signal::SIGKILL);
        stopping.join().expect("join pg_ctl").expect("crash PostgreSQL");
    });
    drop(observer);
    cluster.pg.pg_ctl(&["start"]).expect("restart PostgreSQL");

    let client = db::connect(&url).await.expect("reconnect");
    let after = completed_now(&client).await.expect("read completions");
    let lost: Vec<_> = seen.difference(&after).collect();
    println!(
        "{} completions seen before the crash, {} of them lost by it",
        seen.len(),
        lost.len()
    );
    assert!(
        wait_completed(&client, JOBS as i64, Duration::from_secs(120)).await,
        "not all jobs completed after the crash: {:?}",
        counts(&client).await
    );
    let completions = logged_completions(&workers, JOBS).await;
    let twice = seen
        .iter()
        .filter(|id| completions.get(&id.to_string()).copied().unwrap_or(0) > 1)
        .count();
    println!("{twice} of the seen completions were processed again after the crash");
    assert!(
        lost.is_empty(),
        "{} completions a client had seen were lost",
        lost.len()
    );
    assert_eq!(twice, 0, "completions a client had seen were processed again");
}

/// The database refuses the first write-backs of a result (here a trigger raising an error,
/// standing in for a serialization failure or a statement timeout). The worker retries with
/// backoff, so the job completes soon after the refusals stop, on its first claim, instead of
/// waiting for its lease to run out and being processed again.
#[tokio::test]
async fn refused_write_back_is_retried_with_backoff() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let client = db::connect(&url).await.expect("connect");
    client
        .batch_execute(
            "create table refuse_completions (since timestamptz not null default now());
             create function refuse_completion() returns trigger language plpgsql as $$
             begin
                 if new.status = 'completed' and exists (select 1 from refuse_completions) then
                     raise exception 'completions refused for the test';
                 end if;
                 return new;
             end $$;
             create trigger refuse_completion before update on processed_images
                 for each row execute function refuse_completion();
             insert into refuse_completions default values;",
        )
        .await
        .expect("install the refusing trigger");
    let worker = Proc::spawn("worker", &url, &[("LEASE_SECS", "10")]);
    insert_jobs(&client, 1).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            worker.log_text().contains("writing the result failed")
        })
        .await,
        "the write-back was never refused:\n{}",
        worker.log_text()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    client
        .execute("delete from refuse_completions", &[])
        .await
        .expect("stop refusing");
    let allowed_at = Instant::now();
    assert!(
        wait_completed(&client, 1, Duration::from_secs(40)).await,
        "never completed: {:?}\n{}",
        counts(&client).await,
        worker.log_text()
    );
    let gap = allowed_at.elapsed();
    let attempts: i32 = client
        .query_one("select attempts from processed_images", &[])
        .await
        .expect("attempts")
        .get(0);
    println!(
        "completed {:.2} s after the database accepted writes again",
        gap.as_secs_f64()
    );
    assert_eq!(
        attempts, 1,
        "the job was claimed again instead of its write retried"
    );
    assert!(
        gap < Duration::from_secs(5),
        "the retried write-back took {gap:?}"
    );
}

/// One batch of write-backs (what the worker's writer sends under load): completions and
/// failures of images and a variant, one entry whose claim is stale. The fence decides row by
/// row: every live claim is written, the stale one is refused and its row left alone, and the
/// answers come back in the order the entries were given.
#[tokio::test]
async fn a_batch_of_write_backs_is_fenced_row_by_row() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    insert_jobs(&client, 4).await;
    client
        .batch_execute(
            "insert into image_presets (name, pipeline) values ('small', '{\"operations\": []}');
             insert into image_variants (image_id, preset) select id, 'small' from processed_images limit 1;",
        )
        .await
        .expect("a preset and a variant");
    let lease = Duration::from_secs(30);
    let claimed = jobs::claim_jobs(&client, "worker-a", 4, lease, i64::MAX)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 4);
    let variant = db::variants::claim_variants(
        &client,
        db::variants::CLAIM_VARIANTS,
        "worker-a",
        1,
        lease,
        i64::MAX,
    )
    .await
    .expect("claim the variant")
    .remove(0);
    let preset = variant.variant.as_ref().expect("a variant job").preset.clone();
    let fence = |job: &jobs::Job, claim: i64| jobs::Fence {
        id: job.id,
        worker: "worker-a",
        claim,
        variant: None,
    };
    let failure = jobs::Failure {
        code: "corrupt_image",
        message: "bad bytes".into(),
    };
    let batch = [
        jobs::WriteBack {
            fence: fence(&claimed[0], claimed[0].claim),
            ending: jobs::Ending::Completed(late_completion()),
        },
        // Stale: a token this row was never given.
        jobs::WriteBack {
            fence: fence(&claimed[1], claimed[1].claim + 7),
            ending: jobs::Ending::Completed(late_completion()),
        },
        jobs::WriteBack {
            fence: fence(&claimed[2], claimed[2].claim),
            ending: jobs::Ending::Failed(&failure),
        },
        jobs::WriteBack {
            fence: jobs::Fence {
                variant: Some((preset.as_str(), image_processor::presets::VariantFormat::Own)),
                ..fence(&variant, variant.claim)
            },
            ending: jobs::Ending::Completed(late_completion()),
        },
    ];
    let written = jobs::write_back(&client, &batch).await.expect("write the batch");
    assert_eq!(written, vec![true, false, true, true]);
    let status = |id: uuid::Uuid| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "select status, error_code from processed_images where id = $1",
                    &[&id],
                )
                .await
                .expect("row");
            (row.get::<_, String>(0), row.get::<_, Option<String>>(1))
        }
    };
    assert_eq!(status(claimed[0].id).await, ("completed".into(), None));
    assert_eq!(
        status(claimed[1].id).await,
        ("processing".into(), None),
        "the stale entry wrote"
    );
    assert_eq!(
        status(claimed[2].id).await,
        ("failed".into(), Some("corrupt_image".into()))
    );
    assert_eq!(status(claimed[3].id).await.0, "processing");
    let (variant_status, bytes): (String, Option<i64>) = {
        let row = client
            .query_one("select status, bytes from image_variants", &[])
            .await
            .expect("variant row");
        (row.get(0), row.get(1))
    };
    assert_eq!(variant_status, "completed");
    assert_eq!(bytes, Some(b"stale".len() as i64));
}

/// A worker under load writes its results in batches; one row whose completion the database
/// refuses (a trigger raising for that row alone) must not hold back the rest: every other job
/// completes, and the refused one stays claimed, its write retried, until the refusal stops.
#[tokio::test]
async fn a_refused_row_does_not_hold_back_the_rest_of_its_batch() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let client = db::connect(&url).await.expect("connect");
    client
        .batch_execute(
            "create table refuse_row (id uuid);
             create function refuse_row() returns trigger language plpgsql as $$
             begin
                 if new.status = 'completed' and new.id in (select id from refuse_row) then
                     raise exception 'this row is refused for the test';
                 end if;
                 return new;
             end $$;
             create trigger refuse_row before update on processed_images
                 for each row execute function refuse_row();",
        )
        .await
        .expect("install the refusing trigger");
    insert_jobs(&client, 60).await;
    client
        .execute(
            "insert into refuse_row select id from processed_images order by id limit 1",
            &[],
        )
        .await
        .expect("pick the refused row");
    let worker = Proc::spawn("worker", &url, &[("LEASE_SECS", "10"), ("WORKER_THREADS", "4")]);
    assert!(
        wait_completed(&client, 59, Duration::from_secs(60)).await,
        "the other jobs did not all complete: {:?}\n{}",
        counts(&client).await,
        worker.log_text()
    );
    let refused: String = client
        .query_one(
            "select status from processed_images where id in (select id from refuse_row)",
            &[],
        )
        .await
        .expect("the refused row")
        .get(0);
    assert_eq!(
        refused, "processing",
        "the refused row's write cannot have landed"
    );
    client
        .execute("delete from refuse_row", &[])
        .await
        .expect("stop refusing");
    assert!(
        wait_completed(&client, 60, Duration::from_secs(30)).await,
        "the refused row never completed once allowed: {:?}\n{}",
        counts(&client).await,
        worker.log_text()
    );
    let attempts: i32 = client
        .query_one("select max(attempts) from processed_images", &[])
        .await
        .expect("attempts")
        .get(0);
    assert_eq!(
        attempts, 1,
        "a job ran twice: its write should have been retried, not the job"
    );
    // Whether the refused row shared a batch depends on timing; say which path this run took.
    println!(
        "the refused row was in a larger batch: {}",
        worker.log_text().contains("writing them one by one")
    );
}

/// A row whose `run_after` lies in the future (a retry backoff, a delayed job) is claimed when
/// it comes due, not at the worker's next fallback sweep: nothing notifies at that moment.
#[tokio::test]
async fn job_due_later_is_claimed_when_it_comes_due() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let client = db::connect(&url).await.expect("connect");
    // A sweep far away: only the worker's own due-time wake-up can pick the row up in time.
    let worker = Proc::spawn("worker", &url, &[("SWEEP_SECS", "60")]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    client
        .execute(
            "insert into processed_images (original_data, run_after) values ($1, now() + interval '3 s')",
            &[&png(32, 24)],
        )
        .await
        .expect("insert a delayed job");
    assert!(
        wait_completed(&client, 1, Duration::from_secs(20)).await,
        "the delayed job was not picked up: {:?}\n{}",
        counts(&client).await,
        worker.log_text()
    );
    let late: f64 = client
        .query_one(
            "select extract(epoch from started_at - run_after)::float8 from processed_images",
            &[],
        )
        .await
        .expect("pickup")
        .get(0);
    println!("claimed {late:.3} s after it came due");
    assert!(late >= 0.0, "claimed before it was due");
    assert!(late < 1.0, "claimed {late:.3} s after it came due");
}

/// Whether a row that lost a lease waits is not asked before every claim: a worker keeps its
/// last "no" until something can have changed it. A worker working through a backlog never
/// runs out of ordinary rows to claim (which is when it would look at what is pending and
/// find the row), so for it the `lost` notification a reap sends is what makes it look: the
/// row must run (alone) long before the backlog is done and long before the next sweep.
#[tokio::test]
async fn a_lost_notification_makes_a_busy_worker_run_a_row_that_lost_a_lease() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let client = db::connect(&url).await.expect("connect");
    let worker = Proc::spawn("worker", &url, &[("SWEEP_SECS", "60"), ("WORKER_THREADS", "1")]);
    // Started, asked once (no such row), idle.
    insert_jobs(&client, 1).await;
    assert!(
        wait_completed(&client, 1, Duration::from_secs(20)).await,
        "{}",
        worker.log_text()
    );
    // A backlog of a few seconds for one thread, then what a reap elsewhere leaves: a pending
    // row with one lost lease, which no ordinary claim takes.
    insert_jobs_of(&client, &jpeg(1600, 1200), 60).await;
    let lost: uuid::Uuid = client
        .query_one(
            "insert into processed_images (original_data, lost_leases) values ($1, 1) returning id",
            &[&png(32, 24)],
        )
        .await
        .expect("insert a row that lost a lease")
        .get(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .execute("select pg_notify('image_jobs', 'lost')", &[])
        .await
        .expect("notify");
    assert!(
        wait_completed(&client, 62, Duration::from_secs(120)).await,
        "not everything completed: {:?}\n{}",
        counts(&client).await,
        worker.log_text()
    );
    let row = client
        .query_one(
            "select (select started_at from processed_images where id = $1),
                    (select max(started_at) from processed_images where id <> $1)",
            &[&lost],
        )
        .await
        .expect("start times");
    let (lost_started, last_started): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) =
        (row.get(0), row.get(1));
    let ahead = (last_started - lost_started).num_milliseconds();
    println!("the row that lost a lease started {ahead} ms before the backlog's last row");
    assert!(
        ahead > 1000,
        "the row that lost a lease waited for the backlog ({ahead} ms ahead of its last row)"
    );
    assert!(
        worker
            .log_text()
            .contains("running a job that lost a lease before, alone"),
        "{}",
        worker.log_text()
    );
}

/// A plain SQL writer stored the JSON value `null` as the pipeline: that means the default
/// pipeline (fit within 800×800), as SQL `NULL` does, not an invalid pipeline.
#[tokio::test]
async fn null_pipeline_means_the_default_pipeline() {
    let app = spawn_app().await;
    let client = app.db().await;
    let id: uuid::Uuid = client
        .query_one(
            "insert into processed_images (original_data, pipeline) values ($1, 'null'::jsonb) returning id",
            &[&jpeg(1000, 500)],
        )
        .await
        .expect("insert")
        .get(0);
    let done = app.wait_done(&id.to_string()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"]["width"], 800, "{done}");
    assert_eq!(done["processed"]["height"], 400, "{done}");
    app.stop().await;
}

/// A TCP proxy to `upstream` that cuts every connection `after` it was accepted, recording
/// when each was accepted.
async fn flapping_proxy(
    upstream: u16,
    after: Duration,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Instant>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let port = listener.local_addr().expect("proxy addr").port();
    let accepted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            log.lock().expect("accept log").push(Instant::now());
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                    return;
                };
                let _ =
                    tokio::time::timeout(after, tokio::io::copy_bidirectional(&mut inbound, &mut outbound))
                        .await;
            });
        }
    });
    (port, accepted)
}

/// The LISTEN connection connects, listens, and is cut 300 ms later, over and over. Each
/// success used to reset the reconnect backoff, so it reconnected about three times a second
/// for ever; it must keep backing off until a connection stays up.
#[tokio::test]
async fn flapping_listen_connection_keeps_backing_off() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let upstream_port = cluster().await.pg.port();
    let (proxy_port, accepted) = flapping_proxy(upstream_port, Duration::from_millis(300)).await;
    let via_proxy = url.replace(
        &format!("127.0.0.1:{upstream_port}/"),
        &format!("127.0.0.1:{proxy_port}/"),
    );
    assert_ne!(via_proxy, url, "the proxy URL must differ: {url}");
    let connected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = tokio::spawn(db::listener::run(
        via_proxy,
        vec!["image_jobs"],
        {
            let connected = connected.clone();
            move |event| {
                if matches!(event, db::listener::ListenEvent::Connected) {
                    connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        },
        cancel.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(6)).await;
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), listener).await;
    let times = accepted.lock().expect("accept log").clone();
    let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    println!(
        "{} connections in 6 s ({} listening), gaps {gaps:.2?}",
        times.len(),
        connected.load(std::sync::atomic::Ordering::SeqCst)
    );
    assert!(
        connected.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the listener never got through the proxy"
    );
    assert!(
        times.len() <= 9,
        "{} connections in 6 s: the backoff was reset by connections that flapped",
        times.len()
    );
    assert!(
        gaps.last().is_some_and(|&g| g > 1.0),
        "the reconnect delay did not grow: {gaps:?}"
    );
}

/// Dashboards and alerts need every series from start-up: a fresh process exports each
/// outcome of `image_processor_jobs_total` with 0, `retried` included.
#[tokio::test]
async fn every_job_outcome_is_exported_from_start_up() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let app = Proc::spawn("run", &url, &[("LISTEN_ADDR", listen.as_str())]);
    let http = reqwest::Client::new();
    let metrics_url = format!("http://{listen}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        match http.get(&metrics_url).send().await {
            Ok(r) if r.status().is_success() => break r.text().await.expect("metrics text"),
            _ => {
                assert!(Instant::now() < deadline, "no /metrics:\n{}", app.log_text());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    for outcome in image_processor::states::JobOutcome::ALL {
        for family in image_processor::metrics::FAMILIES {
            let series = format!(
                "image_processor_jobs_total{{outcome=\"{}\",family=\"{family}\"}} 0",
                outcome.label()
            );
            assert!(text.lines().any(|l| l == series), "{series} missing:\n{text}");
        }
    }
}

/// Sends one raw HTTP/1.1 request on `stream` (written from a task, since the server may
/// answer and stop reading before it is all sent) and reads the answer: status and headers.
async fn raw_request(
    stream: &mut tokio::net::TcpStream,
    head: String,
    body: Vec<u8>,
) -> Option<(u16, HashMap<String, String>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut read, mut write) = stream.split();
    let send = async {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&body).await;
        std::future::pending::<()>().await
    };
    let receive = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = read.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let text = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = text.lines();
        let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
            .collect();
        let length: usize = headers.get("content-length")?.parse().ok()?;
        while buf.len() < head_end + length {
            let n = read.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some((status, headers))
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        tokio::select! {
            answer = receive => answer,
            _ = send => None,
        }
    })
    .await
    .ok()
    .flatten()
}

/// A multipart upload of 21 files: the server refuses it at the 21st part's header, before the
/// rest of the body (a 1 MB file) is read.
fn upload_of_too_many_files() -> (String, Vec<u8>) {
    let boundary = "reliability-boundary";
    let mut body = Vec::new();
    let small = png(8, 8);
    for i in 0..21 {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{i}.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        if i == 20 {
            body.extend(std::iter::repeat_n(0u8, 1 << 20));
        } else {
            body.extend_from_slice(&small);
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /api/images HTTP/1.1\r\nHost: test\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head, body)
}

/// The server answers an upload before reading its whole body (`400` for the 21st file,
/// `413` for a declared size over the limit). Either the answer says `Connection: close`, or
/// the kept-alive connection must carry the client's next POST.
#[tokio::test]
async fn early_answer_to_an_upload_does_not_strand_a_kept_alive_connection() {
    let app = spawn_app_with(
        image_processor::config::Role::Run,
        &[("max-upload-bytes", "200000")],
    )
    .await;
    let oversized = vec![0u8; 300_000];
    let oversized_head = format!(
        "POST /api/images HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        oversized.len()
    );
    let cases = [upload_of_too_many_files(), (oversized_head, oversized)];
    let next = png(16, 16);
    let next_head = format!(
        "POST /api/images HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        next.len()
    );
    for round in 0..3 {
        for (i, (head, body)) in cases.iter().enumerate() {
            let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
            let (status, headers) = raw_request(&mut stream, head.clone(), body.clone())
                .await
                .unwrap_or_else(|| panic!("case {i}, round {round}: no answer to the first POST"));
            assert!(
                status == 400 || status == 413,
                "case {i}: unexpected status {status}"
            );
            if headers.get("connection").is_some_and(|v| v == "close") {
                continue;
            }
            let second = raw_request(&mut stream, next_head.clone(), next.clone()).await;
            assert!(
                second.as_ref().is_some_and(|(s, _)| *s == 202),
                "case {i}, round {round}: the {status} kept the connection alive, but the next \
                 POST on it got {second:?}"
            );
        }
    }
    app.stop().await;
}

/// Completions commit durably, and a transaction that notifies holds PostgreSQL's notify lock
/// across its flush: so the completion statement leaves the status notification to the worker,
/// which sends it after the commit (sql/0007). The claim (asynchronous) still notifies from its
/// trigger; a completion by the worker's statement does not; `notify_status` does.
#[tokio::test]
async fn completion_status_is_notified_after_its_commit_not_inside_it() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::worker_pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = tokio::spawn(db::listener::run(
        url.clone(),
        vec!["image_status"],
        move |event| {
            let _ = tx.send(match event {
                db::listener::ListenEvent::Notification { payload, .. } => payload,
                db::listener::ListenEvent::Connected => "connected".into(),
            });
        },
        cancel.clone(),
    ));
    // Insert only once the listener listens: an insert before its LISTEN is never reported
    // (this raced, and failed once under a loaded machine).
    let connected = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("the listener connects")
        .expect("listener alive");
    assert_eq!(connected, "connected");
    insert_jobs(&client, 1).await;
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the insert's notification")
        .expect("listener alive");
    assert!(first.ends_with(":pending"), "{first}");
    let job = jobs::claim_jobs(&client, "w", 1, Duration::from_secs(30), i64::MAX)
        .await
        .expect("claim")
        .remove(0);
    let claimed = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the claim's notification")
        .expect("listener alive");
    assert_eq!(claimed, format!("{}:processing", job.id));
    let fence = jobs::Fence {
        id: job.id,
        worker: "w",
        claim: job.claim,
        variant: None,
    };
    assert!(jobs::complete_if_still_owner(&client, &fence, &late_completion())
        .await
        .expect("complete"));
    let quiet = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    assert!(
        quiet.is_err(),
        "the completion notified inside its transaction: {quiet:?}"
    );
    jobs::notify_status(&client, &fence, image_processor::states::JobStatus::Completed)
        .await
        .expect("notify");
    let done = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the worker's notification")
        .expect("listener alive");
    assert_eq!(done, format!("{}:completed", job.id));
    cancel.cancel();
    let _ = listener.await;
}

/// How far a claim reaches ahead (`jobs::Take`, what a worker with short jobs asks for): all of
/// the rows its free threads start at once, and past those only while the originals up to each
/// row add up to at most its bytes, in queue order. The rows it leaves stay pending, untouched.
/// The variants' claim counts the image's original the same way.
#[tokio::test]
async fn a_claim_ahead_takes_rows_only_while_their_originals_fit_its_bytes() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let pool = db::pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    // Five originals of 100 000 bytes, one statement each, so the queue order is insert order.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let row = client
            .query_one(
                "insert into processed_images (original_data) values ($1) returning id",
                &[&vec![7u8; 100_000]],
            )
            .await
            .expect("insert");
        ids.push(row.get::<_, uuid::Uuid>(0));
    }
    let lease = Duration::from_secs(30);
    let ahead = |rows, now, ahead_bytes| jobs::Take {
        rows,
        now,
        ahead_bytes,
    };
    // One starts at once; the second fits 250 000 bytes with it (200 000), the third not.
    let first = jobs::claim_jobs(&client, "worker-a", ahead(5, 1, 250_000), lease, i64::MAX)
        .await
        .expect("claim");
    assert_eq!(first.iter().map(|j| j.id).collect::<Vec<_>>(), ids[..2]);
    assert!(first
        .iter()
        .all(|j| j.original.as_ref().map(Vec::len) == Some(100_000)));
    let left: Vec<(String, i32, i64)> = client
        .query(
            "select status, attempts, claim_seq from processed_images where id = any($1)",
            &[&&ids[2..]],
        )
        .await
        .expect("rows left")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        left,
        vec![("pending".to_owned(), 0, 0); 3],
        "a row left by the claim was touched"
    );
    // Rows that start at once are taken whatever their size.
    let second = jobs::claim_jobs(&client, "worker-a", ahead(5, 2, 0), lease, i64::MAX)
        .await
        .expect("claim");
    assert_eq!(second.iter().map(|j| j.id).collect::<Vec<_>>(), ids[2..4]);
    let last = jobs::claim_jobs(&client, "worker-a", 5, lease, i64::MAX)
        .await
        .expect("claim");
    assert_eq!(last.iter().map(|j| j.id).collect::<Vec<_>>(), ids[4..]);

    // Variants: three of one image count its original three times.
    client
        .batch_execute(
            "insert into image_presets (name, pipeline) values
                 ('a', '{\"operations\": []}'), ('b', '{\"operations\": []}'), ('c', '{\"operations\": []}');",
        )
        .await
        .expect("presets");
    for preset in ["a", "b", "c"] {
        client
            .execute(
                "insert into image_variants (image_id, preset) values ($1, $2)",
                &[&ids[0], &preset],
            )
            .await
            .expect("a variant");
    }
    let variants = db::variants::claim_variants(
        &client,
        db::variants::CLAIM_VARIANTS,
        "worker-a",
        ahead(3, 1, 150_000),
        lease,
        i64::MAX,
    )
    .await
    .expect("claim variants");
    assert_eq!(
        variants.len(),
        1,
        "the second variant's original would pass 150 000 bytes"
    );
    let rest = db::variants::claim_variants(
        &client,
        db::variants::CLAIM_VARIANTS,
        "worker-a",
        ahead(3, 0, 200_000),
        lease,
        i64::MAX,
    )
    .await
    .expect("claim variants");
    assert_eq!(rest.len(), 2);
}
