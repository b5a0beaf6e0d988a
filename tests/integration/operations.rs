//! The colour and convolution operations of the second release (saturation, hue, gamma, sepia,
//! invert, tint, equalize, kernel, pixelate), as a user meets them: through the imaging core on
//! real encoded images, through both pipeline forms with their validation, and end to end over
//! HTTP, one upload per family.

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use image_processor::imaging::{self, Limits, Pipeline, Step};
use reqwest::StatusCode;

use crate::common::*;

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
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
    // The JSON form names the field by its path (SPEC: `steps[0].width`).
    for (json, param) in [
        (
            serde_json::json!({"steps": [{"op": "gamma", "value": 0}]}),
            "steps[0].value",
        ),
        (
            serde_json::json!({"steps": [{"op": "kernel", "kernel": [1, 2, 3]}]}),
            "steps[0].kernel",
        ),
        (
            serde_json::json!({"steps": [{"op": "kernel", "kernel": [1, 1, 1, 1, 5000, 1, 1, 1, 1]}]}),
            "steps[0].kernel",
        ),
        (
            serde_json::json!({"steps": [{"op": "grayscale"}, {"op": "pixelate", "size": 500}]}),
            "steps[1].size",
        ),
        (
            serde_json::json!({"steps": [{"op": "tint", "color": "ff000080"}]}),
            "steps[0].color",
        ),
        // A value of the wrong type inside a step is named at the step: serde reads a tagged
        // step through a buffer that does not keep the field's path (the message names the type).
        (
            serde_json::json!({"steps": [{"op": "resize", "width": "wide"}]}),
            "steps[0]",
        ),
        (
            serde_json::json!({"steps": [{"op": "resize", "width": 0}]}),
            "steps[0].width",
        ),
        (
            serde_json::json!({"steps": [{"op": "invert", "value": true}]}),
            "pipeline",
        ),
        (
            serde_json::json!({"steps": [{"op": "equalize", "strength": 3}]}),
            "pipeline",
        ),
        (serde_json::json!({"steps": [], "quality": 0}), "quality"),
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

async fn processed(app: &TestApp, input: Vec<u8>, fields: &[(&str, &str)]) -> (serde_json::Value, RgbImage) {
    let res = upload_png(app, input, fields).await;
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
        let res = upload_png(&app, png_of(&src), &[(field, value)]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{field}={value}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_error(&format!("{field}={value}"), &body, "invalid_parameter");
        assert_eq!(body["error"]["param"], field, "{body}");
    }
    app.stop().await;
}

/// Left half red, right half blue, a green stripe across the top quarter.
fn halves(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| match (y < h / 4, x < w / 2) {
        (true, _) => Rgb([0, 200, 0]),
        (false, true) => Rgb([220, 0, 0]),
        (false, false) => Rgb([0, 0, 220]),
    })
}

#[test]
fn gravity_and_focus_choose_what_cover_keeps() {
    let input = png_of(&halves(400, 200));
    let red = |p: &Rgb<u8>| p.0[0] > 150 && p.0[2] < 60;
    let blue = |p: &Rgb<u8>| p.0[2] > 150 && p.0[0] < 60;
    let cover = |extra: &str| apply(&input, &format!("width=100&height=100&fit=cover{extra}"));
    let west = cover("&gravity=west");
    assert_eq!(west.dimensions(), (100, 100));
    assert!(west.pixels().skip(100 * 60).all(red), "west keeps the red half");
    assert!(
        cover("&gravity=east").pixels().skip(100 * 60).all(blue),
        "east keeps the blue half"
    );
    let centre = cover("");
    assert!(
        red(centre.get_pixel(20, 80)) && blue(centre.get_pixel(80, 80)),
        "centre keeps both"
    );
    // A focus point at the far right: the window moves as far right as the image allows.
    assert!(cover("&focus=0.95,0.5").pixels().skip(100 * 60).all(blue));
    // The focus point wins over gravity.
    assert!(cover("&gravity=west&focus=1,0.5")
        .pixels()
        .skip(100 * 60)
        .all(blue));
    // Vertical: a portrait crop to a wide box keeps the top (north) or the bottom (south).
    let tall = png_of(&halves(200, 400));
    let north = apply(&tall, "width=200&height=100&fit=cover&gravity=north");
    assert!(
        north.get_pixel(100, 10).0[1] > 150,
        "north keeps the green stripe"
    );
    let south = apply(&tall, "width=200&height=100&fit=cover&gravity=south");
    assert!(south.pixels().all(|p| p.0[1] < 60), "south leaves the stripe out");
}

