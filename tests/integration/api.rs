//! The HTTP API end to end: real PostgreSQL, real HTTP, real codecs.

use std::time::{Duration, Instant};

use crate::common::*;
use image::{GenericImageView, ImageFormat};
use image_processor::config::Role;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn file_part(bytes: Vec<u8>, name: &str, mime: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .expect("mime")
}

async fn upload(app: &TestApp, form: Form) -> (StatusCode, Value, Option<String>) {
    let res = app
        .http
        .post(app.url("/api/images"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let body: Value = res.json().await.expect("json body");
    (status, body, location)
}

#[tokio::test]
async fn upload_jpeg_then_download_returns_resized_jpeg() {
    let app = spawn_app().await;
    let form = Form::new().part("file", file_part(jpeg(1600, 1200), "cat.jpg", "image/jpeg"));
    let (status, body, location) = upload(&app, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(location.as_deref(), Some(format!("/api/images/{id}").as_str()));
    assert_eq!(body["filename"], "cat.jpg");
    assert_eq!(body["original"]["content_type"], "image/jpeg");
    assert_eq!(body["original"]["width"], 1600);

    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    for field in [
        "id",
        "status",
        "filename",
        "error",
        "attempts",
        "uploaded_at",
        "started_at",
        "processed_at",
        "pipeline",
        "original",
        "processed",
        "links",
    ] {
        assert!(done.get(field).is_some(), "status JSON lacks `{field}`: {done}");
    }
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["processed"]["content_type"], "image/jpeg");
    assert_eq!(done["processed"]["width"], 800);
    assert_eq!(done["processed"]["height"], 600);
    assert_eq!(done["links"]["processed"], format!("/api/images/{id}/processed"));

    let res = app.get(&format!("/api/images/{id}/processed")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("etag"));
    assert!(h["content-disposition"]
        .to_str()
        .expect("ascii")
        .contains("filename=\"cat-processed.jpg\""));
    let bytes = res.bytes().await.expect("bytes");
    assert_eq!(
        h["content-length"].to_str().expect("len"),
        bytes.len().to_string()
    );
    assert_eq!(image::guess_format(&bytes).expect("format"), ImageFormat::Jpeg);
    let decoded = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!(decoded.dimensions(), (800, 600));

    // Conditional GET with the ETag.
    let etag = h["etag"].clone();
    let res = app
        .http
        .get(app.url(&format!("/api/images/{id}/processed")))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);

    // Thumbnail and original.
    let res = app.get(&format!("/api/images/{id}/thumbnail")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let thumb = image::load_from_memory(&res.bytes().await.expect("bytes")).expect("thumbnail decodes");
    assert!(thumb.width() <= 256 && thumb.height() <= 256);
    let res = app.get(&format!("/api/images/{id}/original")).await;
    assert!(res.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .contains("filename=\"cat.jpg\""));
    assert_eq!(
        res.bytes().await.expect("bytes").len() as i64,
        done["original"]["bytes"].as_i64().expect("bytes")
    );
}

#[tokio::test]
async fn upload_png_with_operations_keeps_png_and_fits_the_box() {
    let app = spawn_app().await;
    let form = Form::new()
        .part("file", file_part(png(1000, 500), "wide.png", "image/png"))
        .text("width", "300")
        .text("height", "300");
    let (status, body, _) = upload(&app, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = app.wait_done(body["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"]["content_type"], "image/png");
    assert_eq!(
        (
            done["processed"]["width"].as_i64(),
            done["processed"]["height"].as_i64()
        ),
        (Some(300), Some(150))
    );
    let bytes = app
        .get(done["links"]["processed"].as_str().expect("link"))
        .await
        .bytes()
        .await
        .expect("bytes");
    let img = image::load_from_memory_with_format(&bytes, ImageFormat::Png).expect("png decodes");
    assert_eq!(img.dimensions(), (300, 150));
}

#[tokio::test]
async fn several_files_in_one_request_are_all_accepted() {
    let app = spawn_app().await;
    let form = Form::new()
        .part("file", file_part(jpeg(400, 300), "a.jpg", "image/jpeg"))
        .part("file", file_part(png(200, 100), "b.png", "image/png"));
    let (status, body, _) = upload(&app, form).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let images = body["images"].as_array().expect("images array");
    assert_eq!(images.len(), 2);
    for image in images {
        let done = app.wait_done(image["id"].as_str().expect("id")).await;
        assert_eq!(done["status"], "completed", "{done}");
        // Small images are never upscaled by the default box.
        assert_eq!(done["processed"]["width"], image["original"]["width"]);
    }
}

#[tokio::test]
async fn raw_body_upload_and_the_original_design_routes_work() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/api/images?filename=raw.png&width=100"))
        .header("content-type", "application/octet-stream")
        .body(png(400, 400))
        .send()
        .await
        .expect("raw upload");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["filename"], "raw.png");
    let id = body["id"].as_str().expect("id").to_owned();
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            done["processed"]["width"].as_i64(),
            done["processed"]["height"].as_i64()
        ),
        (Some(100), Some(100)),
        "?width=100 on a raw upload: {done}"
    );
    let res = app.get(&format!("/api/images/{id}/processed")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let bytes = res.bytes().await.expect("bytes");
    let img = image::load_from_memory_with_format(&bytes, ImageFormat::Png).expect("png decodes");
    assert_eq!(img.dimensions(), (100, 100));

    // Seed-compatible routes: /upload, /status/{id}, /download/{id}.
    let form = Form::new().part("file", file_part(jpeg(300, 200), "legacy.jpg", "image/jpeg"));
    let res = app
        .http
        .post(app.url("/upload"))
        .multipart(form)
        .send()
        .await
        .expect("legacy upload");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let legacy: Value = res.json().await.expect("json");
    let lid = legacy["id"].as_str().expect("id").to_owned();
    app.wait_done(&lid).await;
    let status: Value = app.get_json(&format!("/status/{lid}")).await;
    assert_eq!(status["status"], "completed");
    let res = app.get(&format!("/download/{lid}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    image::load_from_memory(&res.bytes().await.expect("bytes")).expect("decodes");
}

#[tokio::test]
async fn a_row_inserted_with_plain_sql_is_processed() {
    let app = spawn_app().await;
    let db = app.db().await;
    let bytes = jpeg(1200, 400);
    let row = db
        .query_one(
            "insert into processed_images (original_data) values ($1) returning id::text",
            &[&bytes],
        )
        .await
        .expect("insert");
    let id: String = row.get(0);
    let pipeline = serde_json::json!({"steps": [{"op": "resize", "width": 100}], "format": "png"});
    let row = db
        .query_one(
            "insert into processed_images (original_data, pipeline) values ($1, $2) returning id::text",
            &[&bytes, &pipeline],
        )
        .await
        .expect("insert with pipeline");
    let with_pipeline: String = row.get(0);

    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (
            done["processed"]["width"].as_i64(),
            done["processed"]["height"].as_i64()
        ),
        (Some(800), Some(267))
    );
    assert_eq!(done["original"]["content_type"], "image/jpeg");
    assert_eq!(done["original"]["bytes"].as_i64(), Some(bytes.len() as i64));

    let done = app.wait_done(&with_pipeline).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"]["content_type"], "image/png");
    assert_eq!(done["processed"]["width"], 100);

    // A row whose bytes are not an image ends failed with a human message.
    let row = db
        .query_one(
            "insert into processed_images (original_data) values ('hello') returning id::text",
            &[],
        )
        .await
        .expect("insert text");
    let bad: String = row.get(0);
    let done = app.wait_done(&bad).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["error"].as_str().is_some_and(|e| e.contains("not an image")),
        "{done}"
    );

    // An invalid pipeline stored by SQL fails with the reason.
    let row = db
        .query_one(
            "insert into processed_images (original_data, pipeline) values ($1, '{\"steps\": [{\"op\": \"explode\"}]}') returning id::text",
            &[&bytes],
        )
        .await
        .expect("insert bad pipeline");
    let bad: String = row.get(0);
    let done = app.wait_done(&bad).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["error"].as_str().is_some_and(|e| e.contains("pipeline")),
        "{done}"
    );
}

