//! Image facts (issue 16): sha256, EXIF without GPS values, frames, BlurHash and dominant colour,
//! through the API and for rows a SQL INSERT made; `dedupe=true`; the effective pipeline.

use std::io::Cursor;
use std::time::Duration;

use exif::{Field, In, Rational, Tag, Value};
use image::{Rgb, RgbImage};
use image_processor::config::Role;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::*;

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn ascii(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

fn rational(tag: Tag, values: &[(u32, u32)]) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(
            values
                .iter()
                .map(|&(num, denom)| Rational { num, denom })
                .collect(),
        ),
    }
}

/// A flat-coloured JPEG carrying an EXIF block with camera fields and a GPS position.
fn camera_jpeg(make: &str) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(RgbImage::from_pixel(160, 120, Rgb([30, 120, 200])));
    let plain = encode(&img, image::ImageFormat::Jpeg);
    let fields = [
        ascii(Tag::Make, make),
        ascii(Tag::Model, "EOS R5"),
        ascii(Tag::LensModel, "RF 50mm F1.8 STM"),
        ascii(Tag::DateTimeOriginal, "2026:07:14 18:03:27"),
        ascii(Tag::OffsetTimeOriginal, "+02:00"),
        rational(Tag::ExposureTime, &[(1, 250)]),
        rational(Tag::FNumber, &[(28, 10)]),
        Field {
            tag: Tag::PhotographicSensitivity,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![400]),
        },
        rational(Tag::FocalLength, &[(50, 1)]),
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![1]),
        },
        ascii(Tag::GPSLatitudeRef, "N"),
        rational(Tag::GPSLatitude, &[(38, 1), (42, 1), (1234, 100)]),
        ascii(Tag::GPSLongitudeRef, "W"),
        rational(Tag::GPSLongitude, &[(9, 1), (8, 1), (5678, 100)]),
    ];
    let mut writer = exif::experimental::Writer::new();
    for f in &fields {
        writer.push_field(f);
    }
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, false).expect("write EXIF");
    let tiff = tiff.into_inner();
    // SOI, then an APP1 "Exif" segment, then the rest of the plain JPEG.
    let mut out = plain[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&u16::try_from(2 + 6 + tiff.len()).expect("fits").to_be_bytes());
    out.extend_from_slice(b"Exif\0\0");
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&plain[2..]);
    out
}

async fn upload_bytes(
    app: &TestApp,
    bytes: Vec<u8>,
    mime: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes)
            .file_name("photo")
            .mime_str(mime)
            .expect("mime"),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    app.http
        .post(app.url("/api/images"))
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// `#rrggbb` within `tolerance` per channel of `rgb` (JPEG moves a flat colour a step or two).
fn assert_colour_near(hex: &serde_json::Value, rgb: [u8; 3], tolerance: u8) {
    let text = hex.as_str().unwrap_or_else(|| panic!("not a colour: {hex}"));
    assert!(text.len() == 7 && text.starts_with('#'), "{text}");
    for (i, want) in rgb.into_iter().enumerate() {
        let got = u8::from_str_radix(&text[1 + 2 * i..3 + 2 * i], 16).expect("hex");
        assert!(got.abs_diff(want) <= tolerance, "{text} is not near {rgb:?}");
    }
}

fn assert_camera_exif(exif: &serde_json::Value) {
    assert_eq!(
        exif,
        &json!({
            "make": "Canon", "model": "EOS R5", "lens": "RF 50mm F1.8 STM",
            "taken_at": "2026-07-14T18:03:27+02:00", "exposure_time": 0.004, "f_number": 2.8,
            "iso": 400, "focal_length": 50.0, "orientation": 1, "has_gps": true
        })
    );
}

