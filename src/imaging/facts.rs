//! Image facts (SPEC "Facts"): what an image is, beyond its size. Pure functions over bytes and
//! decoded pixels, like the rest of `imaging`.
//!
//! - [`sha256_hex`] of the uploaded bytes: the key of `dedupe=true`.
//! - [`exif`]: a few camera fields, read from the container without decoding pixels. GPS
//!   coordinates are never read out, only whether there are any (`has_gps`); outputs never carry
//!   EXIF at all (the encoders write none).
//! - [`PixelFacts`]: a BlurHash and the dominant colour, from a sample grid of at most
//!   [`SAMPLE_SIDE`]² pixels of the decoded image, so they cost microseconds whatever the
//!   image's size (the budget is 5 % of a photo job: a 12 MP JPEG job is ~100 ms).

use std::io::Cursor;

use image::DynamicImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What is read from the uploaded bytes alone: by the API at upload, or by the worker for a
/// row a SQL INSERT made.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadFacts {
    pub sha256: String,
    pub exif: Option<ExifFacts>,
}

impl UploadFacts {
    /// Hashes and reads the EXIF block; never fails (a damaged EXIF block is no EXIF).
    pub fn read(bytes: &[u8]) -> UploadFacts {
        UploadFacts {
            sha256: sha256_hex(bytes),
            exif: exif(bytes),
        }
    }

    /// The EXIF facts as the JSON the `exif` column stores.
    pub fn exif_json(&self) -> Option<serde_json::Value> {
        self.exif.as_ref().and_then(|e| serde_json::to_value(e).ok())
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// The EXIF fields the API shows (absent ones omitted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExifFacts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub make: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lens: Option<String>,
    /// When the picture was taken, as the camera wrote it: `2026-07-14T18:03:27`, with the
    /// offset (`+02:00`) when the camera recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<String>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f_number: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<u32>,
    /// Millimetres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focal_length: Option<f64>,
    /// 1–8, as in EXIF.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u16>,
    /// The file has GPS fields. Their values are never returned.
    pub has_gps: bool,
}

/// Longest text kept from an EXIF string field.
const MAX_TEXT: usize = 128;

/// Reads the EXIF block of a JPEG, TIFF, PNG, WebP or HEIF file. `None` when there is none, or
/// it cannot be parsed (facts are informative: a damaged EXIF block never fails a job).
pub fn exif(bytes: &[u8]) -> Option<ExifFacts> {
    use exif::{Context, In, Tag};
    let reader = exif::Reader::new();
    let data = if bytes.starts_with(&[0xff, 0xd8]) {
        reader.read_raw(jpeg_exif_segment(bytes)?.to_vec()).ok()?
    } else {
        reader.read_from_container(&mut Cursor::new(bytes)).ok()?
    };
    let field = |tag: Tag| data.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let text = |tag: Tag| match field(tag)? {
        exif::Value::Ascii(parts) => clean_text(parts.first()?),
        _ => None,
    };
    let rational = |tag: Tag| match field(tag)? {
        exif::Value::Rational(r) => r.first().filter(|r| r.denom != 0).map(|r| r.to_f64()),
        _ => None,
    };
    let taken_at = text(Tag::DateTimeOriginal).and_then(|t| exif_time(&t)).map(|t| {
        match text(Tag::OffsetTimeOriginal).filter(|o| is_offset(o)) {
            Some(offset) => format!("{t}{offset}"),
            None => t,
        }
    });
    let facts = ExifFacts {
        make: text(Tag::Make),
        model: text(Tag::Model),
        lens: text(Tag::LensModel),
        taken_at,
        exposure_time: rational(Tag::ExposureTime),
        f_number: rational(Tag::FNumber),
        iso: field(Tag::PhotographicSensitivity).and_then(|v| v.get_uint(0)),
        focal_length: rational(Tag::FocalLength),
        orientation: field(Tag::Orientation)
            .and_then(|v| v.get_uint(0))
            .and_then(|o| u16::try_from(o).ok())
            .filter(|o| (1..=8).contains(o)),
        has_gps: data.fields().any(|f| f.tag.context() == Context::Gps),
    };
    (facts != ExifFacts::default()).then_some(facts)
}

/// The EXIF block of a JPEG (the APP1 segment that starts with `Exif\0\0`, without those six
/// bytes): the segment kamadak-exif's `read_from_container` finds, by the same walk (a marker
/// is a 0xff byte not followed by 0x00, 0x01 or RST0-7; every other marker's segment is
/// skipped by its length; a SOI, an EOI or a cut-off file before the block means none), over
/// the slice instead of a reader. The crate's walk copies every stretch of scan data between
/// two 0xff bytes into a fresh Vec and reads each segment into another: for a 100 KB upload
/// without EXIF that was 14 % of the API's CPU per upload (perf, bench/ingest_phase.sh).
fn jpeg_exif_segment(bytes: &[u8]) -> Option<&[u8]> {
    const EXIF_ID: &[u8] = b"Exif\0\0";
    let mut rest = bytes.strip_prefix(&[0xff, 0xd8])?;
    loop {
        // Past the next 0xff, then past any fill bytes (more 0xff) to the marker code.
        let at = memchr::memchr(0xff, rest)?;
        rest = &rest[at + 1..];
        let fill = rest.iter().position(|&b| b != 0xff)?;
        let code = rest[fill];
        rest = &rest[fill + 1..];
        match code {
            // Stuffing, TEM and restart markers stand alone.
            0x00 | 0x01 | 0xd0..=0xd7 => continue,
            // SOI again, or EOI: no EXIF.
            0xd8 | 0xd9 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])).checked_sub(2)?;
        let segment = rest.get(2..2 + len)?;
        rest = &rest[2 + len..];
        if code == 0xe1 {
            if let Some(block) = segment.strip_prefix(EXIF_ID) {
                return Some(block);
            }
        }
    }
}

