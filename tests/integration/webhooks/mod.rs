//! Webhooks (issue 19): signed events from the outbox to a real receiver in this process,
//! retries with growing gaps and one `webhook-id`, order per image, durability across a
//! SIGKILLed worker, `callback_url` validation and the deliveries route. `hostile`: receivers
//! and destinations that must not get through or tie anything up.

mod hostile;
mod receiver;

use std::time::Duration;

use image_processor::config::Role;
use reqwest::StatusCode;

use self::receiver::{assert_signed, secret, Answer, Receiver};
use crate::common::*;

/// Uploads a small PNG with `callback_url`; returns its id.
async fn upload_with_callback(app: &TestApp, callback: &str) -> String {
    let res = upload_png(app, png(40, 30), &[("callback_url", callback), ("width", "20")]).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["callback_url"], callback, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// `GET /api/images/{id}/deliveries`, once it shows every event in a final state.
async fn settled_deliveries(app: &TestApp, id: &str) -> serde_json::Value {
    let path = format!("/api/images/{id}/deliveries");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = app.get_json(&path).await;
        let settled = log["deliveries"].as_array().is_some_and(|d| {
            !d.is_empty()
                && d.iter()
                    .all(|e| e["state"] == "delivered" || e["state"] == "failed")
        });
        if settled {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries never settled: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn completed_and_failed_images_deliver_signed_events_with_the_api_image_object() {
    let callback = Receiver::start(vec![]).await;
    let global = Receiver::start(vec![]).await;
    let (secret, key) = secret();
    let app = spawn_app_with(
        Role::Run,
        &[
            ("webhook-url", &global.url("/all")),
            ("webhook-secret", &secret),
            ("webhook-allow-private", "true"),
        ],
    )
    .await;
    let id = upload_with_callback(&app, &callback.url("/hook?source=test")).await;
    // A plain SQL job that cannot be decoded fails; it has no callback, so only WEBHOOK_URL hears.
    let failed: uuid::Uuid = app
        .db()
        .await
        .query_one(
            "insert into processed_images (original_data) values ('not an image at all'::bytea) returning id",
            &[],
        )
        .await
        .expect("insert")
        .get(0);

    let got = callback.wait_for(1, Duration::from_secs(30)).await;
    let event = got[0].json();
    assert_eq!(event["event"], "image.completed", "{event}");
    assert_signed(&got[0], &key);
    assert!(got[0].header("webhook-id").starts_with("msg_"));
    assert_eq!(got[0].header("content-type"), "application/json");
    // The image object is the API's, as it was when the image finished.
    let shown = app.get_json(&format!("/api/images/{id}")).await;
    assert_eq!(
        event["image"], shown,
        "webhook image object differs from the API's"
    );

    let all = global.wait_for(2, Duration::from_secs(30)).await;
    for request in &all {
        assert_signed(request, &key);
    }
    let mut events: Vec<(String, String)> = all
        .iter()
        .map(|r| {
            let v = r.json();
            (
                v["event"].as_str().unwrap_or("").to_owned(),
                v["image"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            ("image.completed".to_owned(), id.clone()),
            ("image.failed".to_owned(), failed.to_string())
        ]
    );
    let failed_event = all
        .iter()
        .map(|r| r.json())
        .find(|v| v["event"] == "image.failed")
        .expect("failed event");
    assert_eq!(failed_event["image"]["status"], "failed");
    assert!(failed_event["image"]["error_code"].is_string(), "{failed_event}");
    // The callback and the global URL are two events with ids of their own.
    assert_ne!(got[0].header("webhook-id"), all[0].header("webhook-id"));

    let log = settled_deliveries(&app, &id).await;
    let deliveries = log["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 2, "{log}");
    for d in deliveries {
        assert_eq!(d["state"], "delivered", "{log}");
        assert_eq!(d["attempts"][0]["status_code"], 200, "{log}");
        assert_eq!(d["attempts"][0]["outcome"], "delivered", "{log}");
        assert!(d["attempts"][0]["duration_ms"].is_number(), "{log}");
    }
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metric_value(
            &metrics,
            "image_processor_webhook_deliveries_total{outcome=\"delivered\"}"
        )
        .is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    assert!(
        metrics.contains("image_processor_webhook_delivery_latency_seconds_count"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_growing_gaps_and_the_same_webhook_id() {
    let rx = Receiver::start(vec![Answer::Status(500), Answer::Status(503)]).await;
    let app = spawn_app_with(
        Role::Run,
        &[
            ("webhook-allow-private", "true"),
            ("webhook-retry-base-ms", "400"),
        ],
    )
    .await;
    let id = upload_with_callback(&app, &rx.url("/flaky")).await;
    let got = rx.wait_for(3, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 3, "a delivered event is not sent again");
    let ids: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    let (gap1, gap2) = (got[1].at - got[0].at, got[2].at - got[1].at);
    // Backoff with jitter: [200, 400] ms, then [400, 800] ms (plus the loop's own latency).
    assert!(gap1 >= Duration::from_millis(190), "first gap {gap1:?}");
    assert!(gap2 > gap1, "gaps did not grow: {gap1:?} then {gap2:?}");
    // Each attempt is signed afresh: same id and body, its own timestamp header.
    assert!(got.iter().all(|r| r.body == got[0].body));

    let log = settled_deliveries(&app, &id).await;
    let attempts = log["deliveries"][0]["attempts"]
        .as_array()
        .expect("attempts")
        .clone();
    let summary: Vec<(i64, String)> = attempts
        .iter()
        .map(|a| {
            (
                a["status_code"].as_i64().unwrap_or(0),
                a["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (500, "retried".to_owned()),
            (503, "retried".to_owned()),
            (200, "delivered".to_owned())
        ],
        "{log}"
    );
    assert_eq!(log["deliveries"][0]["webhook_id"], ids[0].as_str());
    app.stop().await;
}

#[tokio::test]
async fn a_later_event_of_an_image_waits_for_the_earlier_one() {
    let rx = Receiver::start(vec![Answer::Status(500)]).await;
    let app = spawn_app_with(
        Role::Run,
        &[
            ("webhook-allow-private", "true"),
            ("webhook-retry-base-ms", "3000"),
        ],
    )
    .await;
    let id = upload_with_callback(&app, &rx.url("/ordered")).await;
    rx.wait_for(1, Duration::from_secs(30)).await;
    // The first event now backs off 1.5-3 s; the image is retried and completes again meanwhile.
    let res = app
        .call(reqwest::Method::POST, &format!("/api/images/{id}/retry"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let got = rx.wait_for(3, Duration::from_secs(30)).await;
    let ids: Vec<String> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(
        ids[0], ids[1],
        "the first event's retry comes before the second event: {ids:?}"
    );
    assert_ne!(ids[1], ids[2], "{ids:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_survives_a_sigkilled_worker_and_keeps_its_webhook_id() {
    let rx = Receiver::start(vec![Answer::Hang]).await;
    let api = spawn_app_with(Role::Api, &[]).await;
    let env = [
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WEBHOOK_TIMEOUT_SECS", "2"),
        ("WORKER_THREADS", "1"),
    ];
    let mut first = Proc::spawn("worker", &api.db_url, &env);
    let id = upload_with_callback(&api, &rx.url("/durable")).await;
    // The worker is mid-delivery (the receiver holds the request): kill it there.
    rx.wait_for(1, Duration::from_secs(30)).await;
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("the worker died");
    let state: String = api
        .db()
        .await
        .query_one(
            "select state from webhook_deliveries where image_id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("delivery row")
        .get(0);
    assert_eq!(state, "delivering", "the killed worker's claim is still there");

    // A new worker takes the delivery back once the lease (2 × 2 s + 5 s) runs out.
    let _second = Proc::spawn("worker", &api.db_url, &env);
    let got = rx.wait_for(2, Duration::from_secs(40)).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let log = settled_deliveries(&api, &id).await;
    let d = &log["deliveries"][0];
    assert_eq!(d["state"], "delivered", "{log}");
    assert_eq!(d["attempts"][0]["outcome"], "retried", "{log}");
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("worker lost")),
        "{log}"
    );
    assert_eq!(d["attempts"][1]["status_code"], 200, "{log}");
    api.stop().await;
}

#[tokio::test]
async fn callback_url_is_checked_and_named() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let long = format!("https://example.com/{}", "a".repeat(2048));
    for bad in [
        "ftp://example.com/hook",
        "not a url",
        "http://",
        "/relative/hook",
        &long,
    ] {
        let res = upload_png(&app, png(8, 8), &[("callback_url", bad)]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_error(bad, &body, "invalid_parameter");
        assert_eq!(body["error"]["param"], "callback_url", "{body}");
    }
    // Accepted beside a `pipeline`; an image without one shows no `callback_url` at all.
    let res = upload_png(
        &app,
        png(8, 8),
        &[
            ("pipeline", r#"{"steps":[{"op":"grayscale"}]}"#),
            ("callback_url", "https://example.com/h"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let plain: serde_json::Value = upload_png(&app, png(8, 8), &[]).await.json().await.expect("json");
    assert!(plain.get("callback_url").is_none(), "{plain}");
    app.stop().await;
}

#[tokio::test]
async fn the_deliveries_route_answers_404_for_an_unknown_image_and_lists_none_without_webhooks() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let res = app
        .get(&format!("/api/images/{}/deliveries", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app.get("/api/images/not-a-uuid/deliveries").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let plain: serde_json::Value = upload_png(&app, png(8, 8), &[]).await.json().await.expect("json");
    let id = plain["id"].as_str().expect("id");
    let log = app.get_json(&format!("/api/images/{id}/deliveries")).await;
    assert_eq!(log, serde_json::json!({"deliveries": []}));
    app.stop().await;
}
