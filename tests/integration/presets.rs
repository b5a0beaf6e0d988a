//! Issue 18's presets over HTTP: `PUT`/`GET`/`DELETE /api/presets/{name}` and
//! `GET /api/presets` against a real PostgreSQL, hostile names and bodies (each a `4xx` naming
//! the parameter, never a `500`), `format: auto`, and a preset written by plain SQL.

use image_processor::config::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

async fn put_raw(
    app: &TestApp,
    name: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value, Option<String>) {
    let res = app
        .http
        .put(app.url(&format!("/api/presets/{name}")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT /api/presets/{name}: {e}"));
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, res.json().await.unwrap_or(Value::Null), location)
}

async fn put(app: &TestApp, name: &str, body: &Value) -> (StatusCode, Value, Option<String>) {
    put_raw(app, name, body.to_string()).await
}

async fn call(app: &TestApp, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    let res = app.call(method, path).await;
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// One request written to the socket as given, so that the path reaches the server untouched
/// (a URL library would resolve `..` and `%2e%2e`); the status and the JSON body.
async fn raw(app: &TestApp, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("an answer within 30 s")
    .expect("read");
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, body)
}

fn assert_bad_param(context: &str, status: StatusCode, body: &Value, param: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{context}: {body}");
    assert_error(context, body, "invalid_parameter");
    assert_eq!(body["error"]["param"], param, "{context}: {body}");
}

#[tokio::test]
async fn presets_are_created_replaced_listed_read_and_deleted() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let (status, listed) = call(&app, reqwest::Method::GET, "/api/presets").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed, json!({"presets": []}));

    // Created: 201, Location, the preset object with the stored (steps) form.
    let (status, created, location) = put(
        &app,
        "thumb",
        &json!({"width": 200, "height": 200, "fit": "cover", "format": "webp", "quality": 70}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(location.as_deref(), Some("/api/presets/thumb"));
    assert_eq!(created["name"], "thumb", "{created}");
    assert_eq!(created["pipeline"]["format"], "webp", "{created}");
    assert_eq!(created["pipeline"]["quality"], 70, "{created}");
    assert_eq!(created["pipeline"]["steps"][0]["op"], "resize", "{created}");
    assert_eq!(created["pipeline"]["steps"][0]["fit"], "cover", "{created}");
    assert_eq!(created["created_at"], created["updated_at"], "{created}");
    let mut keys: Vec<&String> = created.as_object().expect("object").keys().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "name", "pipeline", "updated_at"],
        "{created}"
    );

    // Replaced: 200, no Location, the same creation time, the new pipeline.
    let (status, replaced, location) = put(
        &app,
        "thumb",
        &json!({"steps": [{"op": "resize", "width": 64}, {"op": "grayscale"}], "format": "png"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(location, None);
    assert_eq!(replaced["created_at"], created["created_at"], "{replaced}");
    assert_ne!(replaced["updated_at"], created["updated_at"], "{replaced}");
    assert_eq!(replaced["pipeline"]["format"], "png", "{replaced}");
    assert_eq!(replaced["pipeline"]["steps"][1]["op"], "grayscale", "{replaced}");

    // The list is ordered by name (byte order: '-' < '0' < '_' < 'a').
    for name in ["hero_2x", "a-card", "0-first", "zz"] {
        let (status, body, _) = put(&app, name, &json!({"width": 10})).await;
        assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
    }
    let listed = app.get_json("/api/presets").await;
    let names = preset_names(&listed);
    assert_eq!(names, ["0-first", "a-card", "hero_2x", "thumb", "zz"], "{listed}");
    assert_eq!(listed["presets"][3], replaced, "{listed}");

    let (status, one) = call(&app, reqwest::Method::GET, "/api/presets/thumb").await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one, replaced);

    // Deleted: 204, then 404 for a read and for a second delete.
    let res = app.call(reqwest::Method::DELETE, "/api/presets/thumb").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.bytes().await.expect("body").len(), 0);
    let (status, gone) = call(&app, reqwest::Method::GET, "/api/presets/thumb").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert_error("read after delete", &gone, "not_found");
    assert!(
        gone["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("thumb")),
        "{gone}"
    );
    let (status, again) = call(&app, reqwest::Method::DELETE, "/api/presets/thumb").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    assert_error("second delete", &again, "not_found");
    let (status, never) = call(&app, reqwest::Method::DELETE, "/api/presets/never-made").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{never}");
    assert_eq!(
        app.get_json("/api/presets").await["presets"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_preset_names_are_a_400_naming_the_name() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let long = "x".repeat(65);
    let very_long = "a".repeat(5000);
    let names = [
        long.as_str(),
        very_long.as_str(),
        "..",
        ".",
        "%2e%2e",
        "%2E%2E",
        "%00",
        "a%00b",
        "Thumb",
        "THUMB",
        "%C3%A9",
        "%E2%80%AE",
        "%FF",
        "%",
        "a:b",
        "a%3Ab",
        "a%2Fb",
        "a%20b",
        "a.b",
        "a+b",
        "%F0%9F%98%80",
    ];
    for name in names {
        let path = format!("/api/presets/{name}");
        for method in ["GET", "PUT", "DELETE"] {
            let (status, body) = raw(&app, method, &path, "{\"width\": 10}").await;
            let context = format!("{method} {}", &path[..path.len().min(80)]);
            assert_eq!(status, 400, "{context}: {body}");
            assert_error(&context, &body, "invalid_parameter");
            assert_eq!(body["error"]["param"], "name", "{context}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("preset name")),
                "{context}: {body}"
            );
        }
    }
    // The empty name matches no route (every route is a documented one): the router's 404.
    for method in ["GET", "PUT", "DELETE"] {
        let (status, body) = raw(&app, method, "/api/presets/", "{}").await;
        assert_eq!(status, 404, "{method} /api/presets/: {body}");
        assert_error("empty name", &body, "not_found");
    }
    // 64 characters is the longest name.
    let (status, body, _) = put(&app, &"y".repeat(64), &json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Nothing was stored by the refused requests.
    let listed = app.get_json("/api/presets").await;
    assert_eq!(listed["presets"].as_array().map(Vec::len), Some(1), "{listed}");
    app.stop().await;
}

#[tokio::test]
async fn hostile_preset_bodies_are_refused_naming_the_field() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let not_objects = [
        "",
        "{",
        "not json",
        "[]",
        "[1, 2]",
        "\"thumb\"",
        "42",
        "null",
        "true",
        "{\"width\": 10,}",
    ];
    for body in not_objects {
        let (status, answer, _) = put_raw(&app, "p", body).await;
        assert_bad_param(&format!("body {body:?}"), status, &answer, "body");
    }
    // Nested past serde_json's depth limit: refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, answer, _) = put_raw(&app, "p", deep).await;
    assert_bad_param("deep nesting", status, &answer, "body");
    let deep_object = format!("{}1{}", "{\"a\":".repeat(2000), "}".repeat(2000));
    let (status, answer, _) = put_raw(&app, "p", deep_object).await;
    assert_bad_param("deep object", status, &answer, "body");

    let cases = [
        (json!({"format": "bogus"}), "format"),
        (json!({"format": "AUTO"}), "format"),
        (json!({"format": "heic"}), "format"),
        (json!({"width": 10, "format": "jxl"}), "format"),
        (json!({"format": null}), "format"),
        (json!({"format": 3}), "format"),
        (json!({"width": 0}), "width"),
        (json!({"width": 20001}), "width"),
        (json!({"width": -5}), "width"),
        (json!({"width": "200"}), "width"),
        (json!({"width": 2.5}), "width"),
        (json!({"width": null}), "width"),
        (json!({"width": [200]}), "width"),
        (json!({"grayscale": 1, "width": 10}), "grayscale"),
        (json!({"quality": 0}), "quality"),
        (json!({"quality": 101}), "quality"),
        (json!({"quality": "80"}), "quality"),
        (json!({"blur": 1000}), "blur"),
        (json!({"crop": "1,2,3"}), "crop"),
        (json!({"fit": "stretch", "width": 10}), "fit"),
        (json!({"callback_url": "http://example.com/"}), "callback_url"),
        (json!({"priority": 5}), "priority"),
        (json!({"colour": "red"}), "colour"),
        (
            json!({"watermark": "00000000-0000-0000-0000-000000000000"}),
            "watermark",
        ),
        (json!({"watermark": "not-a-uuid"}), "watermark"),
    ];
    for (body, param) in cases {
        let (status, answer, _) = put(&app, "p", &body).await;
        assert_bad_param(&body.to_string(), status, &answer, param);
    }
    // Errors inside `steps` name the step.
    for body in [
        json!({"steps": [{"op": "nope"}]}),
        json!({"steps": [{"op": "resize", "width": 0}]}),
        json!({"steps": "resize"}),
        json!({"steps": [{"op": "grayscale", "extra": 1}]}),
    ] {
        let (status, answer, _) = put(&app, "p", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_error(&body.to_string(), &answer, "invalid_parameter");
        let param = answer["error"]["param"].as_str().unwrap_or("");
        assert!(
            param.starts_with("steps") || param == "pipeline",
            "{body}: {answer}"
        );
    }
    // A key of 10 000 characters is named, cut to 64.
    let key = "k".repeat(10_000);
    let (status, answer, _) = put(&app, "p", &json!({ key: 1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(
        answer["error"]["param"].as_str().map(str::len),
        Some(64),
        "{answer}"
    );

    // Over the body limit (16 KiB): 413, declared or chunked.
    let big = json!({"crop": "x".repeat(20_000)}).to_string();
    let (status, answer, _) = put_raw(&app, "p", big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_error("declared big body", &answer, "payload_too_large");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.into_bytes().chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let (status, answer, _) = put_raw(&app, "p", stream).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_error("chunked big body", &answer, "payload_too_large");

    // None of it was stored.
    let (status, gone) = call(&app, reqwest::Method::GET, "/api/presets/p").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    app.stop().await;
}

#[tokio::test]
async fn auto_format_is_accepted_in_both_forms_and_kept() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let (status, flat, _) = put(
        &app,
        "card",
        &json!({"width": 320, "height": 200, "fit": "cover", "format": "auto"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{flat}");
    assert_eq!(flat["pipeline"]["format"], "auto", "{flat}");
    assert_eq!(flat["pipeline"]["steps"][0]["width"], 320, "{flat}");
    let (status, steps, _) = put(
        &app,
        "hero",
        &json!({"steps": [{"op": "resize", "width": 1200}, {"op": "sharpen", "amount": 1.0}], "format": "auto", "quality": 80}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{steps}");
    assert_eq!(steps["pipeline"]["format"], "auto", "{steps}");
    assert_eq!(steps["pipeline"]["quality"], 80, "{steps}");
    let (status, alone, _) = put(&app, "any", &json!({"format": "auto"})).await;
    assert_eq!(status, StatusCode::CREATED, "{alone}");
    // What is stored is what the workers read back: the same pipeline.
    let client = app.db().await;
    for name in ["card", "hero", "any"] {
        let stored: Value = client
            .query_one("select pipeline from image_presets where name = $1", &[&name])
            .await
            .expect("row")
            .get(0);
        let parsed = image_processor::presets::PresetPipeline::from_json(&stored)
            .unwrap_or_else(|e| panic!("{name}: stored {stored} does not parse: {e}"));
        assert!(parsed.auto_format, "{name}: {stored}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_preset_written_by_sql_is_listed_read_and_deleted() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    client
        .batch_execute(
            "insert into image_presets (name, pipeline) values \
             ('from-sql', '{\"width\": 100, \"format\": \"auto\"}'), \
             ('also_sql', '{\"steps\": [{\"op\": \"grayscale\"}]}')",
        )
        .await
        .expect("insert presets by SQL");
    // The table's CHECK holds the name rule for SQL writers too.
    let refused = client
        .batch_execute("insert into image_presets (name, pipeline) values ('Bad Name', '{}')")
        .await;
    assert!(refused.is_err(), "a bad name was stored by SQL");

    let listed = app.get_json("/api/presets").await;
    let names = preset_names(&listed);
    assert_eq!(names, ["also_sql", "from-sql"], "{listed}");
    // Shown as written.
    let one = app.get_json("/api/presets/from-sql").await;
    assert_eq!(one["pipeline"], json!({"width": 100, "format": "auto"}), "{one}");
    assert!(one["created_at"].is_string(), "{one}");

    // The API replaces it (200: it existed) and deletes the other.
    let (status, replaced, _) = put(&app, "from-sql", &json!({"width": 50})).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let res = app.call(reqwest::Method::DELETE, "/api/presets/also_sql").await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let left: i64 = client
        .query_one("select count(*) from image_presets", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(left, 1);
    app.stop().await;
}

#[tokio::test]
async fn preset_routes_need_the_token() {
    let app = spawn_app_with(Role::Api, &[("api-token", "s3cret")]).await;
    for (method, path) in [
        (reqwest::Method::GET, "/api/presets"),
        (reqwest::Method::GET, "/api/presets/thumb"),
        (reqwest::Method::PUT, "/api/presets/thumb"),
        (reqwest::Method::DELETE, "/api/presets/thumb"),
        (reqwest::Method::PUT, "/api/presets/Bad"),
    ] {
        let (status, body) = call(&app, method.clone(), path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        assert_error(path, &body, "unauthorized");
    }
    let res = app
        .http
        .put(app.url("/api/presets/thumb"))
        .bearer_auth("s3cret")
        .json(&json!({"width": 10}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(res.status(), StatusCode::CREATED);
    app.stop().await;
}

/// The names in a `GET /api/presets` answer, in its order.
fn preset_names(listed: &serde_json::Value) -> Vec<&str> {
    listed["presets"]
        .as_array()
        .expect("presets")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect()
}