/// Printable text, trimmed and bounded; `None` when nothing is left.
fn clean_text(raw: &[u8]) -> Option<String> {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `2026:07:14 18:03:27` → `2026-07-14T18:03:27`; anything else (blank dates of `0000:00:00`,
/// garbage) → `None`.
fn exif_time(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 19
        && digits(0..4)
        && b[4] == b':'
        && digits(5..7)
        && b[7] == b':'
        && digits(8..10)
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape || raw.starts_with("0000") {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}",
        &raw[0..4],
        &raw[5..7],
        &raw[8..10],
        &raw[11..19]
    ))
}

/// `+02:00` or `-05:30`.
fn is_offset(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[1..3].iter().all(u8::is_ascii_digit)
        && b[3] == b':'
        && b[4..6].iter().all(u8::is_ascii_digit)
}

/// Facts read from the decoded pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelFacts {
    /// 4×3 components.
    pub blurhash: String,
    /// `#rrggbb`.
    pub dominant_color: String,
}

/// The sample grid's longest side.
pub const SAMPLE_SIDE: u32 = 64;

/// BlurHash and dominant colour of `img` (as shown: call it after auto-orientation).
pub fn pixel_facts(img: &DynamicImage) -> Option<PixelFacts> {
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return None;
    }
    let (sw, sh) = sample_size(w, h);
    let rgba = sample(img, sw, sh);
    let blurhash = blurhash::encode(4, 3, sw, sh, &rgba).ok()?;
    Some(PixelFacts {
        blurhash,
        dominant_color: dominant(&rgba),
    })
}

/// The grid keeps the aspect ratio (BlurHash components depend on it), at least 1×1.
fn sample_size(w: u32, h: u32) -> (u32, u32) {
    if w.max(h) <= SAMPLE_SIDE {
        return (w, h);
    }
    let scale = f64::from(SAMPLE_SIDE) / f64::from(w.max(h));
    let side = |v: u32| ((f64::from(v) * scale).round() as u32).clamp(1, SAMPLE_SIDE);
    (side(w), side(h))
}

