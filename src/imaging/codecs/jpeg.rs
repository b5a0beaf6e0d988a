//! The fast JPEG path: libjpeg-turbo's code (as the MozJPEG fork, built from source by
//! `mozjpeg-sys`, with SIMD when `nasm` is present at build time) for decoding and encoding.
//!
//! Its decoder can shrink by 1/2, 1/4 or 1/8 inside the inverse DCT, so a 12 MP photo bound for
//! 800×600 costs a quarter of the colour conversion and memory. Decoding is strict: libjpeg
//! reports damaged entropy data or a truncated file only as a warning and would fill the rest
//! with grey; we turn every warning into an error so a broken upload fails with a message.
//!
//! libjpeg reports errors by calling a handler that must not return; the `mozjpeg` crate's
//! handlers and ours unwind out of it (libjpeg is compiled with `-fexceptions`), and
//! `libjpeg` turns that unwind back into a `Result` — the one `catch_unwind` in `imaging`
//! besides the boundary around `probe`/`process`.

use std::panic::{self, AssertUnwindSafe};

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::{ColorSpace, Compress, Decompress, Marker};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr};

use super::{colour, Decoded};
use crate::imaging::error::{panic_message, ImagingError};

/// The most scans (SOS markers) a JPEG may have. A progressive decoder revisits the whole
/// coefficient buffer on every scan, so a small file of thousands of tiny scans is a CPU bomb:
/// minutes per image (libjpeg-turbo's `djpeg -maxscans` and its fuzzers guard the same way).
/// Real progressive files have about 10; an EXIF thumbnail inside adds its own few.
pub(crate) const MAX_SCANS: usize = 200;

/// Counts SOS markers. `FF DA` cannot occur inside entropy-coded data (every `FF` there is
/// followed by `00` or a restart marker), so a plain byte scan counts every scan, plus any
/// inside metadata, which can only over-count.
fn scans(bytes: &[u8]) -> usize {
    bytes.windows(2).filter(|w| w[0] == 0xFF && w[1] == 0xDA).count()
}

/// APP1 carries EXIF (orientation), APP2 the ICC profile; nothing else is kept.
const SAVED_MARKERS: &[Marker] = &[Marker::APP(1), Marker::APP(2)];

/// Decodes a JPEG, shrinking by `shrink` (1, 2, 4 or 8) in the DCT domain. Returns `None` for
/// CMYK/YCCK files, which libjpeg cannot turn into RGB. `expected` is the size the header check
/// saw; a file that libjpeg reads differently (a second frame header, say) is refused, so the
/// pixel limit checked on that size really bounds what is allocated here.
pub(crate) fn decode(
    bytes: &[u8],
    expected: (u32, u32),
    shrink: u32,
) -> Result<Option<Decoded>, ImagingError> {
    let scans = scans(bytes);
    if scans > MAX_SCANS {
        return Err(ImagingError::Corrupt(format!(
            "JPEG: {scans} scans, over the limit of {MAX_SCANS} (a progressive file this fragmented would take minutes to decode)"
        )));
    }
    let numerator = match shrink {
        8 => 1,
        4 => 2,
        2 => 4,
        _ => 8,
    };
    libjpeg(|| {
        let mut d = Decompress::with_err(strict_error_mgr())
            .with_markers(SAVED_MARKERS)
            .from_mem(bytes)?;
        let size = (d.width(), d.height());
        if size != (expected.0 as usize, expected.1 as usize) {
            return Err(std::io::Error::other(format!(
                "frame header says {}x{}, the first header said {}x{}",
                size.0, size.1, expected.0, expected.1
            )));
        }
        let orientation = d.markers().find_map(|m| exif_orientation(m.data));
        let icc = colour::icc_from_app2(d.markers().map(|m| m.data));
        if matches!(d.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK) {
            return Ok(None);
        }
        d.scale(numerator);
        let image = if d.color_space() == ColorSpace::JCS_GRAYSCALE {
            let mut s = d.grayscale()?;
            let (w, h) = (s.width() as u32, s.height() as u32);
            let pixels: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        } else {
            let mut s = d.rgb()?;
            let (w, h) = (s.width() as u32, s.height() as u32);
            let pixels: Vec<u8> = s.read_scanlines()?;
            s.finish()?;
            RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        };
        let mut image =
            image.ok_or_else(|| std::io::Error::other("decoded fewer pixels than the header declares"))?;
        if let Some(icc) = icc {
            colour::to_srgb(&mut image, &icc);
        }
        Ok(Some(Decoded { image, orientation }))
    })
    .map_err(|message| ImagingError::Corrupt(format!("JPEG: {message}")))
}

