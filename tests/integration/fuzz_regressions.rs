//! Every crash the fuzzers in `fuzz/` found, kept as a test. The inputs live in
//! `fuzz/regressions/<target>/` exactly as the fuzzer wrote them (for `image`, the first byte
//! picks the fuzz target's pipeline; the image is the rest).

use image_processor::imaging::{self, ImagingError, Limits, Pipeline};

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

/// png 0.18.1 slices past the end of a `PLTE` chunk whose length is not a multiple of 3 when it
/// expands the palette. Found by `image` in its first minute; refused now at the header check.
#[test]
fn png_with_a_palette_of_11_bytes_is_refused_as_corrupt() {
    let input = include_bytes!("../../fuzz/regressions/image/png-palette-of-11-bytes");
    let png = &input[1..];
    match imaging::probe(png, &LIMITS) {
        Err(e @ ImagingError::Corrupt(_)) => assert_eq!(e.code(), "corrupt_image"),
        other => panic!("expected a corrupt-image refusal, got {other:?}"),
    }
    let processed = imaging::process(png, &Pipeline::default(), &LIMITS);
    assert!(
        matches!(processed, Err(ImagingError::Corrupt(_))),
        "{processed:?}"
    );
}
