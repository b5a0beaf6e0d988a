//! `cargo bench --bench imaging`: single-threaded ms/image (medians) for the imaging core.
//!
//! W1 — decode a JPEG photo, auto-orient, fit within 800×800 with Lanczos3, encode JPEG q85 —
//! on generated photo-like JPEGs (2, 12 and 24 MP, baseline and progressive), through
//! `imaging::process` (the fast path: DCT-domain shrink + SIMD resize; it also makes the
//! thumbnail) and through the plain `image` crate path. When `vipsthumbnail` is installed
//! (Debian `libvips-tools`), the same files go through it with `VIPS_CONCURRENCY=1`, and the
//! ratio ours/libvips is printed. Then one line per operation family and output format.
//!
//! Then the same job on HEIC, AVIF and JPEG XL inputs next to JPEG (`support/formats.rs`).
//!
//! `BENCH_QUICK=1` runs fewer iterations; `BENCH_FORMATS_ONLY=1` runs only the input formats.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader};
use image_processor::imaging::{self, Limits, Pipeline};

#[path = "support/formats.rs"]
mod formats;
#[path = "support/photo.rs"]
mod photo;
use photo::{encode_jpeg, photo};

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

/// The path a straightforward service takes with the `image` crate alone.
fn plain_w1(bytes: &[u8]) -> Vec<u8> {
    let mut decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .expect("format")
        .into_decoder()
        .expect("decoder");
    let orientation = decoder.orientation().expect("orientation");
    let mut img = DynamicImage::from_decoder(decoder).expect("decodes");
    img.apply_orientation(orientation);
    let small = img.resize(800, 800, FilterType::Lanczos3);
    let mut out = Vec::new();
    small
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 85))
        .expect("encodes");
    out
}

