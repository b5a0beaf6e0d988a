//! Reading inputs: the header check that runs before any pixel is decoded, and decoding under
//! strict limits into one of the four 8-bit layouts the operations work on.

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};

use super::{colour, jpeg};
use crate::imaging::{check_frames, Format, ImagingError, Limits, Probe};

/// A decoded input, normalised to `Luma8`, `LumaA8`, `Rgb8` or `Rgba8`.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    /// The EXIF orientation, applied by the caller when the pipeline asks for it.
    pub orientation: Option<Orientation>,
}

pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ImagingError> {
    let format = Format::sniff(bytes)
        .ok_or_else(|| ImagingError::Unsupported("unrecognised file signature".into()))?;
    if !format.can_read() {
        return Err(ImagingError::Unsupported(format!(
            "{format} input cannot be decoded"
        )));
    }
    if format == Format::Png {
        check_png_palette(bytes)?;
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_format());
    let (width, height) = contain_panics(|| reader.into_dimensions().map_err(|e| classify(e, None)))?;
    // The cheap check first, so a huge canvas is refused before its frames are walked.
    check_frames(width, height, 1, limits)?;
    let frames = match format {
        Format::Gif => count_gif_frames(bytes, width, height, limits)?,
        Format::Webp => webp_frames(bytes)?,
        _ => 1,
    };
    check_frames(width, height, frames, limits)?;
    Ok(Probe {
        format,
        width,
        height,
    })
}

/// Refuses a PNG whose palette is not whole RGB entries (1–256 of them). png 0.18.1 indexes past
/// the end of such a `PLTE` while expanding it (found by `fuzz/` target `image`); the panic
/// would be contained, but the upload should be refused as corrupt, not accepted and failed.
fn check_png_palette(bytes: &[u8]) -> Result<(), ImagingError> {
    let mut at = 8usize;
    while let Some(header) = bytes.get(at..at.saturating_add(8)) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        match &header[4..8] {
            b"PLTE" if len == 0 || len % 3 != 0 || len > 3 * 256 => {
                return Err(ImagingError::Corrupt(format!(
                    "PNG palette of {len} bytes is not 1 to 256 RGB entries"
                )))
            }
            // The palette must come before the image data.
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

/// Counts GIF frames without LZW-decoding them, stopping as soon as the total is over the limit.
fn count_gif_frames(bytes: &[u8], width: u32, height: u32, limits: &Limits) -> Result<u64, ImagingError> {
    let mut options = gif::DecodeOptions::new();
    options.skip_frame_decoding(true);
    options.set_color_output(gif::ColorOutput::Indexed);
    let mut decoder = options
        .read_info(Cursor::new(bytes))
        .map_err(|e| ImagingError::Corrupt(format!("GIF: {e}")))?;
    let mut frames = 0u64;
    loop {
        match decoder.next_frame_info() {
            Ok(Some(_)) => {
                frames += 1;
                check_frames(width, height, frames, limits)?;
            }
            Ok(None) => break,
            // Damage after the first frame does not stop us using the first frame.
            Err(e) if frames == 0 => return Err(ImagingError::Corrupt(format!("GIF: {e}"))),
            Err(_) => break,
        }
    }
    Ok(frames.max(1))
}

fn webp_frames(bytes: &[u8]) -> Result<u64, ImagingError> {
    let decoder = image_webp::WebPDecoder::new(Cursor::new(bytes))
        .map_err(|e| ImagingError::Corrupt(format!("WebP: {e}")))?;
    Ok(u64::from(decoder.num_frames().max(1)))
}

/// Decodes the (first frame of the) image. `shrink` (1, 2, 4 or 8) lets the JPEG decoder scale
/// down in the DCT domain; other formats ignore it.
pub(crate) fn decode(
    bytes: &[u8],
    probe: &Probe,
    shrink: u32,
    limits: &Limits,
) -> Result<Decoded, ImagingError> {
    if probe.format == Format::Jpeg {
        // `None`: a CMYK/YCCK JPEG, which the general decoder converts to RGB.
        if let Some(decoded) = jpeg::decode(bytes, (probe.width, probe.height), shrink)? {
            return Ok(decoded);
        }
    }
    contain_panics(|| decode_general(bytes, probe, limits))
}

fn decode_general(bytes: &[u8], probe: &Probe, limits: &Limits) -> Result<Decoded, ImagingError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), probe.format.to_image_format());
    reader.limits(decoder_limits(limits));
    let refused = |e| classify(e, Some((probe, limits)));
    let mut decoder = reader.into_decoder().map_err(refused)?;
    let orientation = decoder.orientation().ok();
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = to_8bit(DynamicImage::from_decoder(decoder).map_err(refused)?);
    if let Some(icc) = icc {
        colour::to_srgb(&mut image, &icc);
    }
    Ok(Decoded { image, orientation })
}

/// Decoder limits derived from `MAX_PIXELS`: no side longer than the whole budget allows and no
/// allocation beyond 16-bit RGBA of the largest accepted image, plus working room.
fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    l
}

/// Converts 16-bit, float and exotic layouts to the 8-bit layout the operations work on.
pub(crate) fn to_8bit(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(image.to_luma8()),
        DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLumaA8(image.to_luma_alpha8()),
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// Maps a decoder error to ours; a decoder limit hit during decoding counts as too large.
fn classify(e: ImageError, context: Option<(&Probe, &Limits)>) -> ImagingError {
    match e {
        ImageError::Unsupported(u) => ImagingError::Unsupported(u.to_string()),
        ImageError::Limits(l) => match context {
            Some((p, limits)) => ImagingError::TooLarge {
                width: p.width,
                height: p.height,
                pixels: u64::from(p.width) * u64::from(p.height),
                limit: limits.max_pixels,
            },
            None => ImagingError::Corrupt(l.to_string()),
        },
        other => ImagingError::Corrupt(other.to_string()),
    }
}

/// Runs a decoder so that a panic on hostile input becomes an error, not a dead worker thread.
pub(crate) fn contain_panics<T>(f: impl FnOnce() -> Result<T, ImagingError>) -> Result<T, ImagingError> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(ImagingError::Corrupt(format!(
            "decoder gave up: {}",
            panic_message(payload.as_ref())
        )))
    })
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "unknown failure".to_string()
    }
}
