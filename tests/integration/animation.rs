//! Animations kept (issue 16): every frame of a GIF, WebP or APNG through the pipeline, with
//! its delay and the loop count, out as animated GIF or WebP; `frames=first`; `MAX_FRAMES`.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, RgbaImage};
use image_processor::config::Role;
use image_processor::imaging::{self, ImagingError, Limits, Pipeline};
use reqwest::StatusCode;

use crate::common::*;

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

const COLOURS: [[u8; 3]; 3] = [[220, 30, 30], [30, 200, 40], [30, 40, 220]];
const DELAYS_MS: [u16; 3] = [100, 200, 300];

/// A 60×45 GIF of three flat frames (red, green, blue), 100/200/300 ms, with `repeat`.
fn three_frame_gif(repeat: gif::Repeat) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let palette: Vec<u8> = COLOURS.iter().flatten().copied().collect();
        let mut enc = gif::Encoder::new(&mut out, 60, 45, &palette).expect("gif");
        enc.set_repeat(repeat).expect("repeat");
        for (i, delay) in DELAYS_MS.iter().enumerate() {
            let frame = gif::Frame {
                width: 60,
                height: 45,
                delay: delay / 10,
                buffer: std::borrow::Cow::Owned(vec![i as u8; 60 * 45]),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).expect("frame");
        }
    }
    out
}

/// The same three frames as an APNG that plays twice.
fn three_frame_apng() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 60, 45);
        enc.set_color(png::ColorType::Rgb);
        enc.set_animated(3, 2).expect("animated");
        let mut writer = enc.write_header().expect("header");
        for (colour, delay) in COLOURS.iter().zip(DELAYS_MS) {
            writer.set_frame_delay(delay, 1000).expect("delay");
            let data: Vec<u8> = colour.iter().copied().cycle().take(60 * 45 * 3).collect();
            writer.write_image_data(&data).expect("frame");
        }
        writer.finish().expect("finish");
    }
    out
}

fn pipeline(spec: &str) -> Pipeline {
    let pairs: Vec<(&str, &str)> = spec.split('&').filter_map(|kv| kv.split_once('=')).collect();
    Pipeline::from_fields(pairs).expect("valid").unwrap_or_default()
}

/// (frame, delay in ms) of an animated GIF or WebP.
fn frames_of(bytes: &[u8]) -> Vec<(RgbaImage, u32)> {
    let frames = if bytes.starts_with(b"GIF") {
        GifDecoder::new(Cursor::new(bytes))
            .expect("gif")
            .into_frames()
            .collect_frames()
    } else {
        WebPDecoder::new(Cursor::new(bytes))
            .expect("webp")
            .into_frames()
            .collect_frames()
    };
    frames
        .expect("frames")
        .into_iter()
        .map(|f| {
            let (num, den) = f.delay().numer_denom_ms();
            (f.into_buffer(), num / den.max(1))
        })
        .collect()
}

fn assert_near(pixel: &image::Rgba<u8>, rgb: [u8; 3], tolerance: u8, context: &str) {
    for c in 0..3 {
        assert!(
            pixel[c].abs_diff(rgb[c]) <= tolerance,
            "{context}: {pixel:?} is not near {rgb:?}"
        );
    }
}

#[test]
fn an_animated_gif_keeps_every_frame_its_delays_and_its_loop() {
    let input = three_frame_gif(gif::Repeat::Infinite);
    let out = imaging::process(&input, &pipeline("width=20"), &LIMITS).expect("processes");
    assert_eq!((out.width, out.height, out.frames), (20, 15, 3));
    assert_eq!(out.input.frames, 3);
    let frames = frames_of(&out.bytes);
    assert_eq!(frames.len(), 3);
    for (i, (frame, delay)) in frames.iter().enumerate() {
        assert_eq!(frame.dimensions(), (20, 15), "frame {i}");
        assert_near(frame.get_pixel(10, 7), COLOURS[i], 8, &format!("frame {i}"));
        assert_eq!(*delay, u32::from(DELAYS_MS[i]), "frame {i}");
    }
    let decoder = gif::DecodeOptions::new()
        .read_info(Cursor::new(&out.bytes))
        .expect("gif");
    let mut decoder = decoder;
    let _ = decoder.next_frame_info();
    assert_eq!(decoder.repeat(), gif::Repeat::Infinite);
    // The thumbnail and the facts come from the first frame.
    assert_eq!(
        out.facts.as_ref().map(|f| f.dominant_color.as_str()),
        Some("#dc1e1e")
    );
}

