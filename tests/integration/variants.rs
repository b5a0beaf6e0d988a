//! Variants: one image processed with a preset, each a job on the same queue (SPEC "Variants,
//! presets and signed delivery"). The SQL path, the worker's rules (fence, cascade of retry,
//! cancel and delete, a preset deleted under queued variants), and the HTTP routes.

use std::time::Duration;

use image_processor::config::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::common::*;

async fn put_preset_sql(client: &tokio_postgres::Client, name: &str, pipeline: Value) {
    client
        .execute(
            "insert into image_presets (name, pipeline) values ($1, $2)
             on conflict (name) do update set pipeline = excluded.pipeline",
            &[&name, &pipeline],
        )
        .await
        .expect("insert preset");
}

async fn insert_image(client: &tokio_postgres::Client, bytes: &[u8]) -> Uuid {
    client
        .query_one(
            "insert into processed_images (original_data, filename) values ($1, 'v.png') returning id",
            &[&bytes],
        )
        .await
        .expect("insert image")
        .get(0)
}

/// `(status, width, height, content_type, error_code)` of a variant row.
type Row = (String, Option<i32>, Option<i32>, Option<String>, Option<String>);

async fn variant_row(client: &tokio_postgres::Client, id: Uuid, preset: &str) -> Option<Row> {
    client
        .query_opt(
            "select status, width, height, content_type, error_code from image_variants
             where image_id = $1 and preset = $2 and format = ''",
            &[&id, &preset],
        )
        .await
        .expect("variant row")
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
}

async fn wait_variant(client: &tokio_postgres::Client, id: Uuid, preset: &str, status: &str) -> Row {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = variant_row(client, id, preset).await;
        if let Some(row) = row.filter(|r| r.0 == status) {
            return row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "variant {preset} of {id} never became {status}: {:?}",
            variant_row(client, id, preset).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sql_insert_of_a_variant_is_a_job_the_worker_makes() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    put_preset_sql(
        &client,
        "thumb",
        json!({"width": 40, "height": 40, "fit": "cover", "format": "webp"}),
    )
    .await;
    put_preset_sql(&client, "auto", json!({"width": 50, "format": "auto"})).await;
    let id = insert_image(&client, &png(200, 100)).await;
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'thumb'), ($1, 'auto'), ($1, 'ghost')",
            &[&id],
        )
        .await
        .expect("insert variants");

    let thumb = wait_variant(&client, id, "thumb", "completed").await;
    assert_eq!((thumb.1, thumb.2), (Some(40), Some(40)), "{thumb:?}");
    assert_eq!(thumb.3.as_deref(), Some("image/webp"));
    // auto with no Accept (a SQL insert): the universal format; an opaque PNG becomes JPEG.
    let auto = wait_variant(&client, id, "auto", "completed").await;
    assert_eq!((auto.1, auto.2), (Some(50), Some(25)), "{auto:?}");
    assert_eq!(auto.3.as_deref(), Some("image/jpeg"));
    let ghost = wait_variant(&client, id, "ghost", "failed").await;
    assert_eq!(ghost.4.as_deref(), Some("unknown_preset"));
    // The image itself completed too, with its thumbnail; the variants made none.
    let image = app.wait_done(&id.to_string()).await;
    assert_eq!(image["status"], "completed", "{image}");
    app.stop().await;
}

#[tokio::test]
async fn retry_cancel_and_delete_of_an_image_cover_its_variants_and_a_deleted_preset_fails_its_queue() {
    // API only: nothing is processed, so every state is the one the statements left.
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    put_preset_sql(&client, "small", json!({"width": 10})).await;
    put_preset_sql(&client, "gone", json!({"width": 20})).await;
    let id = insert_image(&client, &png(30, 30)).await;
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'small'), ($1, 'gone')",
            &[&id],
        )
        .await
        .expect("insert variants");

    client
        .execute("delete from image_presets where name = 'gone'", &[])
        .await
        .expect("delete preset");
    let gone = variant_row(&client, id, "gone").await.expect("row");
    assert_eq!(
        (gone.0.as_str(), gone.4.as_deref()),
        ("failed", Some("preset_deleted")),
        "{gone:?}"
    );

    // Cancel the image: its unfinished variant is cancelled with it.
    let res = app
        .call(reqwest::Method::POST, &format!("/api/images/{id}/cancel"))
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let small = variant_row(&client, id, "small").await.expect("row");
    assert_eq!(small.0, "cancelled", "{small:?}");

    // Retry the image: every finished variant is queued again.
    let res = app
        .call(reqwest::Method::POST, &format!("/api/images/{id}/retry"))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    for preset in ["small", "gone"] {
        let row = variant_row(&client, id, preset).await.expect("row");
        assert_eq!(row.0, "pending", "{preset}: {row:?}");
    }

    // Delete: the variants go with the image.
    let res = app
        .call(reqwest::Method::DELETE, &format!("/api/images/{id}"))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let left: i64 = client
        .query_one("select count(*) from image_variants where image_id = $1", &[&id])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 0);
    app.stop().await;
}

