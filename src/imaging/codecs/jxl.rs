//! JPEG XL input through `jxl-oxide`, a pure-Rust decoder: hostile input can make it fail or
//! panic (caught by the imaging boundary), not corrupt memory.
//!
//! The codestream's orientation is applied by the decoder (JPEG XL keeps it in the image header,
//! and an EXIF orientation inside the file is informational only, so nothing is applied twice).
//! Pixels are rendered to 8-bit sRGB: the decoder converts from the image's own colour space
//! (wide gamut, HDR, an embedded ICC profile) with moxcms, the CMS the other formats use.

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use jxl_bitstream::{Bitstream, ContainerParser, ParseEvent};
use jxl_oxide::{AllocTracker, EnumColourEncoding, ImageHeader, InitializeResult, JxlImage, RenderingIntent};
use jxl_oxide_common::Bundle;

use super::Decoded;
use crate::imaging::error::ImagingError;
use crate::imaging::limits::{check_frames, Limits};

/// Bytes the decoder may hold per pixel of the declared canvas: rendering keeps one `f32` per
/// channel (RGBA: 16 bytes) and the modular or VarDCT working buffers about as much again.
const BYTES_PER_PIXEL: u64 = 40;
/// Working room beyond that: entropy-code tables, group buffers, the ICC profile.
const EXTRA_BYTES: u64 = 64 << 20;
/// The image header is a few hundred bits at most; this much codestream always holds it.
const HEADER_BYTES: usize = 4096;

/// The header check: the oriented width and height, and every keyframe counted against the
/// pixel limit, with no pixel decoded. Parsing stops at a budget set from `MAX_PIXELS`, so a
/// header declaring a huge canvas is refused before anything of its size is allocated.
pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<(u32, u32), ImagingError> {
    // The size alone first: the frame headers the full read parses are sized from it.
    let (width, height) = header_size(bytes)?;
    check_frames(width, height, 1, limits)?;
    let image = read(bytes, budget(width, height))?;
    if (image.width(), image.height()) != (width, height) {
        return Err(corrupt("the image header changed between reads"));
    }
    let frames = u64::try_from(image.num_loaded_keyframes().max(1)).unwrap_or(u64::MAX);
    check_frames(width, height, frames, limits)?;
    Ok((width, height))
}

/// Decodes the first keyframe to 8-bit sRGB, alpha kept, orientation applied.
pub(crate) fn decode(bytes: &[u8], expected: (u32, u32)) -> Result<Decoded, ImagingError> {
    let mut image = read(bytes, budget(expected.0, expected.1))?;
    if (image.width(), image.height()) != expected {
        return Err(corrupt("the image header changed between reads"));
    }
    image.request_color_encoding(EnumColourEncoding::srgb(RenderingIntent::Relative));
    let render = image.render_frame(0).map_err(|e| corrupt(&e.to_string()))?;
    let mut stream = render.stream();
    let (w, h, channels) = (stream.width(), stream.height(), stream.channels());
    if (w, h) != expected {
        return Err(corrupt("the rendered frame is not the size of the image"));
    }
    let len = (w as usize)
        .checked_mul(h as usize)
        .and_then(|n| n.checked_mul(channels as usize))
        .ok_or_else(|| corrupt("image too large to address"))?;
    let mut pixels = vec![0u8; len];
    if stream.write_to_buffer(&mut pixels) != len {
        return Err(corrupt("the decoder produced fewer samples than the image has"));
    }
    let image = match channels {
        1 => GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        2 => GrayAlphaImage::from_raw(w, h, pixels).map(DynamicImage::ImageLumaA8),
        3 => RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
        4 => RgbaImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8),
        n => {
            return Err(ImagingError::Unsupported(format!(
                "JPEG XL with {n} colour channels"
            )))
        }
    }
    .ok_or_else(|| corrupt("pixel buffer does not match the image size"))?;
    Ok(Decoded {
        image,
        orientation: None,
    })
}

/// The oriented size from the image header, read from the start of the codestream (inside its
/// container boxes, if any) without the decoder's frame parsing.
fn header_size(bytes: &[u8]) -> Result<(u32, u32), ImagingError> {
    let mut parser = ContainerParser::new();
    let mut codestream = Vec::new();
    for event in parser.feed_bytes(bytes) {
        if let ParseEvent::Codestream(data) = event.map_err(|e| corrupt(&e.to_string()))? {
            let room = HEADER_BYTES.saturating_sub(codestream.len());
            codestream.extend_from_slice(&data[..data.len().min(room)]);
            if codestream.len() >= HEADER_BYTES {
                break;
            }
        }
    }
    let header = ImageHeader::parse(&mut Bitstream::new(&codestream), ())
        .map_err(|e| corrupt(&format!("image header: {e}")))?;
    Ok((header.width_with_orientation(), header.height_with_orientation()))
}

/// The decoder's allocation budget for an image of this size.
fn budget(width: u32, height: u32) -> u64 {
    u64::from(width)
        .saturating_mul(u64::from(height))
        .saturating_mul(BYTES_PER_PIXEL)
        .saturating_add(EXTRA_BYTES)
}

/// Parses the headers and frame tables of the whole file, allocating at most `budget` bytes
/// of image buffers. One thread: the worker already runs one job per core.
fn read(bytes: &[u8], budget: u64) -> Result<JxlImage, ImagingError> {
    let tracker = AllocTracker::with_limit(usize::try_from(budget).unwrap_or(usize::MAX));
    let mut uninit = JxlImage::builder()
        .pool(jxl_oxide::JxlThreadPool::none())
        .alloc_tracker(tracker)
        .build_uninit();
    uninit.feed_bytes(bytes).map_err(|e| corrupt(&e.to_string()))?;
    let mut image = match uninit.try_init().map_err(|e| corrupt(&e.to_string()))? {
        InitializeResult::Initialized(image) => image,
        InitializeResult::NeedMoreData(_) => return Err(corrupt("the file ends inside its header")),
    };
    image.finalize().map_err(|e| corrupt(&e.to_string()))?;
    if image.num_loaded_keyframes() == 0 {
        return Err(corrupt("the file ends before its first frame"));
    }
    Ok(image)
}

fn corrupt(message: &str) -> ImagingError {
    ImagingError::Corrupt(format!("JPEG XL: {message}"))
}
