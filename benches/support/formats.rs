//! Issue 16's decoders next to JPEG: the W1 job (decode, fit 800×800, JPEG q85, thumbnail) on
//! the same generated photo as JPEG, HEIC, AVIF and JPEG XL, at 2 and 12 MP, in CPU ms/image on
//! one thread — the worker's cost per image for each input format.
//!
//! Inputs are made here: JPEG with MozJPEG (q90), AVIF with the `image` crate's rav1e encoder
//! (speed 10, q80); HEIC with Debian's `heif-enc` (x265, q80; `libheif-examples`) and JPEG XL
//! with Debian's `cjxl` (distance 1, effort 7; `libjxl-tools`) when they are installed. Debian's
//! heif-enc is run against Debian's libheif (`LD_LIBRARY_PATH`), which has the x265 encoder; the
//! libheif in /usr/local that the service links has decoders only.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use image::codecs::avif::AvifEncoder;
use image::{DynamicImage, ImageFormat, RgbImage};
use image_processor::imaging::{self, Format, Limits, Pipeline};

/// The bench's timer: median (CPU ms, wall ms) of running the closure `n` times.
pub type MedianMs<'a> = &'a mut dyn FnMut(usize, &mut dyn FnMut()) -> (f64, f64);

/// Debian's libheif, with its encoders, for heif-enc.
const DEBIAN_LIBS: &str = "/usr/lib/x86_64-linux-gnu";

pub fn decoders(
    dir: &Path,
    photo: impl Fn(u32, u32) -> RgbImage,
    jpeg: impl Fn(&RgbImage) -> Vec<u8>,
    median_ms: MedianMs<'_>,
    iters: impl Fn(usize) -> usize,
    limits: &Limits,
) {
    println!();
    println!("Input formats, W1 job (decode -> fit 800x800 -> JPEG q85 + thumbnail), CPU ms/image (wall):");
    println!(
        "{:<16} {:>10} {:>18} {:>18}",
        "input", "size", "ms/image", "vs JPEG"
    );
    let pipeline = Pipeline::from_fields([("width", "800"), ("height", "800"), ("format", "jpeg")])
        .expect("valid")
        .expect("non-empty");
    for (label, w, h, n) in [("2 MP", 1600, 1200, 9), ("12 MP", 4000, 3000, 5)] {
        let img = photo(w, h);
        let png = dir.join(format!("formats-{w}x{h}.png"));
        DynamicImage::ImageRgb8(img.clone())
            .save_with_format(&png, ImageFormat::Png)
            .expect("write PNG");
        let inputs: Vec<(&str, Option<Vec<u8>>)> = vec![
            ("JPEG", Some(jpeg(&img))),
            ("HEIC", heif_enc(&png, &dir.join(format!("formats-{w}x{h}.heic")))),
            ("AVIF", Some(avif(&img))),
            ("JPEG XL", cjxl(&png, &dir.join(format!("formats-{w}x{h}.jxl")))),
        ];
        let mut jpeg_ms = f64::NAN;
        for (name, bytes) in inputs {
            let Some(bytes) = bytes else {
                println!(
                    "{:<16} {:>10} {:>18}",
                    format!("{name} {label}"),
                    "-",
                    "(encoder not installed)"
                );
                continue;
            };
            let probe = imaging::probe(&bytes, limits).expect("probes");
            assert_ne!(probe.format, Format::Png, "{name} input was not made");
            let (cpu, wall) = median_ms(iters(n), &mut || {
                drop(imaging::process(&bytes, &pipeline, limits).expect("processes"))
            });
            if name == "JPEG" {
                jpeg_ms = cpu;
            }
            println!(
                "{:<16} {:>9}K {:>18} {:>17.2}x",
                format!("{name} {label}"),
                bytes.len() / 1024,
                format!("{cpu:.1} ({wall:.1})"),
                cpu / jpeg_ms
            );
        }
    }
}

fn avif(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img.clone())
        .write_with_encoder(AvifEncoder::new_with_speed_quality(&mut out, 10, 80))
        .expect("AVIF encodes");
    out.into_inner()
}

fn heif_enc(png: &Path, out: &Path) -> Option<Vec<u8>> {
    let status = Command::new("heif-enc")
        .env("LD_LIBRARY_PATH", DEBIAN_LIBS)
        .args(["-q", "80", "-o"])
        .args([out, png])
        .output()
        .ok()?;
    status.status.success().then(|| std::fs::read(out).ok())?
}

fn cjxl(png: &Path, out: &Path) -> Option<Vec<u8>> {
    let status = Command::new("cjxl")
        .args([png, out])
        .args(["-d", "1", "-e", "7"])
        .output()
        .ok()?;
    status.status.success().then(|| std::fs::read(out).ok())?
}
