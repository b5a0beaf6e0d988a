//! JPEG XL through jxl-oxide on arbitrary bytes: `probe` (the header alone, then the frame
//! tables), then `process`. Seeded with the test fixtures (fuzz/corpus/jxl/). Errors are fine;
//! panics (libfuzzer-sys aborts on every panic, even one the imaging boundary would catch),
//! aborts, hangs and runaway memory are findings.
#![no_main]

use image_processor::imaging::{self, Format, Limits, Pipeline};
use libfuzzer_sys::fuzz_target;

/// `MAX_PIXELS`' default, for the header check an upload runs.
const PRODUCTION: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};
/// Lower for `process`, to keep executions fast (as in `image.rs`).
const FUZZ_PROCESS: Limits = Limits {
    max_pixels: 4_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

fuzz_target!(|data: &[u8]| {
    if Format::sniff(data) != Some(Format::Jxl) {
        return;
    }
    let Ok(probe) = imaging::probe(data, &PRODUCTION) else {
        return;
    };
    assert!(probe.width > 0 && probe.height > 0, "probe accepted a zero size");
    assert!(
        u64::from(probe.width) * u64::from(probe.height) <= PRODUCTION.max_pixels,
        "probe accepted {}x{}",
        probe.width,
        probe.height
    );
    // The decoder and the default output (JPEG or PNG; AVIF's encoder is too slow to fuzz and
    // never sees the hostile bytes) plus a resize, the commonest job.
    let pipeline = Pipeline::from_fields([("width", "48"), ("height", "48"), ("format", "png")])
        .ok()
        .flatten()
        .unwrap_or_default();
    if let Ok(out) = imaging::process(data, &pipeline, &FUZZ_PROCESS) {
        assert!(out.width > 0 && out.height > 0 && out.width <= 48 && out.height <= 48);
        assert!(!out.bytes.is_empty());
    }
});