#[test]
fn a_gif_becomes_an_animated_webp_with_colour_operations_on_every_frame() {
    let input = three_frame_gif(gif::Repeat::Finite(2));
    let out = imaging::process(&input, &pipeline("width=30&format=webp&grayscale=true"), &LIMITS)
        .expect("processes");
    assert_eq!(out.frames, 3);
    let frames = frames_of(&out.bytes);
    assert_eq!(frames.len(), 3);
    for (i, (frame, delay)) in frames.iter().enumerate() {
        let p = frame.get_pixel(15, 11);
        assert!(
            p[0].abs_diff(p[1]) <= 6 && p[1].abs_diff(p[2]) <= 6,
            "frame {i} is grey: {p:?}"
        );
        assert_eq!(*delay, u32::from(DELAYS_MS[i]), "frame {i}");
    }
    // NETSCAPE 2 (two repetitions after the first play) is three plays in WebP's terms.
    let loops = image_webp::WebPDecoder::new(Cursor::new(&out.bytes))
        .expect("webp")
        .loop_count();
    assert_eq!(
        loops,
        image_webp::LoopCount::Times(std::num::NonZeroU16::new(3).expect("3"))
    );
}

#[test]
fn an_apng_animates_into_gif_or_webp_and_stays_still_as_png() {
    let input = three_frame_apng();
    let probe = imaging::probe(&input, &LIMITS).expect("probe");
    assert_eq!(probe.frames, 3);
    let gif = imaging::process(&input, &pipeline("width=30&format=gif"), &LIMITS).expect("gif");
    let frames = frames_of(&gif.bytes);
    assert_eq!(frames.len(), 3);
    assert_near(frames[2].0.get_pixel(5, 5), COLOURS[2], 8, "last frame");
    let decoder = gif::DecodeOptions::new()
        .read_info(Cursor::new(&gif.bytes))
        .expect("gif");
    let mut decoder = decoder;
    let _ = decoder.next_frame_info();
    assert_eq!(decoder.repeat(), gif::Repeat::Finite(1), "two plays");
    // PNG output cannot animate (we write no APNG): the first frame.
    let png = imaging::process(&input, &pipeline("width=30"), &LIMITS).expect("png");
    assert_eq!(png.frames, 1);
    assert_eq!(png.format, imaging::Format::Png);
}

#[test]
fn frames_first_takes_only_the_first_frame() {
    let input = three_frame_gif(gif::Repeat::Infinite);
    let out = imaging::process(&input, &pipeline("width=20&frames=first"), &LIMITS).expect("processes");
    assert_eq!(out.frames, 1);
    assert_eq!(frames_of(&out.bytes).len(), 1);
    let json = serde_json::json!({"steps": [], "frames": "first"});
    assert_eq!(
        Pipeline::from_json(&json).expect("json").frames,
        Some(imaging::Frames::First)
    );
    let bad = Pipeline::from_fields([("frames", "some")]).expect_err("bad");
    assert_eq!(bad.param, "frames");
}

#[test]
fn max_frames_refuses_longer_animations_at_the_header() {
    let input = three_frame_gif(gif::Repeat::Infinite);
    let two = Limits {
        max_frames: 2,
        ..LIMITS
    };
    let err = imaging::probe(&input, &two).expect_err("three frames over two");
    assert!(
        matches!(err, ImagingError::TooManyFrames { limit: 2, .. }),
        "{err}"
    );
    assert_eq!(err.code(), "image_too_large");
    // MAX_PIXELS still counts every frame: 3 × 60 × 45 = 8 100 pixels.
    let small = Limits {
        max_pixels: 8_000,
        ..LIMITS
    };
    assert!(matches!(
        imaging::probe(&input, &small),
        Err(ImagingError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn an_animated_upload_round_trips_through_the_api_and_max_frames_answers_422() {
    let app = spawn_app_with(Role::Run, &[("max-frames", "3")]).await;
    let res = upload_png(&app, three_frame_gif(gif::Repeat::Infinite), &[("width", "20")]).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["original"]["frames"], 3);
    let id = body["id"].as_str().expect("id").to_owned();
    let done = app.wait_done(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"]["frames"], 3, "{done}");
    assert_eq!(done["processed"]["content_type"], "image/gif");
    let bytes = app
        .get(&format!("/api/images/{id}/processed"))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(frames_of(&bytes).len(), 3);

    let mut four = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut four, 8, 8, &[0, 0, 0, 255, 255, 255]).expect("gif");
        for i in 0..4u8 {
            let frame = gif::Frame {
                width: 8,
                height: 8,
                buffer: std::borrow::Cow::Owned(vec![i % 2; 64]),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).expect("frame");
        }
    }
    let res = upload_png(&app, four, &[]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_error("four frames over MAX_FRAMES=3", &body, "image_too_large");
    app.stop().await;
}
