//! The dedicated LISTEN connection: outside the pool, pinged, reconnected with jittered backoff.
//!
//! It only delivers hints. Every (re)connect is reported as [`ListenEvent::Connected`] so the
//! owner can sweep for whatever was notified while nobody listened.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use tokio_util::sync::CancellationToken;

use super::DbError;
use crate::backoff;

/// How often the idle connection is checked; a dead one is noticed within about this long.
const PING_EVERY: Duration = Duration::from_secs(5);

/// A connection must stay up this long before the reconnect backoff starts again from its
/// shortest delay; one that flaps (connects, listens, drops) keeps backing off.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// What the listener reports.
#[derive(Debug, Clone)]
pub enum ListenEvent {
    /// (Re)connected and listening: notifications may have been missed, sweep now.
    Connected,
    /// A notification on one of the channels.
    Notification { channel: String, payload: String },
}

/// Listens on `channels` until `cancel` fires, reconnecting on any failure.
pub async fn run(
    url: String,
    channels: Vec<&'static str>,
    on_event: impl Fn(ListenEvent) + Send + Sync + 'static,
    cancel: CancellationToken,
) {
    let mut failures = 0u32;
    while !cancel.is_cancelled() {
        let started = tokio::time::Instant::now();
        match session(&url, &channels, &on_event, &cancel).await {
            Ok(()) => return,
            Err(e) => {
                if started.elapsed() >= STABLE_AFTER {
                    failures = 0;
                }
                let wait = backoff::delay(failures, Duration::from_millis(100), Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "LISTEN connection lost");
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

async fn session(
    url: &str,
    channels: &[&'static str],
    on_event: &(impl Fn(ListenEvent) + Send + Sync),
    cancel: &CancellationToken,
) -> Result<(), DbError> {
    let cfg = super::pg_config(url).map_err(|e| DbError::Unavailable(e.to_string()))?;
    let (client, mut connection) = cfg.connect(NoTls).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The connection must be polled for notifications to arrive; this task does only that.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send((n.channel().to_owned(), n.payload().to_owned())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "LISTEN connection error");
                    return;
                }
            }
        }
    });
    let _abort_driver = AbortOnDrop(driver);
    let listen: String = channels.iter().map(|c| format!("listen {c};")).collect();
    tokio::time::timeout(super::CALL_TIMEOUT, client.batch_execute(&listen))
        .await
        .map_err(|_| DbError::timed_out())??;
    tracing::debug!(?channels, "listening");
    on_event(ListenEvent::Connected);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            message = rx.recv() => match message {
                Some((channel, payload)) => on_event(ListenEvent::Notification { channel, payload }),
                None => return Err(DbError::Unavailable("LISTEN connection closed".into())),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(super::CONNECT_TIMEOUT, client.simple_query("select 1")).await {
                    Ok(result) => { result?; }
                    Err(_) => return Err(DbError::Unavailable("LISTEN connection ping timed out".into())),
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