/// RGBA8 at the centre of each grid cell (nearest neighbour: a 4×3 BlurHash and a coarse colour
/// histogram average far more than aliasing can bias).
fn sample(img: &DynamicImage, sw: u32, sh: u32) -> Vec<u8> {
    use image::GenericImageView;
    let (w, h) = (img.width(), img.height());
    let mut out = Vec::with_capacity((sw * sh * 4) as usize);
    for gy in 0..sh {
        let y = ((u64::from(gy) * 2 + 1) * u64::from(h) / (u64::from(sh) * 2)) as u32;
        for gx in 0..sw {
            let x = ((u64::from(gx) * 2 + 1) * u64::from(w) / (u64::from(sw) * 2)) as u32;
            out.extend_from_slice(&img.get_pixel(x.min(w - 1), y.min(h - 1)).0);
        }
    }
    out
}

/// The most common colour, in a 4-bit-per-channel histogram, as the mean of the pixels in its
/// bin (so a flat colour comes back exactly). Mostly-transparent pixels do not count, unless
/// every pixel is.
fn dominant(rgba: &[u8]) -> String {
    let bin = |p: &[u8]| (u16::from(p[0] >> 4) << 8) | (u16::from(p[1] >> 4) << 4) | u16::from(p[2] >> 4);
    // Sorted by bin rather than counted in a 4 096-bin table: the grid has at most 64×64 pixels,
    // and zeroing the table (128 KB) cost more than the rest of the facts for small images.
    let mut keyed: Vec<(u16, &[u8])> = rgba
        .chunks_exact(4)
        .filter(|p| p[3] >= 128)
        .map(|p| (bin(p), p))
        .collect();
    if keyed.is_empty() {
        keyed = rgba.chunks_exact(4).map(|p| (bin(p), p)).collect();
    }
    keyed.sort_unstable_by_key(|(b, _)| *b);
    // The fullest bin; among equals the last (the highest bin), as before.
    let (mut n, mut sums) = (0u32, [0u64; 3]);
    for group in keyed.chunk_by(|a, b| a.0 == b.0) {
        let count = group.len() as u32;
        if count >= n {
            n = count;
            sums = [0; 3];
            for (_, p) in group {
                for (sum, &v) in sums.iter_mut().zip(p.iter()) {
                    *sum += u64::from(v);
                }
            }
        }
    }
    let mean = |c: usize| {
        if n == 0 {
            0
        } else {
            (sums[c] + u64::from(n) / 2) / u64::from(n)
        }
    };
    format!("#{:02x}{:02x}{:02x}", mean(0), mean(1), mean(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage, Rgba, RgbaImage};

    #[test]
    fn sha256_matches_the_published_test_vectors() {
        // FIPS 180-2, appendix B.1, and the empty string.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_flat_image_gives_its_colour_and_a_blurhash_of_that_colour() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 200, Rgb([200, 40, 90])));
        let facts = pixel_facts(&img).expect("facts");
        assert_eq!(facts.dominant_color, "#c8285a");
        assert_eq!(facts.blurhash.len(), 6 + 2 * (4 * 3 - 1), "{}", facts.blurhash);
        // Characters 2..6 are the average colour (the DC component), in base 83: exactly it.
        const BASE83: &str =
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
        let dc = facts.blurhash[2..6]
            .chars()
            .fold(0u32, |n, c| n * 83 + BASE83.find(c).expect("base 83") as u32);
        // (±1: the crate rounds its sRGB conversion up by half a step.)
        let [r, g, b] = [dc >> 16, (dc >> 8) & 0xff, dc & 0xff];
        assert!(
            r.abs_diff(200) <= 1 && g.abs_diff(40) <= 1 && b.abs_diff(90) <= 1,
            "{dc:06x} {}",
            facts.blurhash
        );
        // And it decodes to about that colour in the middle (the reference algorithm samples
        // cosines at pixel corners, so even a flat image has small AC terms).
        let back = blurhash::decode(&facts.blurhash, 9, 9, 1.0).expect("decode");
        let mid = &back[(4 * 9 + 4) * 4..(4 * 9 + 4) * 4 + 3];
        assert!(
            mid[0].abs_diff(200) <= 12 && mid[1].abs_diff(40) <= 12 && mid[2].abs_diff(90) <= 12,
            "{mid:?}"
        );
    }

    #[test]
    fn the_dominant_colour_is_the_largest_area_and_ignores_transparency() {
        // Two thirds blue, one third red, and a transparent green band that must not count.
        let img = RgbaImage::from_fn(300, 90, |x, _| match x {
            0..=99 => Rgba([220, 20, 20, 255]),
            100..=279 => Rgba([10, 30, 200, 255]),
            _ => Rgba([0, 255, 0, 10]),
        });
        let facts = pixel_facts(&DynamicImage::ImageRgba8(img)).expect("facts");
        assert_eq!(facts.dominant_color, "#0a1ec8");
    }

    /// The 4 096-bin table `dominant` used before it sorted: the same answer, ties included.
    fn dominant_by_table(rgba: &[u8]) -> String {
        let mut bins = vec![(0u32, [0u64; 3]); 4096];
        let mut add = |p: &[u8]| {
            let bin = (usize::from(p[0] >> 4) << 8) | (usize::from(p[1] >> 4) << 4) | usize::from(p[2] >> 4);
            bins[bin].0 += 1;
            for (sum, &v) in bins[bin].1.iter_mut().zip(p) {
                *sum += u64::from(v);
            }
        };
        let opaque: Vec<&[u8]> = rgba.chunks_exact(4).filter(|p| p[3] >= 128).collect();
        if opaque.is_empty() {
            rgba.chunks_exact(4).for_each(&mut add);
        } else {
            opaque.into_iter().for_each(&mut add);
        }
        let (n, sums) = bins
            .iter()
            .max_by_key(|(n, _)| *n)
            .copied()
            .unwrap_or((0, [0; 3]));
        let mean = |c: usize| {
            if n == 0 {
                0
            } else {
                (sums[c] + u64::from(n) / 2) / u64::from(n)
            }
        };
        format!("#{:02x}{:02x}{:02x}", mean(0), mean(1), mean(2))
    }

    #[test]
    fn the_dominant_colour_by_sorting_matches_the_table() {
        // Few colours (ties between bins are common), many colours, all transparent, and empty.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..200 {
            let pixels = (next() % 4097) as usize;
            let palette: Vec<[u8; 4]> = (0..1 + next() % 6)
                .map(|_| next().to_le_bytes()[..4].try_into().unwrap_or([0; 4]))
                .collect();
            let rgba: Vec<u8> = (0..pixels)
                .flat_map(|_| {
                    let mut p = if case % 2 == 0 {
                        palette[(next() % palette.len() as u64) as usize]
                    } else {
                        next().to_le_bytes()[..4].try_into().unwrap_or([0; 4])
                    };
                    if case % 5 == 0 {
                        p[3] = 0;
                    }
                    p
                })
                .collect();
            assert_eq!(
                dominant(&rgba),
                dominant_by_table(&rgba),
                "case {case}, {pixels} pixels"
            );
        }
    }

    #[test]
    fn the_sample_grid_keeps_the_aspect_ratio_and_small_images_whole() {
        assert_eq!(sample_size(4000, 3000), (64, 48));
        assert_eq!(sample_size(3000, 4000), (48, 64));
        assert_eq!(sample_size(20000, 10), (64, 1));
        assert_eq!(sample_size(30, 20), (30, 20));
    }

    #[test]
    fn exif_times_and_offsets_are_checked() {
        assert_eq!(
            exif_time("2026:07:14 18:03:27").as_deref(),
            Some("2026-07-14T18:03:27")
        );
        assert_eq!(exif_time("0000:00:00 00:00:00"), None);
        assert_eq!(exif_time("yesterday"), None);
        assert_eq!(exif_time("2026:07:14"), None);
        assert!(is_offset("+02:00") && is_offset("-05:30"));
        assert!(!is_offset("02:00") && !is_offset("+2:00"));
    }

    #[test]
    fn exif_text_is_trimmed_bounded_and_printable() {
        assert_eq!(clean_text(b"  Canon\0\x07 ").as_deref(), Some("Canon"));
        assert_eq!(clean_text(b"   "), None);
        assert_eq!(clean_text(&[b'x'; 1000]).map(|s| s.len()), Some(MAX_TEXT));
    }

    #[test]
    fn no_exif_is_no_facts() {
        assert_eq!(exif(b"not an image"), None);
        assert_eq!(exif(&[0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, b'E', b'x']), None);
    }

    /// The crate's own JPEG walk, which [`jpeg_exif_segment`] replaces.
    fn crate_segment(bytes: &[u8]) -> Option<Vec<u8>> {
        exif::Reader::new()
            .read_from_container(&mut Cursor::new(bytes))
            .ok()
            .map(|e| e.buf().to_vec())
    }

    fn ours(bytes: &[u8]) -> Option<Vec<u8>> {
        let block = jpeg_exif_segment(bytes)?.to_vec();
        exif::Reader::new().read_raw(block).ok().map(|e| e.buf().to_vec())
    }

    /// A noisy JPEG (its scan data is full of 0xff 0x00 stuffing) with an APP1 `Exif` segment
    /// at `at` (a byte offset that must be a segment boundary), and the segment.
    fn jpeg_with_exif_at(at: impl Fn(&[u8]) -> usize) -> Vec<u8> {
        let mut img = RgbImage::new(96, 64);
        let mut seed = 7u32;
        for p in img.pixels_mut() {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *p = Rgb([(seed >> 8) as u8, (seed >> 16) as u8, (seed >> 24) as u8]);
        }
        let mut plain = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut plain), image::ImageFormat::Jpeg)
            .expect("encode");
        let mut writer = exif::experimental::Writer::new();
        let make = exif::Field {
            tag: exif::Tag::Make,
            ifd_num: exif::In::PRIMARY,
            value: exif::Value::Ascii(vec![b"Canon".to_vec()]),
        };
        writer.push_field(&make);
        let mut tiff = Cursor::new(Vec::new());
        writer.write(&mut tiff, false).expect("write EXIF");
        let tiff = tiff.into_inner();
        let mut segment = vec![0xff, 0xe1];
        segment.extend_from_slice(&u16::try_from(2 + 6 + tiff.len()).expect("fits").to_be_bytes());
        segment.extend_from_slice(b"Exif\0\0");
        segment.extend_from_slice(&tiff);
        let at = at(&plain);
        let mut out = plain[..at].to_vec();
        out.extend_from_slice(&segment);
        out.extend_from_slice(&plain[at..]);
        out
    }

    #[test]
    fn the_jpeg_exif_walk_finds_what_the_crate_finds() {
        let plain = jpeg_with_exif_at(|_| 2);
        let after_scan = jpeg_with_exif_at(|j| j.len() - 2); // between the scan data and EOI
        assert_eq!(exif(&plain).and_then(|e| e.make), Some("Canon".to_owned()));
        assert_eq!(exif(&after_scan).and_then(|e| e.make), Some("Canon".to_owned()));
        let mut inputs = vec![plain.clone(), after_scan.clone()];
        // No EXIF at all, fill bytes before a marker, an EXIF-less APP1, SOI and EOI early.
        let mut no_exif = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::from_pixel(40, 30, Rgb([255, 255, 255])))
            .write_to(&mut Cursor::new(&mut no_exif), image::ImageFormat::Jpeg)
            .expect("encode");
        inputs.push(no_exif);
        inputs.push([&[0xff, 0xd8, 0xff, 0xff, 0xff][..], &plain[2..]].concat());
        inputs.push(
            [
                &[0xff, 0xd8, 0xff, 0xe1, 0, 6, b'X', b'M', b'P', 0][..],
                &plain[2..],
            ]
            .concat(),
        );
        inputs.push([&[0xff, 0xd8, 0xff, 0xd8][..], &plain[2..]].concat());
        inputs.push([&[0xff, 0xd8, 0xff, 0xd9][..], &plain[2..]].concat());
        inputs.push(vec![0xff, 0xd8, 0xff, 0xe1, 0, 1]); // a length under 2
                                                         // Every cut of both files, and single-byte damage all over them.
        for file in [&plain, &after_scan] {
            inputs.extend((0..file.len()).step_by(7).map(|n| file[..n].to_vec()));
            for (i, at) in (0..file.len()).step_by(13).enumerate() {
                let mut damaged = file.clone();
                damaged[at] = [0xff, 0x00, 0xd9, 0xe1, 0x42][i % 5];
                inputs.push(damaged);
            }
        }
        for (i, input) in inputs.iter().enumerate() {
            assert_eq!(
                ours(input),
                crate_segment(input),
                "input {i} ({} bytes)",
                input.len()
            );
        }
    }
}
