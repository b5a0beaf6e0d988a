//! JPEG pass-through: when a pipeline would leave a JPEG's pixels as they are (a `contain`
//! resize the image already fits, no other operation, JPEG out at the encoder's default
//! quality), its compressed data is kept and only its metadata dropped, instead of decoding
//! and encoding it again. Issue 21: for a 640×480 photo bound for "fit 800×800" that re-encode
//! was most of the worker's CPU, and a second lossy generation for no reason.
//!
//! Only what every browser decodes passes: 8-bit baseline or progressive Huffman-coded frames
//! (SOF0, SOF1, SOF2) of 1 or 3 components, with no ICC profile (its colours would have to be
//! converted to sRGB) and no EXIF orientation other than "normal" (it would have to be applied,
//! and the EXIF goes). Everything else takes the full path. The file is still decoded (at a
//! reduced scale, which reads every scan), so a damaged one fails exactly as before, and the
//! thumbnail and facts come from that decode.

use super::codecs::format::Format;
use super::codecs::probe::Probe;
use super::ops::resize;
use super::pipeline::{Fit, Pipeline, Step};

/// Whether `pipeline` leaves a `probe`-sized JPEG's pixels unchanged (its orientation and
/// colour profile are the caller's to check).
pub(crate) fn pipeline_keeps_pixels(probe: &Probe, pipeline: &Pipeline) -> bool {
    if probe.format != Format::Jpeg
        || !matches!(pipeline.format, None | Some(Format::Jpeg))
        || pipeline.quality.is_some()
        || pipeline.background.is_some()
    {
        return false;
    }
    pipeline.steps.iter().all(|step| match *step {
        Step::Resize {
            width,
            height,
            fit: Fit::Contain,
            upscale,
            ..
        } => resize::leaves_unchanged((probe.width, probe.height), width, height, upscale),
        _ => false,
    })
}

/// `bytes` without APP1–APP13, APP15 and COM segments (EXIF, XMP, Photoshop, comments), if it
/// is a JPEG that may pass through: else `None` and the caller takes the full path. Never
/// panics on hostile input: every length is checked against what is left.
pub(crate) fn strip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(bytes.get(..2).filter(|soi| *soi == [0xFF, 0xD8])?);
    let mut at = 2;
    let mut frame_ok = false;
    loop {
        // Fill bytes (0xFF repeated) may precede a marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (&ff, &marker) = (bytes.get(at)?, bytes.get(at + 1)?);
        if ff != 0xFF {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]));
        let end = at.checked_add(2)?.checked_add(len)?;
        let segment = bytes.get(at..end).filter(|_| len >= 2)?;
        let body = &segment[4..];
        match marker {
            // SOS: the entropy-coded data and everything after it are kept as they are.
            0xDA => {
                if !frame_ok {
                    return None;
                }
                out.extend_from_slice(&bytes[at..]);
                return Some(out);
            }
            // SOF0/1/2: 8-bit Huffman, 1 or 3 components.
            0xC0..=0xC2 => {
                let precision = *body.first()?;
                let components = *body.get(5)?;
                if precision != 8 || !matches!(components, 1 | 3) || frame_ok {
                    return None;
                }
                frame_ok = true;
                out.extend_from_slice(segment);
            }
            // Any other frame type (lossless, hierarchical, arithmetic coding): full path.
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            // APP2 with an ICC profile: its colours must be converted (full path).
            0xE2 if body.starts_with(b"ICC_PROFILE\0") => return None,
            // APP1: EXIF with an orientation other than normal must be applied (full path).
            0xE1 if exif_turns(body) => return None,
            // Metadata: dropped (APP0 JFIF and APP14 Adobe stay: decoders read them).
            0xE1..=0xED | 0xEF | 0xFE => {}
            // Tables, restart interval, APP0, APP14 ...
            _ => out.extend_from_slice(segment),
        }
        at = end;
    }
}

/// Whether an APP1 body is EXIF with an orientation that is not "normal".
fn exif_turns(app1: &[u8]) -> bool {
    let Some(tiff) = app1.strip_prefix(b"Exif\0\0") else {
        return false;
    };
    image::metadata::Orientation::from_exif_chunk(tiff)
        .is_some_and(|o| o != image::metadata::Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let len = u16::try_from(body.len() + 2).unwrap();
        let mut s = vec![0xFF, marker];
        s.extend_from_slice(&len.to_be_bytes());
        s.extend_from_slice(body);
        s
    }

    fn sof(precision: u8, components: u8) -> Vec<u8> {
        segment(0xC0, &[precision, 0, 8, 0, 8, components, 1, 0x11, 0])
    }

    fn file(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut f = vec![0xFF, 0xD8];
        for p in parts {
            f.extend_from_slice(p);
        }
        f.extend_from_slice(&[0xFF, 0xDA, 0, 2, 1, 2, 3, 0xFF, 0xD9]);
        f
    }

    #[test]
    fn metadata_goes_and_everything_else_stays_in_order() {
        let app0 = segment(0xE0, b"JFIF\0\x01\x01");
        let exif = segment(0xE1, b"Exif\0\0MM\0*\0\0\0\x08\0\0");
        let xmp = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>");
        let com = segment(0xFE, b"shot with a phone, at home");
        let dqt = segment(0xDB, &[0; 65]);
        let input = file(&[app0.clone(), exif, xmp, com, dqt.clone(), sof(8, 3)]);
        let out = strip(&input).expect("passes");
        assert_eq!(out, file(&[app0, dqt, sof(8, 3)]));
    }

    #[test]
    fn what_must_be_converted_or_may_not_be_read_takes_the_full_path() {
        let icc = segment(0xE2, b"ICC_PROFILE\0\x01\x01....");
        assert!(strip(&file(&[icc, sof(8, 3)])).is_none(), "ICC profile");
        assert!(strip(&file(&[sof(12, 3)])).is_none(), "12-bit");
        assert!(strip(&file(&[sof(8, 4)])).is_none(), "CMYK");
        assert!(
            strip(&file(&[segment(0xC9, &[8, 0, 8, 0, 8, 3])])).is_none(),
            "arithmetic"
        );
        assert!(strip(&file(&[])).is_none(), "no frame header");
        assert!(
            strip(&file(&[sof(8, 3), sof(8, 3)])).is_none(),
            "two frame headers"
        );
    }

    #[test]
    fn hostile_lengths_and_truncation_never_panic() {
        let good = file(&[sof(8, 3)]);
        for cut in 0..good.len() {
            let _ = strip(&good[..cut]);
        }
        assert!(strip(&[0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF]).is_none());
        assert!(
            strip(&[0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01, 0x00]).is_none(),
            "length below 2"
        );
        assert!(strip(b"not a jpeg").is_none());
    }
}
