//! Destinations and receivers that must not get through or tie anything up: loopback without
//! `WEBHOOK_ALLOW_PRIVATE` (by IP literal and by name), a redirect, a receiver that hangs while
//! images keep completing, and one that streams a body without end.

use std::time::{Duration, Instant};

use image_processor::config::Role;

use super::receiver::{Answer, Receiver};
use super::{settled_deliveries, upload_with_callback};
use crate::common::*;

#[tokio::test]
async fn loopback_destinations_are_refused_and_recorded_without_allow_private() {
    let rx = Receiver::start(vec![]).await;
    let app = spawn_app_with(Role::Run, &[]).await;
    let by_ip = upload_with_callback(&app, &rx.url("/by-ip")).await;
    let by_name = upload_with_callback(&app, &format!("http://localhost:{}/by-name", rx.addr.port())).await;
    for id in [&by_ip, &by_name] {
        let log = settled_deliveries(&app, id).await;
        let d = &log["deliveries"][0];
        assert_eq!(d["state"], "failed", "{log}");
        let attempts = d["attempts"].as_array().expect("attempts");
        assert_eq!(attempts.len(), 1, "a refusal is not retried: {log}");
        assert_eq!(attempts[0]["outcome"], "refused", "{log}");
        assert!(attempts[0]["status_code"].is_null(), "{log}");
        assert!(
            attempts[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("WEBHOOK_ALLOW_PRIVATE")),
            "{log}"
        );
    }
    assert!(rx.requests().is_empty(), "a refused destination was reached");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metric_value(
            &metrics,
            "image_processor_webhook_deliveries_total{outcome=\"refused\"}"
        )
        .is_some_and(|n| n >= 2.0),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let target = Receiver::start(vec![]).await;
    let rx = Receiver::start(vec![Answer::RedirectTo(target.url("/elsewhere"))]).await;
    let app = spawn_app_with(
        Role::Run,
        &[("webhook-allow-private", "true"), ("webhook-max-attempts", "1")],
    )
    .await;
    let id = upload_with_callback(&app, &rx.url("/moved")).await;
    let log = settled_deliveries(&app, &id).await;
    let attempt = &log["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["status_code"], 302, "{log}");
    assert_eq!(attempt["outcome"], "failed", "{log}");
    assert_eq!(rx.requests().len(), 1);
    assert!(target.requests().is_empty(), "the redirect was followed");
    // Deleting the image deletes its events and their attempts.
    let res = app
        .call(reqwest::Method::DELETE, &format!("/api/images/{id}"))
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    let left: i64 = app
        .db()
        .await
        .query_one(
            "select (select count(*) from webhook_deliveries) + (select count(*) from webhook_attempts)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0, "events outlived their image");
    app.stop().await;
}

#[tokio::test]
async fn a_hanging_receiver_times_out_while_images_keep_completing() {
    let rx = Receiver::start(vec![Answer::Hang]).await;
    let app = spawn_app_with(
        Role::Run,
        &[
            ("webhook-allow-private", "true"),
            ("webhook-max-attempts", "1"),
            ("webhook-timeout-secs", "3"),
            ("worker-threads", "1"),
        ],
    )
    .await;
    let id = upload_with_callback(&app, &rx.url("/slow")).await;
    rx.wait_for(1, Duration::from_secs(30)).await;
    // The delivery hangs; the one image thread is free for the next job all the same.
    let started = Instant::now();
    let other: serde_json::Value = upload_png(&app, png(30, 20), &[])
        .await
        .json()
        .await
        .expect("json");
    let done = app.wait_done(other["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "completed");
    let waited = started.elapsed();
    let log = settled_deliveries(&app, &id).await;
    let attempt = &log["deliveries"][0]["attempts"][0];
    assert_eq!(attempt["outcome"], "failed", "{log}");
    assert!(attempt["status_code"].is_null(), "{log}");
    assert!(
        attempt["error"]
            .as_str()
            .is_some_and(|e| e.contains("within 3 s")),
        "{log}"
    );
    let took = attempt["duration_ms"].as_i64().expect("duration");
    assert!((2900..6000).contains(&took), "attempt took {took} ms");
    assert!(
        waited < Duration::from_millis(took as u64),
        "the other image took {waited:?}, as long as the hanging delivery ({took} ms)"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_streaming_an_endless_body_is_cut_off() {
    let rx = Receiver::start(vec![Answer::Flood]).await;
    let app = spawn_app_with(
        Role::Run,
        &[("webhook-allow-private", "true"), ("webhook-timeout-secs", "10")],
    )
    .await;
    let id = upload_with_callback(&app, &rx.url("/flood")).await;
    let log = settled_deliveries(&app, &id).await;
    let attempt = &log["deliveries"][0]["attempts"][0];
    // The status arrived before the body: delivered, without reading the rest.
    assert_eq!(attempt["status_code"], 200, "{log}");
    assert_eq!(attempt["outcome"], "delivered", "{log}");
    let took = attempt["duration_ms"].as_i64().expect("duration");
    assert!(took < 5000, "reading the answer took {took} ms");
    // What the receiver could push: 64 KiB read, plus what socket buffers hold.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pushed = rx.flooded_bytes();
    assert!(pushed < 32 << 20, "the receiver pushed {pushed} bytes");
    app.stop().await;
}