#[test]
fn smart_gravity_finds_the_detailed_region() {
    // A calm backdrop with a busy, colourful patch near the left edge.
    let mut img = RgbImage::from_fn(600, 300, |x, y| Rgb([100 + ((x + y) % 3) as u8, 110, 130]));
    for y in 40..260 {
        for x in 10..140 {
            let v = if (x / 5 + y / 5) % 2 == 0 { 250 } else { 10 };
            img.put_pixel(x, y, Rgb([v, 255 - v, v / 2]));
        }
    }
    let out = apply(&png_of(&img), "width=150&height=150&fit=cover&gravity=smart");
    let busy = out.pixels().filter(|p| chroma(p) > 100).count();
    // The patch fills about a third of the best window; downscaling blurs part of its checks.
    assert!(
        busy > out.pixels().len() / 6,
        "the smart crop keeps the patch: {busy} busy pixels"
    );
    let centre = apply(&png_of(&img), "width=150&height=150&fit=cover");
    assert_eq!(
        centre.pixels().filter(|p| chroma(p) > 100).count(),
        0,
        "the centre crop misses it"
    );
}

#[test]
fn pad_letterboxes_with_the_background_or_transparency() {
    let input = png_of(&halves(400, 200));
    let out = apply(&input, "width=300&height=300&fit=pad&background=00ff00");
    assert_eq!(out.dimensions(), (300, 300));
    assert_eq!(out.get_pixel(150, 10).0, [0, 255, 0], "padding above");
    assert_eq!(out.get_pixel(150, 290).0, [0, 255, 0], "padding below");
    assert!(out.get_pixel(20, 200).0[0] > 150, "the image in the middle band");
    // Gravity places the image: north puts the band at the top.
    let top = apply(
        &input,
        "width=300&height=300&fit=pad&background=000000&gravity=north",
    );
    assert_eq!(top.get_pixel(150, 290).0, [0, 0, 0]);
    assert!(
        top.get_pixel(150, 5).0[1] > 150,
        "the green stripe is at the very top"
    );
    // No background: transparent padding in PNG, white once flattened into JPEG.
    let pipeline = Pipeline::from_fields([
        ("width", "300"),
        ("height", "300"),
        ("fit", "pad"),
        ("format", "png"),
    ])
    .expect("valid")
    .expect("some");
    let out = imaging::process(&input, &pipeline, &LIMITS).expect("processes");
    let rgba = image::load_from_memory(&out.bytes).expect("decodes").to_rgba8();
    assert_eq!(rgba.get_pixel(150, 10).0[3], 0, "transparent padding");
    assert_eq!(rgba.get_pixel(20, 200).0[3], 255, "opaque image");
    let as_jpeg = imaging::process(
        &input,
        &Pipeline::from_fields([
            ("width", "300"),
            ("height", "300"),
            ("fit", "pad"),
            ("format", "jpeg"),
        ])
        .expect("valid")
        .expect("some"),
        &LIMITS,
    )
    .expect("processes");
    let rgb = image::load_from_memory(&as_jpeg.bytes)
        .expect("decodes")
        .to_rgb8();
    assert!(
        rgb.get_pixel(150, 10).0.iter().all(|&c| c > 245),
        "white padding in JPEG"
    );
}