#[tokio::test]
async fn an_upload_shows_its_facts_and_never_its_position() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let bytes = camera_jpeg("Canon");
    let res = upload_bytes(&app, bytes.clone(), "image/jpeg", &[("width", "80")]).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    // Known at upload: the hash, the EXIF fields, the frames.
    assert_eq!(body["original"]["sha256"], hex_sha256(&bytes), "{body}");
    assert_camera_exif(&body["original"]["exif"]);
    assert_eq!(body["original"]["frames"], 1);
    assert!(
        body["original"]["blurhash"].is_null(),
        "pixels are read by the worker: {body}"
    );
    let id = body["id"].as_str().expect("id").to_owned();

    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_colour_near(&done["original"]["dominant_color"], [30, 120, 200], 2);
    let hash = done["original"]["blurhash"].as_str().expect("blurhash");
    assert_eq!(hash.len(), 28, "4x3 components: {hash}");
    assert_eq!(done["processed"]["frames"], 1);
    assert_camera_exif(&done["original"]["exif"]);
    let text = done.to_string().to_lowercase();
    assert!(
        !text.contains("latitude") && !text.contains("longitude"),
        "{text}"
    );

    // The output carries no EXIF at all, so no position either.
    let out = app
        .get(&format!("/api/images/{id}/processed"))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert!(
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(&out[..]))
            .is_err(),
        "the output has an EXIF block"
    );
    // The columns answer SQL as the API does.
    let client = app.db().await;
    let row = client
        .query_one(
            "select sha256, exif->>'model', (exif->>'has_gps')::bool, exif ? 'latitude' \
             from processed_images where id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("facts row");
    assert_eq!(row.get::<_, String>(0), hex_sha256(&bytes));
    assert_eq!(row.get::<_, String>(1), "EOS R5");
    assert!(row.get::<_, bool>(2));
    assert!(!row.get::<_, bool>(3));
    app.stop().await;
}

#[tokio::test]
async fn a_row_inserted_by_sql_gets_its_facts_from_the_worker() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let client = app.db().await;
    let bytes = camera_jpeg("Canon");
    insert_jobs_of(&client, &bytes, 1).await;
    assert!(wait_completed(&client, 1, Duration::from_secs(60)).await);
    let listed = app.get_json("/api/images").await;
    let image = &listed["images"][0];
    assert_eq!(image["original"]["sha256"], hex_sha256(&bytes), "{image}");
    assert_camera_exif(&image["original"]["exif"]);
    assert_eq!(image["original"]["frames"], 1);
    assert_colour_near(&image["original"]["dominant_color"], [30, 120, 200], 2);
    // No pipeline of its own: the image object shows the effective one, the default.
    assert!(image["pipeline"]["steps"].is_array(), "{image}");
    app.stop().await;
}