/// Reads the orientation from an APP1 segment, if it is EXIF.
fn exif_orientation(app1: &[u8]) -> Option<Orientation> {
    let tiff = app1.strip_prefix(b"Exif\0\0")?;
    Orientation::from_exif_chunk(tiff)
}

/// Encodes 8-bit grey or RGB as a baseline JPEG, no metadata. `optimize` builds Huffman tables
/// for this image: MozJPEG's statistics pass is scalar and, measured on a 640×480 output, took
/// the whole job from 2.8 to 6.4 ms for a file 5 % smaller.
pub(crate) fn encode(image: &DynamicImage, quality: u8, optimize: bool) -> Result<Vec<u8>, String> {
    let (color_space, pixels) = match image {
        DynamicImage::ImageLuma8(buf) => (ColorSpace::JCS_GRAYSCALE, buf.as_raw().as_slice()),
        DynamicImage::ImageRgb8(buf) => (ColorSpace::JCS_RGB, buf.as_raw().as_slice()),
        _ => return Err("JPEG encoder needs 8-bit grey or RGB".into()),
    };
    let (w, h) = (image.width() as usize, image.height() as usize);
    if w > 65_500 || h > 65_500 {
        return Err(format!(
            "JPEG is limited to 65500 pixels a side, the image is {w}x{h}"
        ));
    }
    libjpeg(|| {
        let mut c = Compress::new(color_space);
        c.set_fastest_defaults();
        c.set_size(w, h);
        c.set_quality(f32::from(quality));
        c.set_optimize_coding(optimize);
        let mut started = c.start_compress(Vec::with_capacity(w * h / 4))?;
        started.write_scanlines(pixels)?;
        started.finish()
    })
}

/// Runs libjpeg code and returns its error, whichever way it was reported, as text.
///
/// The one `catch_unwind` inside the boundary around `imaging::probe`/`process`, on purpose:
/// libjpeg's error handler must not return, so the `mozjpeg` crate (and `strict_error_mgr`)
/// report every libjpeg error by unwinding. That unwind is the library's error channel, not a
/// bug, so it is caught right here, where the caller still knows what it stands for: a damaged
/// input (`corrupt_image`) when decoding, a failed encode (`encode_failed`) when encoding. The
/// outer boundary would call both "corrupt".
fn libjpeg<T>(f: impl FnOnce() -> std::io::Result<T>) -> Result<T, String> {
    // Unwind-safe in practice: a libjpeg object interrupted by an error is dropped (and
    // destroyed) during the unwind, and nothing else is shared with the closure.
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(panic_message(payload.as_ref())),
    }
}

/// An error manager that unwinds on errors *and* warnings. Built field by field so no `unsafe`
/// is needed; the message tables are never read because every message hook is ours.
fn strict_error_mgr() -> jpeg_error_mgr {
    jpeg_error_mgr {
        error_exit: Some(fatal_error),
        emit_message: Some(emit_message),
        output_message: Some(ignore),
        format_message: Some(format_nothing),
        reset_error_mgr: Some(ignore),
        msg_code: 0,
        msg_parm: Default::default(),
        trace_level: 0,
        num_warnings: 0,
        jpeg_message_table: std::ptr::null(),
        last_jpeg_message: 0,
        addon_message_table: std::ptr::null(),
        first_addon_message: 0,
        last_addon_message: 0,
    }
}

extern "C-unwind" fn fatal_error(_cinfo: &mut jpeg_common_struct) {
    // `resume_unwind` skips the panic hook: this is an expected outcome, not a bug.
    panic::resume_unwind(Box::new(
        "the data is damaged or not a baseline/progressive JPEG".to_string(),
    ));
}

extern "C-unwind" fn emit_message(_cinfo: &mut jpeg_common_struct, level: std::os::raw::c_int) {
    // Level -1 is a warning: corrupt entropy data, a premature end of file, and the like.
    if level < 0 {
        panic::resume_unwind(Box::new("the data is corrupt or truncated".to_string()));
    }
}

extern "C-unwind" fn ignore(_cinfo: &mut jpeg_common_struct) {}

extern "C-unwind" fn format_nothing(_cinfo: &mut jpeg_common_struct, _buffer: &[u8; 80]) {}
