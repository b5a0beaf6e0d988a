//! The image path on arbitrary bytes: `probe` (what an upload runs) under the production pixel
//! limit, then `process` (what a worker runs) under a lower one.
//!
//! The first byte picks one of a few fixed pipelines that between them touch every operation
//! and every output format but AVIF (its encoder is slow enough to stall the fuzzer and sees
//! only decoded pixels, never the hostile bytes). `process` runs with `max_pixels` of 4 000 000
//! rather than the production 50 000 000: a tiny file may legitimately declare a 50-megapixel
//! image, and decoding one takes seconds, which would drown the search; the limit checks
//! themselves are the same code at either number. Errors are fine; panics, aborts, hangs and
//! runaway memory are findings.
#![no_main]

use image_processor::imaging::{self, Fit, Flip, Format, Limits, Pipeline, Step};
use libfuzzer_sys::fuzz_target;

/// `MAX_PIXELS`' default, for the header check an upload runs.
const PRODUCTION: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};
/// Lower for `process`, to keep executions fast (see the module comment).
const FUZZ_PROCESS: Limits = Limits {
    max_pixels: 4_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let Ok(probe) = imaging::probe(bytes, &PRODUCTION) else {
        return;
    };
    assert!(probe.width > 0 && probe.height > 0, "probe accepted a zero size");
    assert!(
        u64::from(probe.width) * u64::from(probe.height) <= PRODUCTION.max_pixels,
        "probe accepted {}x{}",
        probe.width,
        probe.height
    );
    let pipeline = pipeline(choice);
    if let Ok(out) = imaging::process(bytes, &pipeline, &FUZZ_PROCESS) {
        assert!(out.width > 0 && out.height > 0);
        assert!(u64::from(out.width) * u64::from(out.height) <= FUZZ_PROCESS.max_pixels);
        assert!(!out.bytes.is_empty() && !out.thumbnail.is_empty());
    }
});

fn pipeline(choice: u8) -> Pipeline {
    let resize = |w, h, fit| Step::Resize {
        width: w,
        height: h,
        fit,
        upscale: false,
    };
    let (steps, format) = match choice % 8 {
        0 => return Pipeline::default(),
        1 => (vec![resize(Some(64), Some(64), Fit::Cover)], Some(Format::Webp)),
        2 => (
            vec![
                Step::Rotate { degrees: 90 },
                Step::Flip {
                    direction: Flip::Horizontal,
                },
                resize(Some(40), None, Fit::Contain),
            ],
            Some(Format::Png),
        ),
        3 => (
            vec![
                Step::Crop {
                    x: 0,
                    y: 0,
                    width: 1,
                    height: 1,
                },
                Step::Grayscale,
            ],
            Some(Format::Jpeg),
        ),
        4 => (
            vec![
                resize(Some(32), Some(48), Fit::Fill),
                Step::Brightness { value: -50 },
                Step::Contrast { value: 80 },
            ],
            Some(Format::Gif),
        ),
        5 => (
            vec![
                resize(None, Some(24), Fit::Contain),
                Step::Blur { sigma: 1.5 },
                Step::Sharpen { amount: 2.0 },
            ],
            Some(Format::Bmp),
        ),
        6 => (vec![resize(Some(16), Some(16), Fit::Contain)], Some(Format::Tiff)),
        _ => (vec![], None),
    };
    Pipeline {
        auto_orient: choice & 0x80 == 0,
        steps,
        format,
        quality: Some(1 + choice % 100),
    }
}
