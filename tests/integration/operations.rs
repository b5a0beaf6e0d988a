//! The colour and convolution operations of the second release (saturation, hue, gamma, sepia,
//! invert, tint, equalize, kernel, pixelate), as a user meets them: through the imaging core on
//! real encoded images, through both pipeline forms with their validation, and end to end over
//! HTTP, one upload per family.

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use image_processor::imaging::{self, Limits, Pipeline, Step};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;

use crate::common::*;

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
};

/// A colourful test card: a hue sweep left to right, darker toward the bottom.
fn card(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let t = x as f32 / w as f32 * 3.0;
        let shade = 1.0 - 0.6 * y as f32 / h as f32;
        let ramp =
            |c: f32| ((1.0 - (t - c).abs().min(3.0 - (t - c).abs())).clamp(0.0, 1.0) * 255.0 * shade) as u8;
        Rgb([ramp(0.0), ramp(1.0), ramp(2.0)])
    })
}

fn png_of(img: &RgbImage) -> Vec<u8> {
    encode(&DynamicImage::ImageRgb8(img.clone()), ImageFormat::Png)
}

/// Processes `input` with the flat fields of `spec` (PNG out, so pixels are exact).
fn apply(input: &[u8], spec: &str) -> RgbImage {
    let mut pairs: Vec<(&str, &str)> = spec
        .split('&')
        .map(|kv| kv.split_once('=').expect("key=value"))
        .collect();
    pairs.push(("format", "png"));
    let pipeline = Pipeline::from_fields(pairs).expect("valid").expect("some fields");
    let out = imaging::process(input, &pipeline, &LIMITS).expect("processes");
    image::load_from_memory(&out.bytes).expect("decodes").to_rgb8()
}

fn chroma(p: &Rgb<u8>) -> i32 {
    let [r, g, b] = p.0.map(i32::from);
    r.max(g).max(b) - r.min(g).min(b)
}

fn mean_chroma(img: &RgbImage) -> f64 {
    img.pixels().map(|p| f64::from(chroma(p))).sum::<f64>() / img.pixels().len() as f64
}

fn mean_level(img: &RgbImage) -> f64 {
    img.pixels()
        .map(|p| p.0.iter().map(|&c| f64::from(c)).sum::<f64>() / 3.0)
        .sum::<f64>()
        / img.pixels().len() as f64
}

#[test]
fn saturation_goes_both_ways_and_hue_turns_the_sweep() {
    let src = card(90, 30);
    let input = png_of(&src);
    let before = mean_chroma(&src);
    let less = mean_chroma(&apply(&input, "saturation=-60"));
    let more = mean_chroma(&apply(&input, "saturation=60"));
    assert!(
        less < before * 0.6 && more > before * 1.1,
        "{less} < {before} < {more}"
    );
    assert!(
        mean_chroma(&apply(&input, "saturation=-100")) < 1.0,
        "-100 is grey"
    );
    // +120° moves the red start of the sweep to green.
    let turned = apply(&input, "hue=120");
    let [r, g, b] = turned.get_pixel(1, 1).0;
    assert!(g > r && g > b, "red + 120° = green: {:?}", [r, g, b]);
    let [r, g, b] = apply(&input, "hue=-120").get_pixel(1, 1).0;
    assert!(b > r && b > g, "red − 120° = blue: {:?}", [r, g, b]);
}

#[test]
fn gamma_invert_sepia_tint_and_equalize_each_do_their_change() {
    let src = card(60, 20);
    let input = png_of(&src);
    let level = mean_level(&src);
    assert!(
        mean_level(&apply(&input, "gamma=2.2")) > level + 10.0,
        "gamma > 1 lightens"
    );
    assert!(
        mean_level(&apply(&input, "gamma=0.5")) < level - 10.0,
        "gamma < 1 darkens"
    );

    let inverted = apply(&input, "invert=true");
    for (a, b) in src.pixels().zip(inverted.pixels()) {
        assert_eq!(b.0, a.0.map(|c| 255 - c));
    }

    let toned = apply(&input, "saturation=-100&sepia=100");
    let warm = toned.pixels().filter(|p| p.0[0] > p.0[2] + 5).count();
    assert!(warm > toned.pixels().len() * 9 / 10, "sepia is warm: {warm}");

    let tinted = apply(&input, "tint=0080ff");
    assert!(
        tinted.pixels().all(|p| p.0[0] == 0 && p.0[2] >= p.0[1]),
        "a black-to-azure ramp has no red"
    );

    // A dim, low-contrast copy: equalize spreads it over the full range.
    let dim = RgbImage::from_fn(60, 20, |x, y| {
        let v = 80 + ((x + y) % 40) as u8;
        Rgb([v, v, v])
    });
    let equalized = apply(&png_of(&dim), "equalize=true");
    let lo = equalized.pixels().map(|p| p.0[0]).min().unwrap_or(0);
    let hi = equalized.pixels().map(|p| p.0[0]).max().unwrap_or(0);
    assert_eq!((lo, hi), (0, 255));
}

