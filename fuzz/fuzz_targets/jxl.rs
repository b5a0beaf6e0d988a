//! JPEG XL through jxl-oxide on arbitrary bytes: `probe` (the header alone, then the frame
//! tables), then `process`. Seeded with the test fixtures (fuzz/corpus/jxl/). Errors are fine;
//! panics (libfuzzer-sys aborts on every panic, even one the imaging boundary would catch),
//! aborts, hangs and runaway memory are findings.
#![no_main]

use fuzz_support::decoder_job;
use image_processor::imaging::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if Format::sniff(data) == Some(Format::Jxl) {
        decoder_job(data);
    }
});