#[tokio::test]
async fn bad_uploads_get_their_status_code_and_json_error() {
    let app = spawn_app_with(
        image_processor::config::Role::Api,
        &[("max-upload-bytes", "200000"), ("max-pixels", "1000000")],
    )
    .await;

    // Not an image: 415, sniffed from the bytes whatever the name and type claim.
    let form = Form::new().part(
        "file",
        file_part(b"<html>hi</html>".to_vec(), "cat.jpg", "image/jpeg"),
    );
    let (status, body, _) = upload(&app, form).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error("api", &body, "unsupported_media_type");

    // Truncated image: header unreadable.
    let mut truncated = png(100, 100);
    truncated.truncate(20);
    let form = Form::new().part("file", file_part(truncated, "t.png", "image/png"));
    let (status, body, _) = upload(&app, form).await;
    assert!(
        status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{status} {body}"
    );

    // Over MAX_PIXELS from the header: 422.
    let form = Form::new().part("file", file_part(png(1200, 1000), "big.png", "image/png"));
    let (status, body, _) = upload(&app, form).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_error("api", &body, "image_too_large");

    // Over MAX_UPLOAD_BYTES: 413, multipart and raw.
    let noise: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let form = Form::new().part("file", file_part(noise.clone(), "huge.jpg", "image/jpeg"));
    let (status, body, _) = upload(&app, form).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error("api", &body, "payload_too_large");
    let res = app
        .http
        .post(app.url("/api/images"))
        .header("content-type", "image/jpeg")
        .body(noise)
        .send()
        .await
        .expect("raw");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Bad parameters: 400 naming them.
    for (field, value) in [
        ("width", "-5"),
        ("width", "abc"),
        ("quality", "101"),
        ("fit", "squash"),
        ("format", "exe"),
        ("bogus", "1"),
    ] {
        let form = Form::new()
            .part("file", file_part(png(10, 10), "p.png", "image/png"))
            .text(field, value);
        let (status, body, _) = upload(&app, form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}: {body}");
        assert_error("api", &body, "invalid_parameter");
        assert_eq!(body["error"]["param"], field, "{body}");
    }
    let form = Form::new()
        .part("file", file_part(png(10, 10), "p.png", "image/png"))
        .text("pipeline", "{not json");
    let (status, body, _) = upload(&app, form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // No file, wrong content type.
    let (status, body, _) = upload(&app, Form::new().text("width", "10")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let res = app
        .http
        .post(app.url("/api/images"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .expect("text");
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Bad ids: 404 (never 500), and 400 for bad list parameters.
    for path in [
        "/api/images/not-a-uuid",
        "/api/images/00000000-0000-0000-0000-000000000000",
        "/api/images/%00/processed",
        "/download/../../etc/passwd",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.expect("json error");
        assert_error("api", &body, "not_found");
    }
    for query in [
        "limit=0",
        "limit=100000",
        "status=bogus",
        "before=xyz",
        "limit=-1",
    ] {
        let res = app.get(&format!("/api/images?{query}")).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{query}");
    }
    let res = app
        .get("/api/images/00000000-0000-0000-0000-000000000000?wait=9999")
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // Nothing bad was stored, and the server still serves.
    let db = app.db().await;
    let stored: i64 = db
        .query_one("select count(*) from processed_images", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(stored, 0);
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn processed_download_is_409_until_completed_and_list_paginates() {
    // API only: nothing processes, so rows stay pending.
    let app = spawn_app_with(image_processor::config::Role::Api, &[]).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let form = Form::new().part("file", file_part(png(20, 20), &format!("{i}.png"), "image/png"));
        let (status, body, _) = upload(&app, form).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    let res = app.get(&format!("/api/images/{}/processed", ids[0])).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: Value = res.json().await.expect("json");
    assert_error("api", &body, "not_ready");
    assert_eq!(body["error"]["status"], "pending");

    // Newest first, two per page, cursor until exhausted.
    let mut seen = Vec::new();
    let mut url = app.url("/api/images?limit=2");
    loop {
        let page: Value = app
            .http
            .get(&url)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        for img in page["images"].as_array().expect("images") {
            seen.push(img["id"].as_str().expect("id").to_owned());
        }
        match page["next"].as_str() {
            Some(next) => url = app.url(&format!("/api/images?limit=2&before={next}")),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    let pending: Value = app.get_json("/api/images?status=pending").await;
    assert_eq!(pending["images"].as_array().map(Vec::len), Some(5));

    // Retry is refused while pending; delete works; deleted is 404.
    let res = app
        .call(Method::POST, &format!("/api/images/{}/retry", ids[0]))
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = app.call(Method::DELETE, &format!("/api/images/{}", ids[0])).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get(&format!("/api/images/{}", ids[0])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app.call(Method::DELETE, &format!("/api/images/{}", ids[0])).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Stats count them.
    let stats: Value = app.get_json("/api/stats").await;
    assert_eq!(stats["counts"]["pending"], 4);
    assert_eq!(stats["queue_depth"], 4);
}

/// `?wait=N` holds a pending image's request and answers as soon as its status changes: not at
/// once, and not only when the N seconds are up.
#[tokio::test]
async fn wait_returns_as_soon_as_the_status_changes() {
    // API only: nothing processes, so the image stays pending until this test changes it.
    let app = spawn_app_with(Role::Api, &[]).await;
    let form = Form::new().part("file", file_part(jpeg(640, 480), "w.jpg", "image/jpeg"));
    let (_, body, _) = upload(&app, form).await;
    let id = body["id"].as_str().expect("id").to_owned();

    // Nothing changes: held for the whole second, then answered with the status as it is.
    let asked = Instant::now();
    let v: Value = app.get_json(&format!("/api/images/{id}?wait=1")).await;
    let held = asked.elapsed();
    assert_eq!(v["status"], "pending", "{v}");
    assert!(
        held >= Duration::from_millis(950),
        "?wait=1 answered after {held:?}"
    );

    // A change while held: answered with the new status at once.
    const WAIT: Duration = Duration::from_secs(20);
    let long_poll = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url(&format!("/api/images/{id}?wait=20")));
        async move {
            let v: Value = http
                .get(url)
                .send()
                .await
                .expect("long-poll")
                .json()
                .await
                .expect("json");
            (v, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !long_poll.is_finished(),
        "?wait=20 answered a pending image before anything changed"
    );
    let changed_at = Instant::now();
    let db = app.db().await;
    db.execute(
        "update processed_images set status = 'failed', error = 'failed by the test' \
         where id = $1::text::uuid",
        &[&id],
    )
    .await
    .expect("change the status");
    let (v, answered_at) = tokio::time::timeout(WAIT, long_poll)
        .await
        .expect("the long-poll outlived its own wait")
        .expect("long-poll task");
    assert_eq!(v["status"], "failed", "{v}");
    let after_change = answered_at.saturating_duration_since(changed_at);
    assert!(
        after_change < Duration::from_secs(5),
        "answered {after_change:?} after the change, as if only the {WAIT:?} wait ended it"
    );

    // Back in the queue and a worker started: long-polls follow it until it is completed.
    let res = app.call(Method::POST, &format!("/api/images/{id}/retry")).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let worker = spawn_app_on(Role::Worker, app.db_url.clone(), &[]).await;
    let started = Instant::now();
    let mut last = String::new();
    while last != "completed" {
        let v: Value = app.get_json(&format!("/api/images/{id}?wait=30")).await;
        last = v["status"].as_str().unwrap_or("").to_owned();
        assert!(
            started.elapsed().as_secs() < 30,
            "long-poll did not return on completion"
        );
    }
    worker.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn retry_puts_a_finished_image_back_in_the_queue() {
    let app = spawn_app().await;
    let form = Form::new().part("file", file_part(png(50, 50), "r.png", "image/png"));
    let (_, body, _) = upload(&app, form).await;
    let id = body["id"].as_str().expect("id").to_owned();
    app.wait_done(&id).await;
    let res = app.call(Method::POST, &format!("/api/images/{id}/retry")).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let v: Value = res.json().await.expect("json");
    assert_eq!(v["status"], "pending");
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["attempts"], 1);
    let res = app
        .call(
            Method::POST,
            "/api/images/00000000-0000-0000-0000-000000000000/retry",
        )
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn probes_report_live_and_ready() {
    let app = spawn_app_with(image_processor::config::Role::Api, &[]).await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.get("/no/such/route").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_error("api", &res.json().await.expect("json"), "not_found");
}

#[tokio::test]
async fn every_statement_prepares_against_the_real_schema() {
    let test_db = fresh_database().await;
    let url = test_db.url.clone();
    let client = image_processor::db::connect(&url).await.expect("connect");
    for sql in image_processor::db::jobs::ALL_STATEMENTS {
        client
            .prepare(sql)
            .await
            .unwrap_or_else(|e| panic!("statement does not prepare: {e}\n{sql}"));
    }
}
