//! Issue 15, item 6: dead connections are noticed. A TCP proxy between the worker and
//! PostgreSQL stops forwarding on the connections it already has (sockets stay open, nothing
//! moves: a half-open connection, as a partition or a hung middlebox leaves it) while new
//! connections go through. The worker must resume on new connections, and SIGTERM must still
//! end it within its grace period.
//!
//! Multi-threaded runtimes: the proxy runs in the test process, and must keep forwarding while
//! the test blocks in `Proc::wait_exit`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use image_processor::db;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// Forwards to `upstream`; [`FreezingProxy::freeze`] stops every connection accepted so far.
struct FreezingProxy {
    port: u16,
    /// Connections with a number below this are frozen.
    frozen_below: watch::Sender<u64>,
    accepted: Arc<std::sync::atomic::AtomicU64>,
}

impl FreezingProxy {
    async fn start(upstream: u16) -> FreezingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let (frozen_below, _) = watch::channel(0u64);
        let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (tx, counter) = (frozen_below.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let number = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let freeze = tx.subscribe();
                tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    let up = tokio::spawn(pump(in_read, out_write, number, freeze.clone()));
                    let down = tokio::spawn(pump(out_read, in_write, number, freeze));
                    let _ = tokio::join!(up, down);
                });
            }
        });
        FreezingProxy {
            port,
            frozen_below,
            accepted,
        }
    }

    /// Every connection open now stops forwarding, for good; later ones work.
    fn freeze(&self) {
        let now = self.accepted.load(std::sync::atomic::Ordering::SeqCst);
        self.frozen_below.send_replace(now);
    }

    fn connections(&self) -> u64 {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Copies one direction until the peer closes, or until this connection is frozen: then it
/// holds both halves open and moves nothing, for ever.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    number: u64,
    mut freeze: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if *freeze.borrow() > number {
            std::future::pending::<()>().await;
        }
        tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *freeze.borrow() > number {
                        std::future::pending::<()>().await;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = freeze.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

async fn via_proxy(url: &str) -> (FreezingProxy, String) {
    let upstream = cluster().await.pg.port();
    let proxy = FreezingProxy::start(upstream).await;
    let proxied = url.replace(
        &format!("127.0.0.1:{upstream}/"),
        &format!("127.0.0.1:{}/", proxy.port),
    );
    assert_ne!(proxied, url, "the proxy URL must differ: {url}");
    (proxy, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_partitioned_from_database_resumes_on_new_connections() {
    let test_db = fresh_database().await;
    let db = db::connect(&test_db.url).await.expect("connect");
    let (proxy, url) = via_proxy(&test_db.url).await;
    let worker = Proc::spawn("worker", &url, &[("SWEEP_SECS", "5")]);
    insert_jobs(&db, 5).await;
    assert!(
        wait_completed(&db, 5, Duration::from_secs(30)).await,
        "the worker did not work through the proxy:\n{}",
        worker.log_text()
    );
    let before = proxy.connections();
    proxy.freeze();
    let frozen_at = Instant::now();
    insert_jobs(&db, 20).await;
    let resumed = wait_completed(&db, 25, Duration::from_secs(60)).await;
    let took = frozen_at.elapsed();
    assert!(
        resumed,
        "the partitioned worker never resumed: {:?}\n{}",
        counts(&db).await,
        worker.log_text()
    );
    println!(
        "all 20 jobs done {:.1} s after the worker's {before} connections froze \
         ({} new connections made)",
        took.as_secs_f64(),
        proxy.connections() - before
    );
    assert!(proxy.connections() > before, "done without a new connection?");
    assert!(took <= Duration::from_secs(30), "resumed only after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_partition_exits_within_the_grace_period() {
    let test_db = fresh_database().await;
    let db = db::connect(&test_db.url).await.expect("connect");
    let (proxy, url) = via_proxy(&test_db.url).await;
    let grace = 5;
    let mut worker = Proc::spawn(
        "worker",
        &url,
        &[
            ("WORKER_TEST_HOOKS", "1"),
            ("WORKER_TEST_DELAY_MS", "3000"),
            ("SHUTDOWN_GRACE_SECS", "5"),
            ("WORKER_THREADS", "2"),
        ],
    );
    insert_jobs(&db, 4).await;
    assert!(
        wait_processing(&db, 2, Duration::from_secs(30)).await,
        "never claimed:\n{}",
        worker.log_text()
    );
    proxy.freeze();
    worker.signal(Signal::SIGTERM);
    let asked = Instant::now();
    let exit = worker.wait_exit(Duration::from_secs(60));
    let took = asked.elapsed();
    assert!(
        exit.is_some(),
        "still running 60 s after SIGTERM:\n{}",
        worker.log_text()
    );
    println!(
        "exited {exit:?} {:.1} s after SIGTERM during a partition (SHUTDOWN_GRACE_SECS={grace})",
        took.as_secs_f64()
    );
    // The grace period, then at most the bounded wait for releases (5 s) and a busy machine.
    assert!(
        took <= Duration::from_secs(grace + 5 + 2),
        "took {took:?}:\n{}",
        worker.log_text()
    );
    assert!(
        exit.is_some_and(|s| s.success()),
        "{exit:?}:\n{}",
        worker.log_text()
    );
}
