//! Issue 16's decoders next to JPEG: the W1 job (decode, fit 800×800, JPEG q85, thumbnail) on
//! the same generated photo as JPEG, HEIC, AVIF and JPEG XL, at 2 and 12 MP, in CPU ms/image —
//! the worker's cost per image for each input format. Two CPU figures: the calling thread's
//! (median), and the whole process's (mean, every thread, 10 ms ticks): libde265 decodes in a
//! worker thread of its own and dav1d in its thread pool, which the first figure does not see.
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
    println!("Input formats, W1 job (decode -> fit 800x800 -> JPEG q85 + thumbnail), CPU ms/image:");
    println!(
        "{:<16} {:>10} {:>18} {:>16} {:>10}",
        "input", "size", "thread ms (wall)", "all threads ms", "vs JPEG"
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
            let runs = iters(n);
            let before = process_cpu_ms();
            let (cpu, wall) = median_ms(runs, &mut || {
                drop(imaging::process(&bytes, &pipeline, limits).expect("processes"))
            });
            // `median_ms` runs once more to warm up.
            let all = (process_cpu_ms() - before) / (runs + 1) as f64;
            if name == "JPEG" {
                jpeg_ms = all;
            }
            println!(
                "{:<16} {:>9}K {:>18} {:>16.1} {:>9.2}x",
                format!("{name} {label}"),
                bytes.len() / 1024,
                format!("{cpu:.1} ({wall:.1})"),
                all,
                all / jpeg_ms
            );
        }
    }
}

/// CPU ms used by every thread of this process so far (`utime + stime` in /proc/self/stat,
/// which keeps the time of threads that have exited).
fn process_cpu_ms() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = text.rfind(')').map_or("", |at| &text[at + 2..]);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) * 10.0
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
