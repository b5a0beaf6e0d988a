//! HEIC/HEIF and AVIF through libheif (libde265, dav1d) on arbitrary bytes: `probe`, then
//! `process`. Seeded with the test fixtures (fuzz/corpus/heif/). libheif and its decoders are
//! not instrumented (they are a shared library), so coverage guides the search only through our
//! Rust side and what libheif's answers make it do; crashes and hangs inside them are still
//! caught. Errors are fine; panics, aborts, hangs and runaway memory are findings.
#![no_main]

use fuzz_support::decoder_job;
use image_processor::imaging::Format;
use libfuzzer_sys::fuzz_target;

/// What this target is about; other formats are sniffed too, and ignored.
const HEIF_FAMILY: [Format; 3] = [Format::Heic, Format::Heif, Format::Avif];

fuzz_target!(|data: &[u8]| {
    if Format::sniff(data).is_some_and(|f| HEIF_FAMILY.contains(&f)) {
        decoder_job(data);
    }
});