#[test]
fn kernels_and_pixelate_change_the_image_as_named() {
    // A white square on black: edges show at its border only.
    let square = RgbImage::from_fn(40, 40, |x, y| {
        let v = if (10..30).contains(&x) && (10..30).contains(&y) {
            255
        } else {
            0
        };
        Rgb([v, v, v])
    });
    let input = png_of(&square);
    let edges = apply(&input, "kernel=outline");
    assert_eq!(edges.get_pixel(20, 20).0, [0, 0, 0], "flat inside");
    assert_eq!(edges.get_pixel(2, 2).0, [0, 0, 0], "flat outside");
    assert!(edges.get_pixel(10, 20).0[0] > 200, "the border is an edge");
    let custom = apply(&input, "kernel=1,1,1,1,1,1,1,1,1");
    let boxed = apply(&input, "kernel=box");
    assert_eq!(
        custom, boxed,
        "the named box kernel is the normalised all-ones matrix"
    );
    assert!(
        custom.get_pixel(10, 10).0[0] < 255 && custom.get_pixel(9, 9).0[0] > 0,
        "softened corner"
    );

    let blocks = apply(&png_of(&card(40, 40)), "pixelate=8");
    for by in 0..5 {
        for bx in 0..5 {
            let first = blocks.get_pixel(bx * 8, by * 8);
            for (x, y) in [(7, 0), (0, 7), (7, 7), (3, 4)] {
                assert_eq!(
                    blocks.get_pixel(bx * 8 + x, by * 8 + y),
                    first,
                    "block ({bx}, {by})"
                );
            }
        }
    }
    assert_ne!(
        blocks.get_pixel(0, 0),
        blocks.get_pixel(8, 0),
        "neighbouring blocks differ"
    );
}

