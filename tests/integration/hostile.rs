//! The hostile-input battery: requests an attacker (or a broken client) would send, over real
//! HTTP. Each must get the right 4xx with a JSON error (or, where the input is merely odd but
//! harmless, be accepted and stored as plain data); after each one the server still answers
//! `/healthz`, and the rows stored before it are byte-for-byte what they were.
//!
//! The app runs without a worker, so stored rows stay `pending` and can be compared exactly,
//! and with `MAX_UPLOAD_BYTES` at 1 MiB so the size cases stay quick. `MAX_PIXELS` keeps its
//! production default of 50 000 000.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use crate::common::*;
use futures::FutureExt;
use image::{DynamicImage, GrayImage, ImageFormat};
use image_processor::config::Role;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, Request, StatusCode};
use serde_json::Value;

/// What a case must get back.
enum Expect {
    /// This status and this `error.code`, in the JSON error body.
    Error(StatusCode, &'static str),
    /// This status and either `error.code`: where two refusals are both right.
    ErrorEither(StatusCode, &'static str, &'static str),
    /// `202`: harmless input, stored as data; the body is checked by the closure.
    Accepted(fn(&Value)),
    /// Refused before the app sees it (hyper itself): this status, or the connection closed.
    Refused(StatusCode),
    /// A plain success that must not leak more than asked (checked by status only).
    Ok(StatusCode),
}

struct Case {
    name: &'static str,
    request: Request,
    expect: Expect,
}

const BOUNDARY: &str = "hostile-boundary-7d1f";

/// One stored row, as the comparison sees it.
type Row = (String, String, Option<String>, String, Option<String>);

async fn rows(app: &TestApp) -> BTreeMap<String, Row> {
    app.db()
        .await
        .query(
            "select id::text, md5(original_data), filename, status, pipeline::text \
             from processed_images",
            &[],
        )
        .await
        .expect("read rows")
        .iter()
        .map(|r| {
            let row: Row = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            (row.0.clone(), row)
        })
        .collect()
}

/// A real PNG whose IHDR (with a correct CRC) now declares `width×height`.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut data = png(8, 8);
    data[16..20].copy_from_slice(&width.to_be_bytes());
    data[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32fast::hash(&data[12..29]);
    data[29..33].copy_from_slice(&crc.to_be_bytes());
    data
}

/// A real JPEG whose frame header (SOF0) now declares `width×height`.
fn jpeg_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut data = jpeg(8, 8);
    let sof = data
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline JPEG fixture has SOF0");
    data[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    data[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    data
}

/// A GIF whose screen and only frame are `width×height`, with two pixels of data.
fn gif_declaring(width: u16, height: u16) -> Vec<u8> {
    let mut d = b"GIF89a".to_vec();
    d.extend(width.to_le_bytes());
    d.extend(height.to_le_bytes());
    d.extend([0x80, 0, 0]); // global colour table of 2 entries
    d.extend([0, 0, 0, 255, 255, 255]);
    d.push(0x2C);
    d.extend([0, 0, 0, 0]);
    d.extend(width.to_le_bytes());
    d.extend(height.to_le_bytes());
    d.push(0);
    d.extend([2, 2, 0x4C, 0x01, 0]); // LZW min size 2, one sub-block, terminator
    d.push(0x3B);
    d
}

/// A 24-bit BMP header declaring `width×height`, with no pixels behind it.
fn bmp_declaring(width: i32, height: i32) -> Vec<u8> {
    let mut d = b"BM".to_vec();
    d.extend(54u32.to_le_bytes());
    d.extend([0; 4]);
    d.extend(54u32.to_le_bytes());
    d.extend(40u32.to_le_bytes());
    d.extend(width.to_le_bytes());
    d.extend(height.to_le_bytes());
    d.extend(1u16.to_le_bytes());
    d.extend(24u16.to_le_bytes());
    d.extend([0; 24]);
    d
}

/// A little-endian baseline TIFF whose only IFD declares `width×height` 8-bit grey.
fn tiff_declaring(width: u32, height: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, 1),
    ];
    let mut d = b"II*\0".to_vec();
    d.extend(8u32.to_le_bytes());
    d.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        d.extend(tag.to_le_bytes());
        d.extend(kind.to_le_bytes());
        d.extend(1u32.to_le_bytes());
        d.extend(value.to_le_bytes());
    }
    d.extend(0u32.to_le_bytes());
    d
}