#[test]
fn background_flattens_transparency_in_every_format() {
    let rgba = image::RgbaImage::from_fn(20, 20, |x, _| {
        image::Rgba([255, 0, 0, if x < 10 { 0 } else { 255 }])
    });
    let input = encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png);
    let out = apply(&input, "background=0000ff");
    assert_eq!(
        out.get_pixel(2, 2).0,
        [0, 0, 255],
        "transparent part shows the background"
    );
    assert_eq!(out.get_pixel(15, 2).0, [255, 0, 0], "opaque part stays");
    let pipeline = Pipeline::from_fields([("background", "0000ff"), ("format", "png")])
        .expect("valid")
        .expect("some");
    let png = imaging::process(&input, &pipeline, &LIMITS).expect("processes");
    let img = image::load_from_memory(&png.bytes).expect("decodes");
    assert!(!img.color().has_alpha(), "an opaque background leaves no alpha");
}

#[test]
fn geometry_parameters_are_checked_with_their_rules() {
    for (fields, param, hint) in [
        (
            &[("fit", "pad"), ("width", "10")][..],
            "fit",
            "needs both width and height",
        ),
        (&[("gravity", "north")][..], "gravity", "needs width or height"),
        (&[("focus", "0.5,0.5")][..], "focus", "needs width or height"),
        (
            &[("gravity", "up"), ("width", "10")][..],
            "gravity",
            "center, north",
        ),
        (
            &[("gravity", "north"), ("width", "10")][..],
            "gravity",
            "applies to fit=",
        ),
        (
            &[
                ("gravity", "smart"),
                ("width", "10"),
                ("height", "10"),
                ("fit", "pad"),
            ][..],
            "gravity",
            "applies to fit=",
        ),
        (
            &[
                ("focus", "0.5,0.5"),
                ("width", "10"),
                ("height", "10"),
                ("fit", "pad"),
            ][..],
            "focus",
            "applies to fit=",
        ),
        (&[("focus", "1.5,0.5"), ("width", "10")][..], "focus", "fx,fy"),
        (&[("focus", "0.5"), ("width", "10")][..], "focus", "fx,fy"),
        (&[("focus", "0.5, 0.5"), ("width", "10")][..], "focus", "fx,fy"),
        (&[("focus", ".5,.5"), ("width", "10")][..], "focus", "fx,fy"),
        (&[("background", "fff")][..], "background", "RRGGBB"),
        (&[("background", "ff00ff0")][..], "background", "RRGGBB"),
        (&[("fit", "stretch"), ("width", "10")][..], "fit", "pad"),
    ] {
        let e = Pipeline::from_fields(fields.iter().copied()).expect_err(&format!("{fields:?}"));
        assert_eq!(e.param, param, "{fields:?}: {e}");
        assert!(e.message.contains(hint), "{fields:?}: {e}");
    }
    for json in [
        serde_json::json!({"steps": [{"op": "resize", "width": 10, "height": 10, "fit": "cover", "focus": [2, 0]}]}),
        serde_json::json!({"steps": [{"op": "resize", "width": 10, "fit": "contain", "background": "ffffff"}]}),
        serde_json::json!({"steps": [{"op": "resize", "width": 10, "fit": "fill", "gravity": "east"}]}),
    ] {
        assert!(Pipeline::from_json(&json).is_err(), "{json}");
    }
    // Accepted: the edges, both spellings of the centre, a JSON focus pair, `#` on colours.
    for fields in [
        &[
            ("focus", "0,1"),
            ("width", "10"),
            ("height", "10"),
            ("fit", "cover"),
        ][..],
        &[
            ("focus", "1.000000,0.123456"),
            ("width", "10"),
            ("height", "10"),
            ("fit", "cover"),
        ][..],
        &[("gravity", "center"), ("width", "10")][..],
        &[
            ("gravity", "southwest"),
            ("width", "10"),
            ("height", "10"),
            ("fit", "pad"),
        ][..],
        &[("background", "#FFEEDDCC")][..],
    ] {
        assert!(
            Pipeline::from_fields(fields.iter().copied()).is_ok(),
            "{fields:?}"
        );
    }
    let json = serde_json::json!({"steps": [{"op": "resize", "width": 10, "height": 10, "fit": "cover",
        "gravity": "smart", "focus": "0.25,0.75"}], "background": "ffffff"});
    let p = Pipeline::from_json(&json).expect("valid");
    let stored = serde_json::to_value(&p).expect("serialises");
    assert_eq!(stored["steps"][0]["focus"], serde_json::json!([0.25, 0.75]));
    assert_eq!(stored["steps"][0]["gravity"], "smart");
    assert_eq!(stored["background"], "ffffff");
    assert_eq!(Pipeline::from_json(&stored).expect("round trip"), p);
}