#[test]
fn new_fields_apply_in_the_fixed_order_and_the_json_form_takes_any_order() {
    let p = Pipeline::from_fields([
        ("pixelate", "4"),
        ("kernel", "emboss"),
        ("equalize", "true"),
        ("tint", "#FF8800"),
        ("invert", "true"),
        ("sepia", "30"),
        ("gamma", "1.5"),
        ("hue", "-20"),
        ("saturation", "10"),
        ("sharpen", "1"),
        ("blur", "1"),
        ("contrast", "5"),
    ])
    .expect("valid")
    .expect("some");
    let names: Vec<&str> = p.steps.iter().map(Step::name).collect();
    assert_eq!(
        names,
        [
            "contrast",
            "saturation",
            "hue",
            "gamma",
            "sepia",
            "invert",
            "tint",
            "equalize",
            "blur",
            "sharpen",
            "kernel",
            "pixelate"
        ]
    );
    let json = serde_json::json!({"steps": [
        {"op": "pixelate", "size": 4},
        {"op": "kernel", "kernel": [0, 0, 0, 0, 1, 0, 0, 0, 0]},
        {"op": "kernel", "value": "0,1,0,1,-4,1,0,1,0"},
        {"op": "kernel", "value": "sobel"},
        {"op": "tint", "value": "102030"},
        {"op": "hue", "degrees": 90},
        {"op": "gamma", "value": 0.8},
        {"op": "saturation", "value": -5},
        {"op": "sepia", "amount": 50},
        {"op": "invert"},
        {"op": "equalize"}
    ]});
    let p = Pipeline::from_json(&json).expect("valid JSON form");
    assert_eq!(p.steps.first().map(Step::name), Some("pixelate"));
    // The stored form reads back to the same pipeline.
    let stored = serde_json::to_value(&p).expect("serialises");
    assert_eq!(
        stored["steps"][1]["kernel"],
        serde_json::json!([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    );
    assert_eq!(stored["steps"][3]["kernel"], "sobel");
    assert_eq!(stored["steps"][4]["color"], "102030");
    assert_eq!(Pipeline::from_json(&stored).expect("round trip"), p);
}

#[test]
fn every_new_parameter_is_range_checked_and_named() {
    for (spec, param) in [
        ("saturation=101", "saturation"),
        ("saturation=-101", "saturation"),
        ("saturation=x", "saturation"),
        ("hue=181", "hue"),
        ("hue=-181", "hue"),
        ("hue=1.5", "hue"),
        ("gamma=0.09", "gamma"),
        ("gamma=10.5", "gamma"),
        ("gamma=NaN", "gamma"),
        ("gamma=inf", "gamma"),
        ("sepia=-1", "sepia"),
        ("sepia=101", "sepia"),
        ("invert=maybe", "invert"),
        ("equalize=2", "equalize"),
        ("tint=red", "tint"),
        ("tint=12345", "tint"),
        ("tint=ff8800aa", "tint"),
        ("tint=gg0000", "tint"),
        ("kernel=blurry", "kernel"),
        ("kernel=1,2,3", "kernel"),
        ("kernel=1,1,1,1,1,1,1,1", "kernel"),
        ("kernel=1,1,1,1,1,1,1,1,1,1", "kernel"),
        ("kernel=1,1,1,1,1001,1,1,1,1", "kernel"),
        ("kernel=1,1,1,1,1e3,1,1,1,1", "kernel"),
        ("kernel=1,1,1,1, 1,1,1,1,1", "kernel"),
        ("kernel=1,1,1,1,NaN,1,1,1,1", "kernel"),
        ("kernel=1,1,1,1,,1,1,1,1", "kernel"),
        ("pixelate=1", "pixelate"),
        ("pixelate=201", "pixelate"),
        ("pixelate=-4", "pixelate"),
    ] {
        let (key, value) = spec.split_once('=').expect("key=value");
        let e = Pipeline::from_fields([(key, value)]).expect_err(spec);
        assert_eq!(e.param, param, "{spec}: {e}");
        assert!(!e.message.is_empty());
    }
    for (json, param) in [
        (
            serde_json::json!({"steps": [{"op": "gamma", "value": 0}]}),
            "gamma",
        ),
        (
            serde_json::json!({"steps": [{"op": "kernel", "kernel": [1, 2, 3]}]}),
            "kernel",
        ),
        (
            serde_json::json!({"steps": [{"op": "kernel", "kernel": [1, 1, 1, 1, 5000, 1, 1, 1, 1]}]}),
            "kernel",
        ),
        (
            serde_json::json!({"steps": [{"op": "pixelate", "size": 500}]}),
            "pixelate",
        ),
        (
            serde_json::json!({"steps": [{"op": "tint", "color": "ff000080"}]}),
            "tint",
        ),
        (
            serde_json::json!({"steps": [{"op": "invert", "value": true}]}),
            "pipeline",
        ),
        (
            serde_json::json!({"steps": [{"op": "equalize", "strength": 3}]}),
            "pipeline",
        ),
    ] {
        let e = Pipeline::from_json(&json).expect_err(&json.to_string());
        assert_eq!(e.param, param, "{json}: {e}");
    }
    // The edges of every range are accepted.
    for spec in [
        "saturation=-100",
        "saturation=100",
        "hue=-180",
        "hue=180",
        "gamma=0.1",
        "gamma=10",
        "sepia=0",
        "sepia=100",
        "pixelate=2",
        "pixelate=200",
        "kernel=-1000,1000,0,0.5,1000.0,-0.000001,1,2,3",
    ] {
        let (key, value) = spec.split_once('=').expect("key=value");
        assert!(Pipeline::from_fields([(key, value)]).is_ok(), "{spec}");
    }
}

async fn upload(app: &TestApp, input: Vec<u8>, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = Form::new().part(
        "file",
        Part::bytes(input)
            .file_name("card.png")
            .mime_str("image/png")
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

async fn processed(app: &TestApp, input: Vec<u8>, fields: &[(&str, &str)]) -> (serde_json::Value, RgbImage) {
    let res = upload(app, input, fields).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_owned();
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let bytes = app
        .get(&format!("/api/images/{id}/processed"))
        .await
        .bytes()
        .await
        .expect("bytes");
    let img = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!(img.dimensions(), (40, 20));
    (done, img.to_rgb8())
}

#[tokio::test]
async fn colour_and_filter_families_work_end_to_end_and_refuse_bad_values() {
    let app = spawn_app().await;
    let src = card(40, 20);
    // Colour family: grey then tinted red, so every pixel is a shade of pure red.
    let (done, img) = processed(
        &app,
        png_of(&src),
        &[("saturation", "-100"), ("tint", "ff0000"), ("format", "png")],
    )
    .await;
    assert!(img.pixels().all(|p| p.0[1] == 0 && p.0[2] == 0), "red duotone");
    assert!(img.pixels().any(|p| p.0[0] > 100));
    let steps = &done["pipeline"]["steps"];
    assert_eq!(
        steps[0],
        serde_json::json!({"op": "saturation", "value": -100}),
        "{done}"
    );
    assert_eq!(
        steps[1],
        serde_json::json!({"op": "tint", "color": "ff0000"}),
        "{done}"
    );

    // Filter family, JSON form: a custom identity kernel then pixelate.
    let pipeline = r#"{"steps": [{"op": "kernel", "kernel": [0,0,0,0,1,0,0,0,0]}, {"op": "pixelate", "size": 20}], "format": "png"}"#;
    let (_, img) = processed(&app, png_of(&src), &[("pipeline", pipeline)]).await;
    assert_eq!(img.get_pixel(0, 0), img.get_pixel(19, 19), "one 20-px block");
    assert_ne!(
        img.get_pixel(0, 0),
        img.get_pixel(20, 0),
        "the next block differs"
    );

    for (field, value) in [
        ("hue", "200"),
        ("kernel", "1,2"),
        ("tint", "blue"),
        ("pixelate", "1"),
    ] {
        let res = upload(&app, png_of(&src), &[(field, value)]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{field}={value}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_error(&format!("{field}={value}"), &body, "invalid_parameter");
        assert_eq!(body["error"]["param"], field, "{body}");
    }
    app.stop().await;
}