/// A real, valid PNG of 7100×7100 zero pixels (50.4 megapixels, just over the limit): a few
/// tens of KiB that would inflate to 50 MB.
fn png_bomb() -> Vec<u8> {
    encode(
        &DynamicImage::ImageLuma8(GrayImage::new(7100, 7100)),
        ImageFormat::Png,
    )
}

fn file(bytes: Vec<u8>, name: &str, mime: &str) -> Part {
    Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .expect("mime")
}

fn assert_error_json(
    name: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    code: &str,
) {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "{name}: {status} with Content-Type {ct:?}"
    );
    let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{name}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    });
    assert_error(name, &v, code);
}

#[tokio::test]
async fn hostile_requests_get_json_4xx_and_leave_stored_rows_intact() {
    let app = spawn_app_with(Role::Api, &[("max-upload-bytes", "1048576")]).await;
    let http = &app.http;
    let url = |p: &str| app.url(p);

    // Legitimate rows first; the battery must leave them exactly as they are.
    for form in [
        Form::new().part("file", file(jpeg(64, 48), "cat.jpg", "image/jpeg")),
        Form::new()
            .text("pipeline", r#"{"steps":[{"op":"grayscale"}],"format":"png"}"#)
            .part("file", file(png(32, 32), "dog.png", "image/png")),
    ] {
        let res = http
            .post(url("/api/images"))
            .multipart(form)
            .send()
            .await
            .expect("seed");
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    let seeded = rows(&app).await;
    assert_eq!(seeded.len(), 2);
    let some_id = seeded.keys().next().expect("an id").clone();

    let multipart = |body: Vec<u8>, content_type: &str| {
        http.post(url("/api/images"))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .build()
            .expect("request")
    };
    let form_with = |fields: &[(&str, &str)]| {
        let mut form = Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        http.post(url("/api/images"))
            .multipart(form.part("file", file(png(8, 8), "a.png", "image/png")))
            .build()
            .expect("request")
    };
    let upload_file = |bytes: Vec<u8>, name: &str| {
        http.post(url("/api/images"))
            .multipart(Form::new().part("file", file(bytes, name, "application/octet-stream")))
            .build()
            .expect("request")
    };
    let get = |p: &str| http.get(url(p)).build().expect("request");
    use StatusCode as S;
    let too_big = || Expect::Error(S::UNPROCESSABLE_ENTITY, "image_too_large");
    let not_image = || Expect::Error(S::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");

    let part = |headers: &str, body: &[u8]| {
        let mut v = format!("--{BOUNDARY}\r\n{headers}\r\n\r\n").into_bytes();
        v.extend_from_slice(body);
        v.extend_from_slice(b"\r\n");
        v
    };
    let mp_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let png8 = png(8, 8);
    let mut unterminated = part(
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"",
        &png8,
    );
    unterminated.truncate(unterminated.len() - 40);
    let mut terminated_wrong = part(
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"",
        &png8,
    );
    terminated_wrong.extend_from_slice(b"--some-other-boundary--\r\n");
    let mut no_disposition = part("Content-Type: image/png", &png8);
    no_disposition.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let mut invalid_utf8_name =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"").into_bytes();
    invalid_utf8_name.extend_from_slice(b"\xff\xfe\xc3(.png\"\r\nContent-Type: image/png\r\n\r\n");
    invalid_utf8_name.extend_from_slice(&png8);
    invalid_utf8_name.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut invalid_utf8_field = part("Content-Disposition: form-data; name=\"width\"", b"\xff\xfe12");
    invalid_utf8_field.extend(part(
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.png\"",
        &png8,
    ));
    invalid_utf8_field.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());

    let many_files = (0..21).fold(Form::new(), |f, i| {
        f.part("file", file(png(4, 4), &format!("{i}.png"), "image/png"))
    });
    let many_fields = (0..65).fold(Form::new(), |f, i| f.text(format!("x{i}"), "1"));
    let long_kernel = vec!["1"; 100_000].join(",");
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_obj = format!("{}1{}", "{\"steps\":".repeat(5_000), "}".repeat(5_000));
    let long_path = format!("/api/images/{}", "a".repeat(9_000));
    let long_query = format!("/api/images?status={}", "x".repeat(9_000));
    let sql_name: &'static str = "'; DROP TABLE processed_images; --.png";
    let html_name: &'static str = "<img src=x onerror=alert(1)>.png";

    let cases = vec![
        // Malformed multipart.
        Case {
            name: "multipart without a boundary",
            request: multipart(png8.clone(), "multipart/form-data"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "multipart with an empty boundary",
            request: multipart(png8.clone(), "multipart/form-data; boundary="),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "multipart, unterminated part",
            request: multipart(unterminated, &mp_type),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "multipart closed by another boundary",
            request: multipart(terminated_wrong, &mp_type),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "multipart part without Content-Disposition",
            request: multipart(no_disposition, &mp_type),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "multipart body that is not multipart",
            request: multipart(b"hello".to_vec(), &mp_type),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "21 files in one request",
            request: http
                .post(url("/api/images"))
                .multipart(many_files)
                .build()
                .expect("req"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "65 form fields",
            request: http
                .post(url("/api/images"))
                .multipart(many_fields.part("file", file(png(4, 4), "a.png", "image/png")))
                .build()
                .expect("req"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a 100 KiB field value",
            request: form_with(&[("width", &"9".repeat(100 * 1024))]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "form fields but no file",
            request: http
                .post(url("/api/images"))
                .multipart(Form::new().text("width", "10"))
                .build()
                .expect("req"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "field value that is not UTF-8",
            request: multipart(invalid_utf8_field, &mp_type),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "file over MAX_UPLOAD_BYTES",
            request: upload_file(vec![0x89; 2 << 20], "big.png"),
            expect: Expect::Error(S::PAYLOAD_TOO_LARGE, "payload_too_large"),
        },
        Case {
            name: "raw body declaring over MAX_UPLOAD_BYTES",
            request: http
                .post(url("/api/images"))
                .header(CONTENT_TYPE, "image/png")
                .body(vec![0u8; (1 << 20) + 1])
                .build()
                .expect("req"),
            expect: Expect::Error(S::PAYLOAD_TOO_LARGE, "payload_too_large"),
        },
        // Wrong content types and lying names.
        Case {
            name: "text/plain body",
            request: multipart(b"hello".to_vec(), "text/plain"),
            expect: not_image(),
        },
        Case {
            name: "JSON body",
            request: multipart(br#"{"file":"x"}"#.to_vec(), "application/json"),
            expect: not_image(),
        },
        Case {
            name: "no Content-Type",
            request: http
                .post(url("/api/images"))
                .body(png8.clone())
                .build()
                .expect("req"),
            expect: not_image(),
        },
        Case {
            name: "Content-Type that is not UTF-8",
            request: http
                .post(url("/api/images"))
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_bytes(b"image/\xffpng").expect("header"),
                )
                .body(png8.clone())
                .build()
                .expect("req"),
            expect: not_image(),
        },
        Case {
            name: "HTML sent as image/png",
            request: multipart(b"<html><script>alert(1)</script></html>".to_vec(), "image/png"),
            expect: not_image(),
        },
        Case {
            name: "a script named cat.jpg",
            request: upload_file(b"<?php system($_GET['c']); ?>".to_vec(), "cat.jpg"),
            expect: not_image(),
        },
        Case {
            name: "an SVG (script-capable) named a.png",
            request: upload_file(
                br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#.to_vec(),
                "a.png",
            ),
            expect: not_image(),
        },
        Case {
            name: "a PDF named a.jpg",
            request: upload_file(
                b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF".to_vec(),
                "a.jpg",
            ),
            expect: not_image(),
        },
        Case {
            name: "a truncated PNG signature",
            request: upload_file(png8[..12].to_vec(), "a.png"),
            expect: Expect::Error(S::UNPROCESSABLE_ENTITY, "corrupt_image"),
        },
        Case {
            name: "an empty file part",
            request: upload_file(Vec::new(), "a.png"),
            expect: not_image(),
        },
        Case {
            name: "an empty raw body",
            request: multipart(Vec::new(), "image/png"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a GIF named evil.png is stored as a GIF",
            request: upload_file(encode(&photo(4, 4), ImageFormat::Gif), "evil.png"),
            expect: Expect::Accepted(|v| assert_eq!(v["original"]["content_type"], "image/gif", "{v}")),
        },
        Case {
            name: "a JPEG sent as image/png is stored as a JPEG",
            request: http
                .post(url("/api/images?filename=x.png"))
                .header(CONTENT_TYPE, "image/png")
                .body(jpeg(8, 8))
                .build()
                .expect("req"),
            expect: Expect::Accepted(|v| assert_eq!(v["original"]["content_type"], "image/jpeg", "{v}")),
        },
        // Huge declared dimensions and bombs.
        Case {
            name: "PNG declaring 100000x100000",
            request: upload_file(png_declaring(100_000, 100_000), "a.png"),
            expect: too_big(),
        },
        Case {
            name: "PNG declaring 2^31-1 x 2^31-1",
            request: upload_file(png_declaring(i32::MAX as u32, i32::MAX as u32), "a.png"),
            // The PNG decoder's own allocation cap trips before the pixel check can name the size.
            expect: Expect::ErrorEither(S::UNPROCESSABLE_ENTITY, "image_too_large", "corrupt_image"),
        },
        Case {
            name: "JPEG declaring 65000x65000",
            request: upload_file(jpeg_declaring(65_000, 65_000), "a.jpg"),
            expect: too_big(),
        },
        Case {
            name: "GIF declaring 65535x65535",
            request: upload_file(gif_declaring(u16::MAX, u16::MAX), "a.gif"),
            expect: too_big(),
        },
        Case {
            name: "BMP declaring 100000x100000",
            request: upload_file(bmp_declaring(100_000, 100_000), "a.bmp"),
            // The BMP decoder refuses sides over 65535 itself, before the pixel check.
            expect: Expect::ErrorEither(S::UNPROCESSABLE_ENTITY, "image_too_large", "corrupt_image"),
        },
        Case {
            name: "BMP declaring a negative width",
            request: upload_file(bmp_declaring(-100_000, 100_000), "a.bmp"),
            expect: Expect::Error(S::UNPROCESSABLE_ENTITY, "corrupt_image"),
        },
        Case {
            name: "TIFF declaring 100000x100000",
            request: upload_file(tiff_declaring(100_000, 100_000), "a.tif"),
            expect: too_big(),
        },
        Case {
            // Found by fuzz/ (target `image`): png 0.18.1 panics expanding such a palette.
            name: "PNG with an 11-byte palette",
            request: upload_file(
                include_bytes!("../../fuzz/regressions/image/png-palette-of-11-bytes")[1..].to_vec(),
                "a.png",
            ),
            expect: Expect::Error(S::UNPROCESSABLE_ENTITY, "corrupt_image"),
        },
        Case {
            name: "PNG decompression bomb (50.4 MP of zeros)",
            request: upload_file(png_bomb(), "bomb.png"),
            expect: too_big(),
        },
        // Filenames and strings that are code: stored as data, answered as JSON strings.
        Case {
            name: "SQL in the filename",
            request: upload_file(png8.clone(), sql_name),
            expect: Expect::Accepted(|v| {
                assert_eq!(v["filename"], "'; DROP TABLE processed_images; --.png", "{v}")
            }),
        },
        Case {
            name: "HTML in the filename",
            request: upload_file(png8.clone(), html_name),
            expect: Expect::Accepted(|v| {
                assert_eq!(v["filename"], "<img src=x onerror=alert(1)>.png", "{v}")
            }),
        },
        Case {
            name: "a path in the filename",
            request: upload_file(png8.clone(), "../../etc/passwd.png"),
            expect: Expect::Accepted(|v| assert_eq!(v["filename"], "passwd.png", "{v}")),
        },
        Case {
            name: "a Windows path and a tab in the filename",
            request: upload_file(png8.clone(), "C:\\Windows\\system32\\cat\t.png"),
            expect: Expect::Accepted(|v| assert_eq!(v["filename"], "cat.png", "{v}")),
        },
        Case {
            // A raw CR/LF ends the part's header line: the part is malformed, not renamed.
            name: "raw CR/LF inside the filename",
            request: upload_file(png8.clone(), "pass\r\nwd.png"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "SQL in ?filename= of a raw upload",
            request: http
                .post(url(
                    "/api/images?filename=x'%3B%20DELETE%20FROM%20processed_images%3B--",
                ))
                .header(CONTENT_TYPE, "image/png")
                .body(png8.clone())
                .build()
                .expect("req"),
            expect: Expect::Accepted(|v| {
                assert_eq!(v["filename"], "x'; DELETE FROM processed_images;--", "{v}")
            }),
        },
        Case {
            name: "a filename that is not UTF-8",
            request: multipart(invalid_utf8_name, &mp_type),
            // Stored without a name (downloads then use `image.<ext>`), never as raw bytes.
            expect: Expect::Accepted(|v| assert!(v["filename"].is_null(), "{v}")),
        },
        Case {
            name: "SQL in width",
            request: form_with(&[("width", "1 OR 1=1")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "HTML in format",
            request: form_with(&[("format", "<script>alert(1)</script>")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "SQL in fit",
            request: form_with(&[("width", "10"), ("fit", "cover'; DROP TABLE processed_images;--")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "an unknown field named like markup",
            request: form_with(&[("<b>x</b>", "1")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "SQL in the status filter",
            request: get("/api/images?status=completed'%20OR%20'1'='1"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "SQL in the cursor",
            request: get("/api/images?before=1_'%3B%20DROP%20TABLE%20x%3B--"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        // Numbers out of range or not numbers.
        Case {
            name: "width=-1",
            request: form_with(&[("width", "-1")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "width=99999999999",
            request: form_with(&[("width", "99999999999")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "width=1e309",
            request: form_with(&[("width", "1e309")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "blur=NaN",
            request: form_with(&[("blur", "NaN")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "sharpen=inf",
            request: form_with(&[("sharpen", "inf")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "blur=1e309",
            request: form_with(&[("blur", "1e309")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "brightness below i32",
            request: form_with(&[("brightness", "-2147483649")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "quality=0",
            request: form_with(&[("quality", "0")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "quality=256",
            request: form_with(&[("quality", "256")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "crop with a negative size",
            request: form_with(&[("crop", "0,0,-5,5")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "rotate=45",
            request: form_with(&[("rotate", "45")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        // The second release's operations.
        Case {
            name: "a kernel of 100 000 weights",
            request: form_with(&[("kernel", &long_kernel)]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a kernel of Arabic-Indic digits",
            request: form_with(&[("kernel", "١,١,١,١,١,١,١,١,١")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a kernel weight of 1e309",
            request: form_with(&[(
                "pipeline",
                r#"{"steps":[{"op":"kernel","kernel":[1,1,1,1,1e309,1,1,1,1]}]}"#,
            )]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "tint with a NUL",
            request: form_with(&[("tint", "ff\u{0}000")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "background of nine hex digits",
            request: form_with(&[("background", "ffffffff0")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "focus=NaN,NaN",
            request: form_with(&[
                ("focus", "NaN,NaN"),
                ("width", "10"),
                ("height", "10"),
                ("fit", "cover"),
            ]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a JSON focus of three numbers",
            request: form_with(&[(
                "pipeline",
                r#"{"steps":[{"op":"resize","width":10,"height":10,"fit":"cover","focus":[0.1,0.2,0.3]}]}"#,
            )]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "pad with one side in JSON",
            request: form_with(&[(
                "pipeline",
                r#"{"steps":[{"op":"resize","width":10,"fit":"pad"}]}"#,
            )]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "pixelate=4294967296",
            request: form_with(&[("pixelate", "4294967296")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "SQL as a watermark id",
            request: form_with(&[("watermark", "'; drop table processed_images; --")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "the nil UUID as a watermark",
            request: form_with(&[("watermark", "00000000-0000-0000-0000-000000000000")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a watermark opacity of 300 in JSON",
            request: form_with(&[(
                "pipeline",
                r#"{"steps":[{"op":"watermark","image":"00000000-0000-0000-0000-000000000001","opacity":300}]}"#,
            )]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        // JSON pipelines.
        Case {
            name: "an unknown op",
            request: form_with(&[("pipeline", r#"{"steps":[{"op":"explode"}]}"#)]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "an unknown key in a resize step",
            request: form_with(&[(
                "pipeline",
                r#"{"steps":[{"op":"resize","width":10,"shell":"rm -rf /"}]}"#,
            )]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "an unknown key in a grayscale step",
            request: form_with(&[("pipeline", r#"{"steps":[{"op":"grayscale","shell":"rm -rf /"}]}"#)]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "NaN-like width in JSON",
            request: form_with(&[("pipeline", r#"{"steps":[{"op":"resize","width":1e309}]}"#)]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "10000-deep JSON array",
            request: form_with(&[("pipeline", &nested)]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "5000-deep JSON objects",
            request: form_with(&[("pipeline", &nested_obj)]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "pipeline that is not JSON",
            request: form_with(&[("pipeline", "steps: [resize]")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "pipeline and flat fields together",
            request: form_with(&[("pipeline", r#"{"steps":[]}"#), ("width", "10")]),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        // Absurd query parameters and headers.
        Case {
            name: "limit=0",
            request: get("/api/images?limit=0"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "limit=1000000000000",
            request: get("/api/images?limit=1000000000000"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "limit=-1",
            request: get("/api/images?limit=-1"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "wait=1e309",
            request: get(&format!("/api/images/{some_id}?wait=1e309")),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "wait=NaN",
            request: get(&format!("/api/images/{some_id}?wait=NaN")),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "wait=-1",
            request: get(&format!("/api/images/{some_id}?wait=-1")),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        // Every extractor rejection is the JSON error, never axum's plain text.
        Case {
            name: "a repeated wait",
            request: get(&format!("/api/images/{some_id}?wait=1&wait=2")),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a repeated wait on the legacy route",
            request: get(&format!("/status/{some_id}?wait=1&wait=1")),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "a repeated status filter",
            request: get("/api/images?status=failed&status=failed"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "an id that is not UTF-8",
            request: get("/api/images/%FF/processed"),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "an asset path that is not UTF-8",
            request: get("/assets/%FF%FE.js"),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "a cursor in another spelling",
            request: get("/api/images?before=1_00000000-0000-0000-0000-000000000001"),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        Case {
            name: "wait=3600",
            request: get(&format!("/status/{some_id}?wait=3600")),
            expect: Expect::Error(S::BAD_REQUEST, "invalid_parameter"),
        },
        // Range is optional in HTTP: ignoring an absurd one and sending the whole file is right.
        Case {
            name: "an absurd Range on a download",
            request: http
                .get(url(&format!("/api/images/{some_id}/original")))
                .header("range", "bytes=99999999999999999999-0,-0,0-")
                .build()
                .expect("req"),
            expect: Expect::Ok(S::OK),
        },
        Case {
            name: "a URL over 8 KiB",
            request: get(&long_path),
            expect: Expect::Error(S::URI_TOO_LONG, "uri_too_long"),
        },
        Case {
            name: "a query over 8 KiB",
            request: get(&long_query),
            expect: Expect::Error(S::URI_TOO_LONG, "uri_too_long"),
        },
        Case {
            name: "a 40 KiB header",
            request: http
                .get(url("/api/stats"))
                .header("x-junk", "j".repeat(40 * 1024))
                .build()
                .expect("req"),
            expect: Expect::Error(S::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
        },
        Case {
            name: "a 1 MiB header (hyper refuses it)",
            request: http
                .get(url("/api/stats"))
                .header("x-junk", "j".repeat(1 << 20))
                .build()
                .expect("req"),
            expect: Expect::Refused(S::REQUEST_HEADER_FIELDS_TOO_LARGE),
        },
        Case {
            name: "a body on a route that takes none",
            request: http
                .post(url(&format!("/api/images/{some_id}/retry")))
                .body(vec![b'x'; 64 * 1024])
                .build()
                .expect("req"),
            expect: Expect::Error(S::PAYLOAD_TOO_LARGE, "payload_too_large"),
        },
        Case {
            name: "PUT on the collection",
            request: http
                .request(Method::PUT, url("/api/images"))
                .body("x")
                .build()
                .expect("req"),
            expect: Expect::Error(S::METHOD_NOT_ALLOWED, "method_not_allowed"),
        },
        // Ids that are paths or code.
        Case {
            name: "a traversal id",
            request: get("/api/images/..%2F..%2F..%2Fetc%2Fpasswd"),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "a traversal id on a download",
            request: get("/download/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "a NUL in the id",
            request: get("/api/images/%00/original"),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "SQL as the id",
            request: http
                .delete(url("/api/images/1'%20OR%20'1'%3D'1"))
                .build()
                .expect("req"),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "a UUID with trailing junk",
            request: get(&format!("/api/images/{some_id}%27--")),
            expect: Expect::Error(S::NOT_FOUND, "not_found"),
        },
        Case {
            name: "a traversal into the UI assets",
            request: get("/assets/..%2F..%2FCargo.toml"),
            expect: Expect::Ok(S::NOT_FOUND),
        },
    ];
    assert!(cases.len() >= 30);

    let mut expected_rows = seeded.clone();
    let mut failures = Vec::new();
    for case in cases {
        let name = case.name;
        // Every case runs, so one run reports every failure, not just the first.
        let outcome = AssertUnwindSafe(run_case(&app, case, &mut expected_rows))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{name}: {message}"));
            // Re-sync, so one failure does not cascade into the next case's row check.
            expected_rows = rows(&app).await;
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The rows stored as data come back as data: the JSON API escapes them, nothing ran.
    let list: Value = http
        .get(url("/api/images?limit=200"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = list["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["filename"].as_str())
        .collect();
    assert!(
        names.contains(&sql_name) && names.contains(&html_name),
        "{names:?}"
    );
    let seeded_now = rows(&app).await;
    for (id, row) in &seeded {
        assert_eq!(&seeded_now[id], row, "seeded row {id} changed");
    }
}

/// Sends one case, checks its answer, then that the server is up and the rows are as expected.
async fn run_case(app: &TestApp, case: Case, expected_rows: &mut BTreeMap<String, Row>) {
    use StatusCode as S;
    let name = case.name;
    let result = app.http.execute(case.request).await;
    match case.expect {
        Expect::Refused(status) => {
            if let Ok(res) = result {
                assert_eq!(res.status(), status, "{name}");
            }
        }
        Expect::Ok(status) => {
            let res = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(res.status(), status, "{name}");
        }
        Expect::Error(status, code) => {
            let res = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await.unwrap_or_default();
            assert_eq!(got, status, "{name}: {}", String::from_utf8_lossy(&body));
            assert_error_json(name, got, &headers, &body, code);
        }
        Expect::ErrorEither(status, one, other) => {
            let res = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = res.status();
            let headers = res.headers().clone();
            let body = res.bytes().await.unwrap_or_default();
            assert_eq!(got, status, "{name}: {}", String::from_utf8_lossy(&body));
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let code = if v["error"]["code"] == other { other } else { one };
            assert_error_json(name, got, &headers, &body, code);
        }
        Expect::Accepted(check) => {
            let res = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let got = res.status();
            let body: Value = res.json().await.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, S::ACCEPTED, "{name}: {body}");
            check(&body);
            let id = body["id"].as_str().expect("id").to_owned();
            let now = rows(app).await;
            expected_rows.insert(id.clone(), now[&id].clone());
        }
    }
    let health = app.http.get(app.url("/healthz")).send().await;
    assert!(
        health.is_ok_and(|r| r.status() == S::OK),
        "{name}: the server stopped answering /healthz"
    );
    assert_eq!(&rows(app).await, expected_rows, "{name}: stored rows changed");
}

/// A client that sends its request headers a byte at a time (or stops half-way) must not keep a
/// connection, and the task serving it, forever: after `HEADER_READ_TIMEOUT_SECS` it is cut off,
/// while a well-behaved client on another connection is served meanwhile.
#[tokio::test]
async fn slow_header_clients_are_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{timeout, Duration, Instant};

    let app = spawn_app_with(Role::Api, &[("header-read-timeout-secs", "1")]).await;
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.expect("connect");
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("partial headers");
    // Keep trickling for a while, as a slowloris client would; the server may cut us off any time.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(b"a").await.is_err() {
            break;
        }
    }
    let res = app.http.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "a normal client is served meanwhile"
    );

    let mut buf = Vec::new();
    let read = timeout(Duration::from_secs(15), slow.read_to_end(&mut buf)).await;
    let elapsed = started.elapsed();
    match read {
        Err(_) => panic!("the slow connection was still open after {elapsed:?}"),
        // Closed (possibly with a 408 first, or reset): either way the connection is gone.
        Ok(_) => assert!(
            buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
            "unexpected answer to unfinished headers: {:?}",
            String::from_utf8_lossy(&buf)
        ),
    }
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed after {elapsed:?}, before the 1 s timeout"
    );
    app.stop().await;
}