const SIGNING_KEY: &str = "test-signing-key-of-at-least-32-bytes!!";

async fn json_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Uploads a PNG with `variants` and returns its id and the answer.
async fn upload_with_variants(app: &TestApp, png: Vec<u8>, variants: &str) -> (String, Value) {
    let res = upload_png(app, png, &[("variants", variants)]).await;
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    (body["id"].as_str().expect("id").to_owned(), body)
}

#[tokio::test]
async fn an_upload_queues_its_variants_and_the_route_serves_them_with_cache_headers() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    put_preset_sql(
        &client,
        "thumb",
        json!({"width": 64, "height": 64, "fit": "cover", "format": "webp"}),
    )
    .await;
    put_preset_sql(
        &client,
        "card",
        json!({"steps": [{"op": "resize", "width": 120}], "format": "png"}),
    )
    .await;

    // Unknown and malformed presets are refused before anything is stored.
    for (variants, want) in [("thumb,ghost", "ghost"), ("Thumb", "a-z"), ("../x", "a-z")] {
        let (status, body) = json_of(upload_png(&app, png(10, 10), &[("variants", variants)]).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variants}: {body}");
        assert_eq!(body["error"]["param"], "variants", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap_or("").contains(want),
            "{body}"
        );
    }
    let stored: i64 = client
        .query_one("select count(*) from processed_images", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(stored, 0, "a refused upload stored something");

    let (id, body) = upload_with_variants(&app, png(300, 200), "thumb, card,thumb").await;
    let listed: Vec<&String> = body["variants"].as_object().expect("variants").keys().collect();
    assert_eq!(listed, ["card", "thumb"], "{body}");
    assert_eq!(body["variants"]["thumb"]["status"], "pending", "{body}");
    assert_eq!(
        body["variants"]["thumb"]["url"],
        format!("/api/images/{id}/variants/thumb")
    );

    // Held until made, then the bytes with download headers.
    let res = app.get(&format!("/api/images/{id}/variants/thumb?wait=30")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/webp");
    assert_eq!(h["cache-control"], "private, no-cache");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename=\"upload-thumb.webp\""),
        "{h:?}"
    );
    assert!(
        h.get("vary").is_none(),
        "a fixed-format preset does not vary: {h:?}"
    );
    let etag = h["etag"].to_str().expect("etag").to_owned();
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "strong: {etag}");
    let bytes = res.bytes().await.expect("bytes");
    let img = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!((img.width(), img.height()), (64, 64));

    let res = app
        .http
        .get(app.url(&format!("/api/images/{id}/variants/thumb")))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // The image object lists both once made.
    let card = app.get(&format!("/api/images/{id}/variants/card?wait=30")).await;
    assert_eq!(card.status(), StatusCode::OK);
    let object = app.get_json(&format!("/api/images/{id}")).await;
    assert_eq!(object["variants"]["card"]["status"], "completed", "{object}");
    assert_eq!(object["variants"]["card"]["width"], 120, "{object}");
    assert_eq!(
        object["variants"]["card"]["content_type"], "image/png",
        "{object}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    // The recorder is the process's, shared with the other tests: at least this one.
    assert!(
        metric_value(
            &metrics,
            r#"image_processor_variants_total{preset="thumb",outcome="completed"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_variant_is_made_on_first_request_and_auto_formats_follow_accept() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    put_preset_sql(&client, "auto", json!({"width": 40, "format": "auto"})).await;
    let res = upload_png(&app, png(80, 60), &[]).await;
    let id = json_of(res).await.1["id"].as_str().expect("id").to_owned();
    app.wait_done(&id).await;

    // Not asked for at upload: the first request queues it (202), a wait gets the bytes.
    let (status, body) = json_of(app.get(&format!("/api/images/{id}/variants/auto")).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(
        matches!(body["status"].as_str(), Some("pending" | "processing")),
        "{body}"
    );
    for (accept, want) in [
        ("image/avif,image/webp,*/*", "image/avif"),
        ("image/webp,*/*;q=0.8", "image/webp"),
        ("*/*", "image/jpeg"),
    ] {
        let res = app
            .http
            .get(app.url(&format!("/api/images/{id}/variants/auto?wait=30")))
            .header("accept", accept)
            .send()
            .await
            .expect("variant");
        assert_eq!(res.status(), StatusCode::OK, "{accept}");
        assert_eq!(res.headers()["content-type"], want, "{accept}");
        assert_eq!(res.headers()["vary"], "Accept", "{accept}");
        let bytes = res.bytes().await.expect("bytes");
        assert!(!bytes.is_empty());
        if want != "image/avif" {
            let img = image::load_from_memory(&bytes).expect("decodes");
            assert_eq!((img.width(), img.height()), (40, 30), "{accept}");
        }
    }
    let formats: Vec<String> = client
        .query(
            "select format from image_variants where image_id = $1::text::uuid order by format",
            &[&id],
        )
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(formats, ["", "avif", "webp"]);
    app.stop().await;
}

#[tokio::test]
async fn hostile_and_impossible_variant_requests_get_clear_answers() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    put_preset_sql(&client, "ok", json!({"width": 10})).await;
    // Stored by SQL and never checked: the variant fails with the reason.
    put_preset_sql(&client, "broken", json!({"width": 0})).await;
    let res = upload_png(&app, png(20, 20), &[]).await;
    let id = json_of(res).await.1["id"].as_str().expect("id").to_owned();
    app.wait_done(&id).await;

    let (status, body) = json_of(
        app.get(&format!("/api/images/{id}/variants/broken?wait=30"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "variant_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_pipeline"),
        "{body}"
    );

    let long = "x".repeat(65);
    // (`..` and `%2e%2e` segments are resolved by the client's URL parser before sending.)
    for preset in [
        "...",
        "..%2f..",
        "a%00b",
        "Thumb",
        long.as_str(),
        "%C3%A9",
        "a:b",
        "%20",
    ] {
        let (status, body) = json_of(app.get(&format!("/api/images/{id}/variants/{preset}")).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{preset}: {body}");
        assert_eq!(body["error"]["param"], "preset", "{preset}: {body}");
    }
    let (status, body) = json_of(app.get(&format!("/api/images/{id}/variants/nope")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no preset named"),
        "{body}"
    );
    let (status, _) = json_of(
        app.get(&format!("/api/images/{}/variants/ok", Uuid::new_v4()))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_of(app.get("/api/images/not-a-uuid/variants/ok").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A failed image: a variant never made is refused (409), not queued.
    let bad = client
        .query_one(
            "insert into processed_images (original_data) values ('not an image'::bytea) returning id::text",
            &[],
        )
        .await
        .expect("insert")
        .get::<_, String>(0);
    let failed = app.wait_done(&bad).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let (status, body) = json_of(app.get(&format!("/api/images/{bad}/variants/ok")).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["status"], "failed", "{body}");
    // A deleted one: 404.
    assert_eq!(
        app.call(reqwest::Method::DELETE, &format!("/api/images/{id}"))
            .await
            .status(),
        204
    );
    let (status, _) = json_of(app.get(&format!("/api/images/{id}/variants/ok")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn signed_urls_serve_without_a_token_cache_for_a_year_and_refuse_any_other_signature() {
    let token = "variant-test-token";
    let app = spawn_app_with(
        Role::Run,
        &[("url-signing-key", SIGNING_KEY), ("api-token", token)],
    )
    .await;
    let client = app.db().await;
    put_preset_sql(&client, "thumb", json!({"width": 32, "format": "png"})).await;
    let id = insert_image(&client, &png(64, 64)).await;
    let authed = |req: reqwest::RequestBuilder| req.bearer_auth(token);

    let res = authed(app.http.post(app.url(&format!("/api/images/{id}/signed-url"))))
        .json(&json!({"preset": "thumb"}))
        .send()
        .await
        .expect("signed-url");
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["url"].as_str().expect("url").to_owned();
    let sig = image_processor::presets::url_signature(SIGNING_KEY.as_bytes(), id, "thumb");
    assert_eq!(url, format!("/v/{sig}/{id}/thumb"));

    // No token: the signature is the permission. The first request makes it (held).
    let res = app.get(&url).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert!(
        h["content-disposition"].to_str().unwrap().starts_with("inline;"),
        "{h:?}"
    );
    let etag = h["etag"].to_str().expect("etag").to_owned();
    let img = image::load_from_memory(&res.bytes().await.expect("bytes")).expect("decodes");
    assert_eq!(img.width(), 32);
    let res = app
        .http
        .get(app.url(&url))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("304");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);

    let other = image_processor::presets::url_signature(SIGNING_KEY.as_bytes(), id, "hero");
    let upper = id.hyphenated().to_string().to_uppercase();
    for bad in [
        format!("/v/{other}/{id}/thumb"),
        format!("/v/{sig}/{id}/hero"),
        format!("/v/{sig}/{}/thumb", Uuid::new_v4()),
        format!("/v/{sig}/{upper}/thumb"),
        format!("/v/not*base64/{id}/thumb"),
        format!("/v/{}/{id}/thumb", &sig[..20]),
        format!("/v/{sig}A/{id}/thumb"),
        format!("/v/{sig}/{id}/..%2f.."),
        format!("/v/{sig}/{id}/a%00"),
    ] {
        let (status, body) = json_of(app.get(&bad).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{bad}: {body}");
    }
    // The API route still needs the token.
    assert_eq!(
        app.get(&format!("/api/images/{id}/variants/thumb"))
            .await
            .status(),
        401
    );
    // signed-url: bad bodies and unknown presets.
    for (body, param) in [
        (json!({}), "preset"),
        (json!({"preset": 3}), "preset"),
        (json!({"preset": "Bad Name"}), "preset"),
        (json!({"preset": "thumb", "extra": 1}), "extra"),
        (json!(["thumb"]), "body"),
    ] {
        let res = authed(app.http.post(app.url(&format!("/api/images/{id}/signed-url"))))
            .json(&body)
            .send()
            .await
            .expect("signed-url");
        let (status, answer) = json_of(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["param"], param, "{body}: {answer}");
    }
    let res = authed(app.http.post(app.url(&format!("/api/images/{id}/signed-url"))))
        .json(&json!({"preset": "ghost"}))
        .send()
        .await
        .expect("signed-url");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn without_a_signing_key_the_signed_route_is_404_and_sse_reports_variants() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    put_preset_sql(&client, "thumb", json!({"width": 16})).await;
    let id = insert_image(&client, &png(32, 32)).await;
    let sig = image_processor::presets::url_signature(SIGNING_KEY.as_bytes(), id, "thumb");
    assert_eq!(
        app.get(&format!("/v/{sig}/{id}/thumb")).await.status(),
        StatusCode::NOT_FOUND
    );
    let res = app
        .http
        .post(app.url(&format!("/api/images/{id}/signed-url")))
        .json(&json!({"preset": "thumb"}))
        .send()
        .await
        .expect("signed-url");
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("URL_SIGNING_KEY"),
        "{body}"
    );

    let mut events = app.get("/api/events").await;
    assert_eq!(events.status(), 200);
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'thumb')",
            &[&id],
        )
        .await
        .expect("insert variant");
    let want = format!(r#"data: {{"id":"{id}","preset":"thumb","status":"completed"}}"#);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(&want) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no completed variant event in 30 s; stream so far:\n{seen}"))
            .expect("event stream read")
            .unwrap_or_else(|| panic!("event stream ended; so far:\n{seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains(&format!(
            r#"data: {{"id":"{id}","preset":"thumb","status":"pending"}}"#
        )),
        "{seen}"
    );
    // Each under `event: variant`, not `image`.
    for block in seen.split("\n\n").filter(|b| b.contains(r#""preset":"thumb""#)) {
        assert!(block.starts_with("event: variant\n"), "{block}");
    }
    app.stop().await;
}

#[tokio::test]
async fn variants_stay_tied_to_existing_images_through_delete_and_truncate() {
    let db = fresh_database().await;
    let client = image_processor::db::connect(&db.url).await.expect("connect");
    put_preset_sql(&client, "thumb", json!({"width": 8})).await;
    let err = client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'thumb')",
            &[&Uuid::new_v4()],
        )
        .await
        .expect_err("a variant of no image");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
        "{err}"
    );
    let (a, b) = (
        insert_image(&client, &png(8, 8)).await,
        insert_image(&client, &png(8, 8)).await,
    );
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'thumb'), ($2, 'thumb')",
            &[&a, &b],
        )
        .await
        .expect("variants");
    client
        .execute("delete from processed_images where id = $1", &[&a])
        .await
        .expect("delete");
    let left: Vec<Uuid> = client
        .query("select image_id from image_variants", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [b]);
    // A plain SQL reset still works (a foreign key would refuse it) and empties the variants.
    client
        .batch_execute("truncate processed_images")
        .await
        .expect("truncate");
    let n: i64 = client
        .query_one("select count(*) from image_variants", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);
}

/// Variant claims held by a SIGKILLed worker are reaped after their lease and made once by
/// another process: every variant completed, each with the one lost lease uncharged.
#[tokio::test]
async fn variants_of_a_sigkilled_worker_are_taken_over_after_the_lease() {
    use nix::sys::signal::Signal;
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let client = image_processor::db::connect(&url).await.expect("connect");
    for (name, width) in [("a", 8), ("b", 9), ("c", 10)] {
        put_preset_sql(&client, name, json!({"width": width})).await;
    }
    let id = insert_image(&client, &png(40, 40)).await;
    let env = [
        ("WORKER_TEST_HOOKS", "1"),
        ("WORKER_TEST_DELAY_MS", "60000"),
        ("LEASE_SECS", "3"),
        ("WORKER_THREADS", "4"),
    ];
    let victim = Proc::spawn("worker", &url, &env);
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'a'), ($1, 'b'), ($1, 'c')",
            &[&id],
        )
        .await
        .expect("variants");
    let processing = || async {
        client
            .query_one(
                "select count(*) from image_variants where status = 'processing'",
                &[],
            )
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    assert!(
        eventually(Duration::from_secs(20), || async { processing().await == 3 }).await,
        "the variants were never all claimed:\n{}",
        victim.log_text()
    );
    victim.signal(Signal::SIGKILL);
    let _rescuer = Proc::spawn("worker", &url, &[("LEASE_SECS", "3")]);
    let rows = || async {
        client
            .query(
                "select preset, status, attempts, lost_leases, width from image_variants order by preset",
                &[],
            )
            .await
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, i32>(2),
                    r.get::<_, i32>(3),
                    r.get::<_, Option<i32>>(4),
                )
            })
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(40), || async {
            rows().await.iter().all(|r| r.1 == "completed")
        })
        .await,
        "not taken over: {:?}",
        rows().await
    );
    assert_eq!(
        rows().await,
        [
            ("a".to_owned(), "completed".to_owned(), 1, 1, Some(8)),
            ("b".to_owned(), "completed".to_owned(), 1, 1, Some(9)),
            ("c".to_owned(), "completed".to_owned(), 1, 1, Some(10)),
        ],
        "each made once, its lost lease uncharged"
    );
}

/// A worker asks `image_variants` only when told a variant may wait (`variant_jobs`): one
/// inserted by SQL while the worker idles after images alone is picked up by that
/// notification, not by the sweep (a minute away here).
#[tokio::test]
async fn a_variant_queued_after_a_run_of_images_is_picked_up_by_its_notification() {
    let app = spawn_app_with(Role::Run, &[("sweep-secs", "60")]).await;
    let client = app.db().await;
    put_preset_sql(&client, "thumb", json!({"width": 8})).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(insert_image(&client, &png(16, 16)).await);
    }
    for id in &ids {
        app.wait_done(&id.to_string()).await;
    }
    let started = std::time::Instant::now();
    client
        .execute(
            "insert into image_variants (image_id, preset) values ($1, 'thumb')",
            &[&ids[0]],
        )
        .await
        .expect("variant");
    let row = wait_variant(&client, ids[0], "thumb", "completed").await;
    assert_eq!(row.1, Some(8));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}: not woken by its notification",
        started.elapsed()
    );
    app.stop().await;
}