#[tokio::test]
async fn an_animation_counts_its_frames_and_a_damaged_exif_block_is_no_exif() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let mut gif = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut gif, 40, 30, &[0, 0, 0, 255, 255, 255]).expect("gif");
        for i in 0..3u8 {
            let frame = gif::Frame {
                width: 40,
                height: 30,
                buffer: std::borrow::Cow::Owned(vec![i % 2; 40 * 30]),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).expect("frame");
        }
    }
    let res = upload_bytes(&app, gif, "image/gif", &[]).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["original"]["frames"], 3, "{body}");

    // An APP1 "Exif" segment of garbage, and one with a 10 000-character make.
    let plain = jpeg(64, 48);
    let mut broken = plain[..2].to_vec();
    broken.extend_from_slice(&[0xff, 0xe1, 0x00, 0x10]);
    broken.extend_from_slice(b"Exif\0\0MM\0\x2a\xff\xff\xff\xff");
    broken.extend_from_slice(&plain[2..]);
    let res = upload_bytes(&app, broken, "image/jpeg", &[]).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    assert!(body["original"]["exif"].is_null(), "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(app.wait_done(&id).await["status"], "completed");

    let long = camera_jpeg(&"x".repeat(10_000));
    let res = upload_bytes(&app, long, "image/jpeg", &[]).await;
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        body["original"]["exif"]["make"].as_str().map(str::len),
        Some(128),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn dedupe_answers_with_the_earlier_upload_of_the_same_bytes_and_pipeline() {
    let app = spawn_app_with(Role::Run, &[]).await;
    let bytes = png(50, 40);
    let first: serde_json::Value = upload_bytes(&app, bytes.clone(), "image/png", &[("width", "20")])
        .await
        .json()
        .await
        .expect("json");
    let first_id = first["id"].as_str().expect("id").to_owned();

    let res = upload_bytes(
        &app,
        bytes.clone(),
        "image/png",
        &[("width", "20"), ("dedupe", "true")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "a duplicate is not queued again");
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/images/{first_id}").as_str())
    );
    let again: serde_json::Value = res.json().await.expect("json");
    assert_eq!(again["id"], first_id.as_str());

    // Another pipeline, or no dedupe asked: a new image.
    let other = upload_bytes(
        &app,
        bytes.clone(),
        "image/png",
        &[("width", "30"), ("dedupe", "true")],
    )
    .await;
    assert_eq!(other.status(), StatusCode::ACCEPTED);
    let plain = upload_bytes(&app, bytes.clone(), "image/png", &[("width", "20")]).await;
    assert_eq!(plain.status(), StatusCode::ACCEPTED);
    // No operations on either side: both have the default pipeline, so they match.
    let bare: serde_json::Value = upload_bytes(&app, bytes.clone(), "image/png", &[])
        .await
        .json()
        .await
        .expect("json");
    let bare_again: serde_json::Value = upload_bytes(&app, bytes.clone(), "image/png", &[("dedupe", "1")])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(bare_again["id"], bare["id"]);

    // A failed image is not a duplicate to answer with.
    let whole = png(60, 40);
    let broken = whole[..whole.len() - 30].to_vec();
    let failed: serde_json::Value = upload_bytes(&app, broken.clone(), "image/png", &[])
        .await
        .json()
        .await
        .expect("json");
    let failed_id = failed["id"].as_str().expect("id").to_owned();
    assert_eq!(app.wait_done(&failed_id).await["status"], "failed");
    let retry = upload_bytes(&app, broken, "image/png", &[("dedupe", "true")]).await;
    assert_eq!(retry.status(), StatusCode::ACCEPTED);

    let bad = upload_bytes(&app, bytes, "image/png", &[("dedupe", "maybe")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["param"], "dedupe");
    app.stop().await;
}

/// `jpeg` with comment segments inserted after its first segments until it is at least `size`
/// bytes: the same pixels and EXIF, a file from `db::LARGE_BLOB_BYTES` up.
fn padded_to(jpeg: &[u8], size: usize) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut n = 0u8;
    while out.len() + jpeg.len() < size {
        let body: Vec<u8> = (0..60_000u32)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(n))
            .collect();
        out.extend_from_slice(&[0xff, 0xfe]);
        out.extend_from_slice(&u16::try_from(body.len() + 2).expect("fits").to_be_bytes());
        out.extend_from_slice(&body);
        n = n.wrapping_add(1);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The columns an upload writes, as text, for comparing two rows.
const WRITTEN: &str = "select filename, pipeline::text, original_content_type, original_width::text, \
     original_height::text, priority::text, not_before::text, original_frames::text, exif::text, callback_url, \
     status from processed_images where id = $1::text::uuid";

/// Uploads from `db::LARGE_BLOB_BYTES` up are streamed in with COPY instead of an INSERT: every
/// column comes out as the INSERT writes it for a small file with the same fields, NULLs
/// included, the bytes exactly, and the API answers the same.
#[tokio::test]
async fn a_large_upload_is_copied_in_with_every_column_an_insert_writes() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    let small = camera_jpeg("Canon");
    let large = padded_to(&small, image_processor::db::LARGE_BLOB_BYTES + 1000);
    let later = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let fields = [
        ("width", "80"),
        ("format", "webp"),
        ("priority", "7"),
        ("not_before", later.as_str()),
        ("callback_url", "http://127.0.0.1:9/hook"),
    ];
    let mut answers = Vec::new();
    for bytes in [&small, &large] {
        let res = upload_bytes(&app, bytes.clone(), "image/jpeg", &fields).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        answers.push(res.json::<serde_json::Value>().await.expect("json"));
    }
    let [small_answer, large_answer] = [&answers[0], &answers[1]];
    assert_eq!(large_answer["status"], "pending", "{large_answer}");
    assert_eq!(large_answer["original"]["sha256"], hex_sha256(&large));
    assert_eq!(large_answer["original"]["bytes"], large.len());
    assert_camera_exif(&large_answer["original"]["exif"]);
    for key in ["pipeline", "priority", "not_before", "callback_url", "filename"] {
        assert_eq!(small_answer[key], large_answer[key], "{key}");
    }
    let read = |id: &serde_json::Value| {
        let id = id.as_str().expect("id").to_owned();
        let client = &client;
        async move {
            let row = client.query_one(WRITTEN, &[&id]).await.expect("row");
            (0..row.len())
                .map(|i| row.get::<_, Option<String>>(i))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(read(&small_answer["id"]).await, read(&large_answer["id"]).await);
    let row = client
        .query_one(
            "select original_data = $2, original_bytes, sha256 = encode(sha256(original_data), 'hex') \
             from processed_images where id = $1::text::uuid",
            &[&large_answer["id"].as_str().expect("id"), &large],
        )
        .await
        .expect("blob row");
    assert!(row.get::<_, bool>(0), "the stored bytes differ from the upload");
    assert_eq!(row.get::<_, i64>(1), large.len() as i64);
    assert!(
        row.get::<_, bool>(2),
        "sha256 column is not the stored bytes' hash"
    );

    // Nothing set: the NULL columns come out NULL (a raw body has no filename, a plain JPEG no
    // EXIF), and a worker processes the copied row.
    let plain = padded_to(&jpeg(300, 200), image_processor::db::LARGE_BLOB_BYTES + 1);
    let res = app
        .http
        .post(app.url("/api/images"))
        .header("content-type", "image/jpeg")
        .body(plain.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let row = client
        .query_one(
            "select filename is null, pipeline is null, not_before is null, exif is null, \
             callback_url is null, priority, original_bytes from processed_images where id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("row");
    for i in 0..5 {
        assert!(
            row.get::<_, bool>(i),
            "column {i} of the plain upload is not NULL"
        );
    }
    assert_eq!(row.get::<_, i16>(5), 0);
    assert_eq!(row.get::<_, i64>(6), plain.len() as i64);
    let worker = spawn_app_on(Role::Worker, app.db_url.clone(), &[]).await;
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"]["width"], 300, "{done}");
    worker.stop().await;
    app.stop().await;
}

/// A large upload whose COPY the database refuses (a trigger raises) is answered with an error and
/// leaves no row; the blob pool's connections (4) keep serving the large uploads after it.
#[tokio::test]
async fn a_refused_large_upload_leaves_no_row_and_the_next_ones_are_stored() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    refuse_uploads_named(&client, "refused.jpg").await;
    let large = padded_to(&jpeg(64, 48), image_processor::db::LARGE_BLOB_BYTES + 1);
    let upload = |name: &'static str| {
        app.http
            .post(app.url(&format!("/api/images?filename={name}")))
            .header("content-type", "image/jpeg")
            .body(large.clone())
            .send()
    };
    for round in 0..6 {
        let refused = upload("refused.jpg").await.expect("upload");
        let status = refused.status();
        let body: serde_json::Value = refused.json().await.expect("an error body");
        assert!(
            status.is_server_error() && body["error"].is_object(),
            "round {round}: a refused COPY answered {status} {body}"
        );
        let accepted = upload("accepted.jpg").await.expect("upload");
        assert_eq!(accepted.status(), StatusCode::ACCEPTED, "round {round}");
    }
    let rows = client
        .query_one(
            "select count(*), count(*) filter (where filename = 'accepted.jpg' and original_data = $1) \
             from processed_images",
            &[&large],
        )
        .await
        .expect("count");
    assert_eq!(rows.get::<_, i64>(0), 6, "a refused upload left a row");
    assert_eq!(rows.get::<_, i64>(1), 6, "an accepted upload's bytes differ");
    app.stop().await;
}

/// Backends of this test's database whose COPY of an upload waits for a lock.
const COPY_WAITS: &str = "select pid from pg_stat_activity where datname = current_database() \
     and wait_event_type = 'Lock' and query like 'copy processed_images%'";

/// Waits until an upload's COPY waits for the lock a test holds.
async fn until_a_copy_waits(client: &tokio_postgres::Client) {
    assert!(
        eventually(Duration::from_secs(10), || async {
            !client.query(COPY_WAITS, &[]).await.expect("activity").is_empty()
        })
        .await,
        "the upload's COPY never waited for the lock"
    );
}

/// Six large uploads, each `large` plus `tag` and its number (so the answers tell them apart),
/// through every blob-pool connection in turn: each is accepted, `pending`, with its own hash.
async fn six_large_uploads_answered_right(app: &TestApp, large: &[u8], tag: u8) {
    for i in 0..6u8 {
        let mut bytes = large.to_vec();
        bytes.extend_from_slice(&[tag, i]);
        let res = app
            .http
            .post(app.url("/api/images?filename=after.jpg"))
            .header("content-type", "image/jpeg")
            .body(bytes.clone())
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), StatusCode::ACCEPTED, "tag {tag}, upload {i}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(
            body["original"]["sha256"],
            hex_sha256(&bytes),
            "tag {tag}, upload {i}"
        );
        assert_eq!(body["status"], "pending", "tag {tag}, upload {i}: {body}");
    }
}

/// A large upload whose COPY fails before it starts (cancelled while it waits for a lock) is
/// answered with an error, leaves no row, and the large uploads after it, through every
/// blob-pool connection, are stored and answered with their own results. tokio-postgres 0.7
/// owes such a connection one reply too many (rust-postgres issue #789), so the API closes it
/// instead of pooling it; the race that would hand the stray reply to the next borrower's
/// statement is not forced here.
#[tokio::test]
async fn a_large_upload_cancelled_before_its_copy_starts_leaves_no_connection_out_of_step() {
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    let locker = app.db().await;
    let large = padded_to(&jpeg(64, 48), image_processor::db::LARGE_BLOB_BYTES + 1);
    let upload = |bytes: Vec<u8>| {
        app.http
            .post(app.url("/api/images?filename=large.jpg"))
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
    };
    for round in 0..2 {
        locker
            .batch_execute("begin; lock table processed_images in share mode")
            .await
            .expect("lock");
        let waiting = tokio::spawn(upload(large.clone()));
        until_a_copy_waits(&client).await;
        client
            .batch_execute(&format!("select pg_cancel_backend(pid) from ({COPY_WAITS}) w"))
            .await
            .expect("cancel");
        let refused = waiting.await.expect("task").expect("answer");
        assert!(
            refused.status().is_server_error(),
            "round {round}: a cancelled COPY answered {}",
            refused.status()
        );
        locker.batch_execute("commit").await.expect("unlock");
        six_large_uploads_answered_right(&app, &large, round).await;
    }
    let rows: i64 = client
        .query_one("select count(*) from processed_images", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(
        rows, 12,
        "a cancelled upload left a row, or an accepted one is missing"
    );
    app.stop().await;
}

/// A client that goes away while its large upload's COPY waits (here for a lock) does not cancel
/// it halfway: the upload is stored once the lock goes, and the large uploads after it are
/// answered with their own results.
#[tokio::test]
async fn a_large_upload_whose_client_goes_away_during_its_copy_is_still_stored() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(Role::Api, &[]).await;
    let client = app.db().await;
    let locker = app.db().await;
    let large = padded_to(&jpeg(64, 48), image_processor::db::LARGE_BLOB_BYTES + 1);
    locker
        .batch_execute("begin; lock table processed_images in share mode")
        .await
        .expect("lock");
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /api/images?filename=gone.jpg HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\n\
         Content-Length: {}\r\n\r\n",
        large.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&large).await.expect("body");
    until_a_copy_waits(&client).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    locker.batch_execute("commit").await.expect("unlock");
    let stored = || async {
        client
            .query_one(
                "select count(*) from processed_images where filename = 'gone.jpg' and original_data = $1",
                &[&large],
            )
            .await
            .expect("count")
            .get::<_, i64>(0)
            == 1
    };
    let kept = eventually(Duration::from_secs(10), stored).await;
    let rows: Vec<(Option<String>, i64)> = client
        .query("select filename, original_bytes from processed_images", &[])
        .await
        .expect("rows")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(
        kept,
        "the upload of a client that went away was not stored: {rows:?}"
    );
    six_large_uploads_answered_right(&app, &large, 2).await;
    app.stop().await;
}
