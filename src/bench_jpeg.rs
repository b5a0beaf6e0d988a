//! `image-processor bench-jpeg` (hidden): times the service's JPEG path on a fixed photo, so
//! `scripts/check-image` can compare the container image's build with the host's. A build
//! whose JPEG codec lost its SIMD paths (no `nasm` in the builder) is several times slower.

use std::io::Cursor;
use std::time::Instant;

use anyhow::Context;
use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;

use crate::imaging::{self, Limits, Pipeline};

/// The fixed photo: 6 MP, the size of a phone picture scaled for the web.
const WIDTH: u32 = 3000;
const HEIGHT: u32 = 2000;

/// Runs `iterations` full-size decode + JPEG q85 encode jobs through [`imaging::process`]
/// and prints one JSON line with the best and median milliseconds.
pub fn run(iterations: u32) -> anyhow::Result<()> {
    let photo = photo_jpeg().context("encoding the fixed photo")?;
    let pipeline = Pipeline::from_json(&serde_json::json!({"steps": [], "format": "jpeg", "quality": 85}))
        .context("the benchmark pipeline")?;
    let limits = Limits {
        max_pixels: u64::from(WIDTH) * u64::from(HEIGHT),
        jpeg_optimize_coding: false,
        max_frames: 1000,
    };
    let mut times = Vec::new();
    for _ in 0..iterations.max(1) {
        let start = Instant::now();
        let out = imaging::process(&photo, &pipeline, &limits).context("processing the fixed photo")?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            out.width == WIDTH && out.height == HEIGHT,
            "unexpected output size"
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "photo": format!("{WIDTH}x{HEIGHT}"),
            "input_bytes": photo.len(),
            "iterations": times.len(),
            "best_ms": round(times[0]),
            "median_ms": round(times[times.len() / 2]),
        })
    );
    Ok(())
}

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// A deterministic "photo" (smooth gradients, texture, edges and sensor-like noise, about as
/// costly to code as a camera JPEG), encoded by the pure-Rust encoder so that the input bytes
/// do not depend on the build being measured.
fn photo_jpeg() -> Result<Vec<u8>, image::ImageError> {
    let mut seed = 0x1234_5678u32;
    let img = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let (fx, fy) = (x as f32 / WIDTH as f32, y as f32 / HEIGHT as f32);
        let base = [
            120.0 + 80.0 * (fx * 6.0 + fy * 3.0).sin() + 30.0 * (fx * 37.0).sin() * (fy * 23.0).cos(),
            110.0 + 70.0 * (fy * 5.0 - fx * 2.0).cos() + 25.0 * (fx * 51.0 + fy * 13.0).sin(),
            100.0 + 60.0 * (fx * 28.0 * fy).sin() + 20.0 * ((fx - 0.5) * (fy - 0.5) * 300.0).sin(),
        ];
        let edge = if ((x / 97) + (y / 131)) % 5 == 0 {
            40.0
        } else {
            0.0
        };
        let noise = (seed % 25) as f32 - 12.0;
        image::Rgb(base.map(|b| (b + edge + noise).clamp(0.0, 255.0) as u8))
    });
    let mut out = Cursor::new(Vec::new());
    img.write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))?;
    Ok(out.into_inner())
}
