//! The header check that runs before any pixel is decoded: format sniffing, dimensions, and for
//! animations every frame counted against the pixel limit.

use std::io::Cursor;

use image::ImageReader;

use super::format::Format;
use super::{from_image_error, heif, jxl};
use crate::imaging::error::ImagingError;
use crate::imaging::limits::{check_frames, Limits};

/// What the header of an upload says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// Frames: an animation's count (GIF, WebP), 1 for a still image.
    pub frames: u32,
}

/// Reads format and dimensions from the header only, and checks them against `limits`.
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
    // The formats the `image` crate has no decoder for here check their own headers.
    let own = match format {
        Format::Heic | Format::Heif | Format::Avif => Some(heif::probe(bytes, limits)?),
        Format::Jxl => Some(jxl::probe(bytes, limits)?),
        _ => None,
    };
    if let Some((width, height)) = own {
        // Their frames (an AVIF sequence, a JPEG XL animation) were counted against the
        // limits by their own probes; the output takes the first frame.
        return Ok(Probe {
            format,
            width,
            height,
            frames: 1,
        });
    }
    let image_format = format
        .to_image_format()
        .ok_or_else(|| ImagingError::Unsupported(format!("{format} input cannot be decoded")))?;
    let reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| from_image_error(e, |l| ImagingError::Corrupt(l.to_string())))?;
    // The cheap check first, so a huge canvas is refused before its frames are walked.
    check_frames(width, height, 1, limits)?;
    let frames = match format {
        Format::Gif => count_gif_frames(bytes, width, height, limits)?,
        Format::Webp => webp_frames(bytes)?,
        Format::Png => apng_control(bytes).map_or(1, |(frames, _)| u64::from(frames).max(1)),
        _ => 1,
    };
    check_frames(width, height, frames, limits)?;
    Ok(Probe {
        format,
        width,
        height,
        frames: u32::try_from(frames).unwrap_or(u32::MAX),
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

/// An APNG's `acTL` chunk (which must come before the image data): (frames, plays, 0 for
/// ever); `None` for a plain PNG. The frames' own `fcTL` sizes are never larger than the canvas
/// (the decoder checks), so canvas × count bounds the pixels.
pub(super) fn apng_control(bytes: &[u8]) -> Option<(u32, u32)> {
    let mut at = 8usize;
    while let Some(header) = bytes.get(at..at.saturating_add(16)) {
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        match &header[4..8] {
            b"acTL" => {
                let frames = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
                let plays = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
                return Some((frames, plays));
            }
            b"IDAT" | b"IEND" => break,
            _ => {}
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    None
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