fn fast_w1(bytes: &[u8]) -> Vec<u8> {
    imaging::process(bytes, &Pipeline::default(), &LIMITS)
        .expect("processes")
        .bytes
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat), so a busy machine slows the
/// wall clock but not this measure.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU seconds used by waited-for child processes (`cutime + cstime` in /proc/self/stat).
fn children_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(13)?.parse::<f64>().ok()? + fields.get(14)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Median over `iterations` runs (after one warm-up) of (CPU ms, wall ms); CPU falls back to
/// wall where schedstat is missing.
fn median_ms(iterations: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..iterations {
        let (c, t) = (thread_cpu_ns(), Instant::now());
        f();
        let w = t.elapsed().as_secs_f64() * 1e3;
        wall.push(w);
        cpu.push(match (c, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e6,
            _ => w,
        });
    }
    (median(cpu), median(wall))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ms/image for `vipsthumbnail` over `copies` copies of `file` in one invocation (so process
/// start-up is spread out), median of three runs as (CPU ms, wall ms); `None` when libvips is not
/// installed. CPU time counts every thread vips uses.
fn vips_ms(file: &Path, copies: usize) -> Option<(f64, f64)> {
    let dir = file
        .parent()?
        .join(format!("vips-{}", file.file_stem()?.to_string_lossy()));
    std::fs::create_dir_all(&dir).ok()?;
    let inputs: Vec<_> = (0..copies)
        .map(|i| {
            let p = dir.join(format!("{i}.jpg"));
            std::fs::copy(file, &p).map(|_| p)
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..3 {
        let (c, t) = (children_cpu_s(), Instant::now());
        let status = Command::new("vipsthumbnail")
            .env("VIPS_CONCURRENCY", "1")
            .args(["--size", "800x800", "-o", "%s-thumb.jpg[Q=85]"])
            .args(&inputs)
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        let w = t.elapsed().as_secs_f64() * 1e3 / copies as f64;
        wall.push(w);
        cpu.push(match (c, children_cpu_s()) {
            (Some(a), Some(b)) => (b - a) * 1e3 / copies as f64,
            _ => w,
        });
    }
    Some((median(cpu), median(wall)))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported by this harness.
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let iters = |n: usize| if quick { n.div_ceil(3) } else { n };
    let dir = std::env::temp_dir().join("image-processor-bench");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let have_vips = Command::new("vipsthumbnail").arg("--version").output().is_ok();

    if std::env::var_os("BENCH_FORMATS_ONLY").is_some() {
        let jpeg = |img: &image::RgbImage| encode_jpeg(img, 90.0, false);
        formats::decoders(
            &dir,
            |w, h| photo(w, h, 0),
            jpeg,
            &mut |n, f| median_ms(n, f),
            iters,
            &LIMITS,
        );
        return;
    }
    println!("W1: JPEG -> auto-orient -> fit 800x800 (Lanczos3) -> JPEG q85, one thread.");
    println!("Median CPU ms/image (on-CPU time, robust to a busy machine); wall-clock ms in brackets.");
    println!(
        "{:<20} {:>16} {:>16} {:>16} {:>11} {:>13}",
        "input", "fast", "plain image", "libvips", "plain/fast", "fast/libvips"
    );
    let corpus = [
        ("2MP 1600x1200", 1600, 1200, false, 15),
        ("12MP 4000x3000", 4000, 3000, false, 9),
        ("12MP progressive", 4000, 3000, true, 9),
        ("24MP 6000x4000", 6000, 4000, false, 5),
    ];
    let mut totals = [0.0f64; 3];
    let both = |(cpu, wall): (f64, f64)| format!("{cpu:.1} ({wall:.1})");
    for (name, w, h, progressive, n) in corpus {
        let bytes = encode_jpeg(&photo(w, h, 0), 90.0, progressive);
        let file = dir.join(format!("{w}x{h}{}.jpg", if progressive { "p" } else { "" }));
        std::fs::write(&file, &bytes).expect("write corpus file");
        let fast = median_ms(iters(n), || drop(fast_w1(&bytes)));
        let plain = median_ms(iters(n.div_ceil(2)), || drop(plain_w1(&bytes)));
        let vips = if have_vips { vips_ms(&file, iters(n)) } else { None };
        totals[0] += fast.0;
        totals[1] += plain.0;
        totals[2] += vips.map_or(f64::NAN, |v| v.0);
        println!(
            "{name:<20} {:>16} {:>16} {:>16} {:>10.2}x {:>13}",
            both(fast),
            both(plain),
            vips.map_or("-".into(), both),
            plain.0 / fast.0,
            vips.map_or("-".into(), |v| format!("{:.2}", fast.0 / v.0)),
        );
    }
    println!(
        "{:<20} {:>16.1} {:>16.1} {:>16.1} {:>10.2}x {:>13.2}",
        "mean (CPU)",
        totals[0] / 4.0,
        totals[1] / 4.0,
        totals[2] / 4.0,
        totals[1] / totals[0],
        totals[0] / totals[2]
    );
    if !have_vips {
        println!("(vipsthumbnail not found: `apt-get install -y libvips-tools` to compare with libvips)");
    }
    formats::decoders(
        &dir,
        |w, h| photo(w, h, 0),
        |img| encode_jpeg(img, 90.0, false),
        &mut |n, f| median_ms(n, f),
        iters,
        &LIMITS,
    );

    println!();
    println!("Operation families on a 2 MP JPEG input, after fit 800x800 unless noted (CPU ms/image, wall in brackets):");
    let two_mp = encode_jpeg(&photo(1600, 1200, 0), 90.0, false);
    let families = [
        ("decode+fit+encode only", "width=800&height=800"),
        (
            "+ crop (before fit)",
            "crop=100,100,1200,900&width=800&height=800",
        ),
        ("+ rotate 90", "rotate=90&width=800&height=800"),
        ("+ flip h", "flip=h&width=800&height=800"),
        ("fit cover 400x400", "width=400&height=400&fit=cover"),
        ("fit fill 400x400", "width=400&height=400&fit=fill"),
        ("+ grayscale", "width=800&height=800&grayscale=true"),
        ("+ brightness 20", "width=800&height=800&brightness=20"),
        ("+ contrast 20", "width=800&height=800&contrast=20"),
        ("+ blur 2", "width=800&height=800&blur=2"),
        ("+ blur 20", "width=800&height=800&blur=20"),
        ("+ sharpen 1", "width=800&height=800&sharpen=1"),
        ("-> png", "width=800&height=800&format=png"),
        ("-> webp q80 (lossy)", "width=800&height=800&format=webp"),
        ("-> gif", "width=800&height=800&format=gif"),
        ("-> bmp", "width=800&height=800&format=bmp"),
        ("-> tiff", "width=800&height=800&format=tiff"),
        ("-> avif q70 speed 10", "width=800&height=800&format=avif"),
    ];
    for (name, spec) in families {
        let pairs: Vec<(&str, &str)> = spec.split('&').filter_map(|kv| kv.split_once('=')).collect();
        let pipeline = Pipeline::from_fields(pairs)
            .expect("valid bench pipeline")
            .expect("non-empty");
        let n = if spec.contains("avif") { 3 } else { 9 };
        let (cpu, wall) = median_ms(iters(n), || {
            drop(imaging::process(&two_mp, &pipeline, &LIMITS).expect("processes"))
        });
        println!("{name:<28} {cpu:>8.1} ({wall:.1})");
    }

    operations_per_megapixel(&photo(2000, 1500, 1), iters);
    facts_share(iters);
}

/// What image facts add to a photo job (issue 16: at most 5 %): the upload-time facts (SHA-256
/// and the EXIF block, read by the API, or by the worker for a SQL row) and the pixel facts
/// (BlurHash and dominant colour, computed inside the job from the decoded image), beside the
/// whole W1 job on the same 12 MP JPEG.
fn facts_share(iters: impl Fn(usize) -> usize) {
    use image_processor::imaging::facts;
    println!();
    println!("Image facts on a 12 MP JPEG, beside its W1 job (CPU ms, wall in brackets):");
    let img = photo(4000, 3000, 0);
    let bytes = encode_jpeg(&img, 90.0, false);
    let job = median_ms(iters(9), || drop(fast_w1(&bytes)));
    let upload = median_ms(iters(15), || drop(facts::UploadFacts::read(&bytes)));
    // The job samples the decoded image, which a JPEG decodes already shrunk; the full-size
    // image is the worst case (a PNG or TIFF input).
    let decoded = DynamicImage::ImageRgb8(img);
    let pixels = median_ms(iters(15), || drop(facts::pixel_facts(&decoded)));
    println!("{:<36} {:>8.2} ({:.2})", "W1 job (facts included)", job.0, job.1);
    println!(
        "{:<36} {:>8.2} ({:.2})  {:.1} % of the job",
        "upload facts: sha256 + EXIF",
        upload.0,
        upload.1,
        100.0 * upload.0 / job.0
    );
    println!(
        "{:<36} {:>8.3} ({:.3})  {:.2} % of the job",
        "pixel facts: BlurHash + colour",
        pixels.0,
        pixels.1,
        100.0 * pixels.0 / job.0
    );
}

/// Each colour and filter operation alone on a decoded 3 MP RGB image (no codec), in CPU ms
/// per megapixel, beside a Lanczos3 resize of the same image to half size: the yardstick
/// (an operation should not cost more than that resize unless it says why). Every figure
/// includes one 9 MB copy of the input, the same for all.
fn operations_per_megapixel(src: &image::RgbImage, iters: impl Fn(usize) -> usize) {
    use image_processor::imaging::{Colour, Fit, Gravity, Kernel, KernelName, Step};
    let img = image::DynamicImage::ImageRgb8(src.clone());
    let mp = f64::from(src.width() * src.height()) / 1e6;
    println!();
    println!(
        "Operations alone on a decoded {}x{} RGB image (CPU ms per megapixel, wall in brackets; x = ratio to the Lanczos3 resize):",
        src.width(),
        src.height()
    );
    let resize = |width: u32, height: Option<u32>, fit: Fit, gravity: Gravity, background: Option<Colour>| {
        Step::Resize {
            width: Some(width),
            height,
            fit,
            upscale: false,
            gravity,
            focus: None,
            background,
        }
    };
    let (w, h) = (src.width(), src.height());
    let black = Some(Colour {
        r: 0,
        g: 0,
        b: 0,
        a: 255,
    });
    let ops: Vec<(&str, Step)> = vec![
        (
            "resize 1/2 Lanczos3",
            resize(w / 2, None, Fit::Contain, Gravity::Centre, None),
        ),
        ("saturation 50", Step::Saturation { value: 50 }),
        ("hue 90", Step::Hue { degrees: 90 }),
        ("gamma 2.2", Step::Gamma { value: 2.2 }),
        ("sepia 80", Step::Sepia { value: 80 }),
        ("invert", Step::Invert),
        (
            "tint ff8800",
            Step::Tint {
                color: Colour {
                    r: 255,
                    g: 136,
                    b: 0,
                    a: 255,
                },
            },
        ),
        ("equalize", Step::Equalize),
        (
            "kernel edge (3x3)",
            Step::Kernel {
                kernel: Kernel::Named(KernelName::Edge),
            },
        ),
        (
            "kernel sobel (2 x 3x3)",
            Step::Kernel {
                kernel: Kernel::Named(KernelName::Sobel),
            },
        ),
        (
            "kernel gaussian (5x5)",
            Step::Kernel {
                kernel: Kernel::Named(KernelName::Gaussian),
            },
        ),
        ("pixelate 8", Step::Pixelate { size: 8 }),
        (
            "cover 1/2 square, smart",
            resize(h / 2, Some(h / 2), Fit::Cover, Gravity::Smart, None),
        ),
        (
            "cover 1/2 square, centre",
            resize(h / 2, Some(h / 2), Fit::Cover, Gravity::Centre, None),
        ),
        (
            "pad 1/2 to a square",
            resize(w / 2, Some(w / 2), Fit::Pad, Gravity::Centre, black),
        ),
    ];
    let mut resize_ms = None;
    for (name, step) in ops {
        let steps = [step];
        let (cpu, wall) = median_ms(iters(7), || {
            drop(imaging::apply_steps(img.clone(), &steps, &LIMITS).expect("applies"))
        });
        let per_mp = cpu / mp;
        let base = *resize_ms.get_or_insert(per_mp);
        println!(
            "{name:<28} {per_mp:>8.2} ({:.2})  x{:.2}",
            wall / mp,
            per_mp / base
        );
    }
}