#[tokio::test]
async fn geometry_family_works_end_to_end() {
    let app = spawn_app().await;
    let res = upload_png(
        &app,
        png_of(&halves(400, 200)),
        &[
            ("width", "40"),
            ("height", "20"),
            ("fit", "cover"),
            ("gravity", "east"),
            ("format", "png"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_owned();
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["pipeline"]["steps"][0]["gravity"], "east", "{done}");
    let (_, padded) = processed(
        &app,
        png_of(&halves(200, 400)),
        &[
            ("width", "40"),
            ("height", "20"),
            ("fit", "pad"),
            ("background", "ffffff"),
            ("format", "png"),
        ],
    )
    .await;
    assert_eq!(padded.get_pixel(2, 10).0, [255, 255, 255], "white side bars");
    let res = upload_png(
        &app,
        png_of(&halves(40, 20)),
        &[("focus", "0.5,0.5"), ("width", "10")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["error"]["param"], "focus", "{body}");
    app.stop().await;
}

#[test]
fn watermark_fields_have_defaults_rules_and_ranges() {
    let id = uuid::Uuid::new_v4().to_string();
    let p = Pipeline::from_fields([("watermark", id.as_str())])
        .expect("valid")
        .expect("some");
    assert_eq!(
        serde_json::to_value(&p.steps[0]).expect("serialises"),
        serde_json::json!({"op": "watermark", "image": id, "gravity": "southeast", "opacity": 50, "scale": 20})
    );
    assert_eq!(p.watermark_ids().len(), 1);
    for (fields, param) in [
        (vec![("watermark", "not-a-uuid")], "watermark"),
        (vec![("watermark_opacity", "10")], "watermark_opacity"),
        (vec![("watermark_scale", "10")], "watermark_scale"),
        (vec![("watermark_gravity", "north")], "watermark_gravity"),
        (
            vec![("watermark", id.as_str()), ("watermark_opacity", "101")],
            "watermark_opacity",
        ),
        (
            vec![("watermark", id.as_str()), ("watermark_scale", "0")],
            "watermark_scale",
        ),
        (
            vec![("watermark", id.as_str()), ("watermark_scale", "101")],
            "watermark_scale",
        ),
        (
            vec![("watermark", id.as_str()), ("watermark_gravity", "smart")],
            "watermark_gravity",
        ),
    ] {
        let e = Pipeline::from_fields(fields.clone()).expect_err(&format!("{fields:?}"));
        assert_eq!(e.param, param, "{fields:?}: {e}");
    }
    // The JSON form repeats it, up to four times.
    let step =
        |n: u128| serde_json::json!({"op": "watermark", "image": uuid::Uuid::from_u128(n), "opacity": 80});
    let four = serde_json::json!({"steps": [step(1), step(2), step(3), step(1)]});
    let ids = Pipeline::from_json(&four).expect("four steps").watermark_ids();
    assert_eq!(ids.len(), 3, "each image once");
    let five = serde_json::json!({"steps": [step(1), step(2), step(3), step(4), step(5)]});
    assert_eq!(Pipeline::from_json(&five).expect_err("five").param, "watermark");
    // Steps are counted, not images: one image drawn five times is five decodes.
    let same = serde_json::json!({"steps": [step(1), step(1), step(1), step(1), step(1)]});
    assert_eq!(
        Pipeline::from_json(&same).expect_err("five steps").param,
        "watermark"
    );
    // And no pipeline has more than 32 steps.
    let long = serde_json::json!({"steps": vec![serde_json::json!({"op": "invert"}); 33]});
    let e = Pipeline::from_json(&long).expect_err("33 steps");
    assert!(e.message.contains("32"), "{e}");
}

#[test]
fn process_with_draws_the_overlay_and_a_missing_one_fails_the_job() {
    let logo_id = uuid::Uuid::new_v4();
    let logo = png_of(&RgbImage::from_pixel(8, 8, Rgb([0, 0, 0])));
    let base = png_of(&RgbImage::from_pixel(100, 100, Rgb([255, 255, 255])));
    let pipeline = Pipeline::from_fields([
        ("watermark", logo_id.to_string().as_str()),
        ("watermark_gravity", "northwest"),
        ("watermark_opacity", "100"),
        ("watermark_scale", "10"),
        ("format", "png"),
    ])
    .expect("valid")
    .expect("some");
    let overlays = imaging::Overlays::from([(logo_id, logo)]);
    let out = imaging::process_with(&base, &pipeline, &LIMITS, &overlays).expect("processes");
    let img = image::load_from_memory(&out.bytes).expect("decodes").to_rgb8();
    assert_eq!(
        img.get_pixel(5, 5).0,
        [0, 0, 0],
        "a 10-px black mark 2 px from the corner"
    );
    assert_eq!(img.get_pixel(13, 5).0, [255, 255, 255]);
    assert_eq!(img.get_pixel(1, 1).0, [255, 255, 255], "the margin");
    let err = imaging::process(&base, &pipeline, &LIMITS).expect_err("no overlay");
    assert_eq!(err.code(), "invalid_pipeline");
    assert!(err.to_string().contains(&logo_id.to_string()), "{err}");
}

#[tokio::test]
async fn watermark_draws_a_completed_image_and_refuses_others() {
    let app = spawn_app().await;
    // The logo: a small red square, processed as PNG so its output keeps the colour exactly.
    let res = upload_png(
        &app,
        png_of(&RgbImage::from_pixel(16, 16, Rgb([255, 0, 0]))),
        &[("format", "png")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let logo: serde_json::Value = res.json().await.expect("json");
    let logo_id = logo["id"].as_str().expect("id").to_owned();
    assert_eq!(app.wait_done(&logo_id).await["status"], "completed");

    let white = RgbImage::from_pixel(40, 20, Rgb([255, 255, 255]));
    let (done, img) = processed(
        &app,
        png_of(&white),
        &[
            ("watermark", logo_id.as_str()),
            ("watermark_opacity", "100"),
            ("watermark_scale", "25"),
            ("format", "png"),
        ],
    )
    .await;
    assert_eq!(done["pipeline"]["steps"][0]["op"], "watermark", "{done}");
    // 25 % of 40 = 10 px, bottom right, margin 2 % of 20 = 0.4 -> 0 px.
    assert_eq!(img.get_pixel(35, 15).0, [255, 0, 0], "the logo in the corner");
    assert_eq!(img.get_pixel(5, 5).0, [255, 255, 255], "the rest untouched");

    // Unknown, and not yet completed: 400 naming `watermark`, nothing stored.
    let unknown = uuid::Uuid::new_v4().to_string();
    let pending = app
        .db()
        .await
        .query_one(
            "insert into processed_images (original_data, status) values ('x', 'failed') returning id::text",
            &[],
        )
        .await
        .expect("insert")
        .get::<_, String>(0);
    for id in [unknown.as_str(), pending.as_str()] {
        let res = upload_png(&app, png_of(&white), &[("watermark", id)]).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{id}");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["error"]["param"], "watermark", "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap_or("").contains(id),
            "{body}"
        );
    }

    // A job whose watermark was deleted after the upload fails, saying which and why.
    let db = app.db().await;
    let pipeline = serde_json::json!({"steps": [{"op": "watermark", "image": logo_id}]});
    db.execute(
        "delete from processed_images where id = $1::text::uuid",
        &[&logo_id],
    )
    .await
    .expect("delete the logo");
    let id: uuid::Uuid = db
        .query_one(
            "insert into processed_images (original_data, pipeline) values ($1, $2) returning id",
            &[&png_of(&white), &pipeline],
        )
        .await
        .expect("insert")
        .get(0);
    let failed = app.wait_done(&id.to_string()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "invalid_pipeline", "{failed}");
    assert!(
        failed["error"].as_str().unwrap_or("").contains(&logo_id),
        "{failed}"
    );
    app.stop().await;
}
