//! Nothing stuck, nothing lost (issue 15): fencing tokens that never repeat, completions that
//! survive a database crash, write-backs that back off, and the small things (null pipelines,
//! a flapping LISTEN connection, metrics from start-up, early answers on kept-alive
//! connections). Real PostgreSQL, real worker processes, every wait bounded.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use image_processor::db::{self, jobs};

/// Inserts `n` small PNG jobs by plain SQL.
async fn insert_jobs(client: &impl deadpool_postgres::GenericClient, n: i32) {
    client
        .execute(
            "insert into processed_images (original_data) select $1 from generate_series(1, $2::int)",
            &[&png(32, 24), &n],
        )
        .await
        .expect("insert jobs");
}

fn late_completion() -> jobs::Completion<'static> {
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
    let url = fresh_database().await;
    let pool = db::pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    insert_jobs(&client, 1).await;
    let lease = Duration::from_secs(30);

    let first = jobs::claim_jobs(&client, "worker-a", 1, lease)
        .await
        .expect("claim")
        .remove(0);
    let stale = jobs::Fence {
        id: first.id,
        worker: "worker-a",
        claim: first.claim,
    };
    assert!(jobs::release_job(&client, &stale).await.expect("release"));
    let second = jobs::claim_jobs(&client, "worker-a", 1, lease)
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
    let url = fresh_database().await;
    let pool = db::pool(&url, 2).expect("pool");
    let client = pool.get().await.expect("connection");
    insert_jobs(&client, 1).await;
    let lease = Duration::from_secs(30);

    let first = jobs::claim_jobs(&client, "worker-a", 1, lease)
        .await
        .expect("claim")
        .remove(0);
    let stale = jobs::Fence {
        id: first.id,
        worker: "worker-a",
        claim: first.claim,
    };
    // The first claim's lease runs out; the sweep re-queues it and it ends failed, then a user
    // retries it. Reaping with a budget of 1 fails the row at once.
    client
        .execute(
            "update processed_images set lease_expires_at = now() - interval '1 s'",
            &[],
        )
        .await
        .expect("expire the lease");
    assert_eq!(jobs::reap_expired(&client, 1).await.expect("reap"), 1);
    assert!(db::images::retry_image(&client, first.id)
        .await
        .expect("retry")
        .is_some());
    let second = jobs::claim_jobs(&client, "worker-a", 1, lease)
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
