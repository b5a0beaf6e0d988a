//! The image path on arbitrary bytes: `probe` (what an upload runs) under the production pixel
//! limit, then `process` (what a worker runs) under a lower one.
//!
//! The first byte picks one of a few fixed pipelines that between them touch every operation
//! and every output format but AVIF (its encoder is slow enough to stall the fuzzer and sees
//! only decoded pixels, never the hostile bytes), and animated GIF/WebP outputs; its top bit
//! turns EXIF orientation off. The limits are `fuzz_support`'s (4 000 000 pixels for `process`). Errors are fine; panics, aborts, hangs and
//! runaway memory are findings.
#![no_main]

use fuzz_support::{pipeline, probe_then_process, PIPELINES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, bytes)) = data.split_first() else {
        return;
    };
    let base = PIPELINES[usize::from(choice & 0x7f) % PIPELINES.len()];
    let orient = if choice & 0x80 == 0 {
        ""
    } else {
        "&auto_orient=false"
    };
    let spec = format!("{base}{orient}&quality={}", 1 + choice % 100);
    probe_then_process(bytes, &pipeline(spec.trim_start_matches('&')));
});
