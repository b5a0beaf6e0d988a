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
    let (width, height) = if format == Format::Jpeg {
        jpeg_dimensions(bytes)
    } else {
        ImageReader::with_format(Cursor::new(bytes), image_format).into_dimensions()
    }
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

/// A JPEG's dimensions from its header, as `image`'s JPEG reader reads them (zune-jpeg with the
/// same options, its errors mapped the same way), but on `bytes` in place: that reader copies
/// the whole input into a buffer of its own first, which for a 20 MB upload was 20 MB more held
/// by the API per upload being checked.
fn jpeg_dimensions(bytes: &[u8]) -> image::ImageResult<(u32, u32)> {
    use image::error::{DecodingError, ImageError, LimitError, LimitErrorKind, UnsupportedError};
    use zune_jpeg::errors::DecodeErrors;
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder =
        zune_jpeg::JpegDecoder::new_with_options(zune_core::bytestream::ZCursor::new(bytes), options);
    let jpeg = || image::ImageFormat::Jpeg.into();
    decoder.decode_headers().map_err(|e| match e {
        DecodeErrors::Unsupported(desc) => ImageError::Unsupported(UnsupportedError::from_format_and_kind(
            jpeg(),
            image::error::UnsupportedErrorKind::GenericFeature(format!("{desc:?}")),
        )),
        DecodeErrors::LargeDimensions(_) => {
            ImageError::Limits(LimitError::from_kind(LimitErrorKind::DimensionError))
        }
        e => ImageError::Decoding(DecodingError::new(jpeg(), e)),
    })?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| ImageError::Decoding(DecodingError::new(jpeg(), "no frame header")))?;
    Ok((width as u32, height as u32))
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, GrayImage, RgbImage};

    /// What `image`'s own reader says of `bytes` as a JPEG: the behaviour `jpeg_dimensions` keeps.
    fn image_says(bytes: &[u8]) -> Result<(u32, u32), String> {
        ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Jpeg)
            .into_dimensions()
            .map_err(|e| e.to_string())
    }

    fn jpegs() -> Vec<Vec<u8>> {
        let colour = DynamicImage::ImageRgb8(RgbImage::from_fn(37, 23, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x + y) * 3) as u8])
        }));
        let grey = DynamicImage::ImageLuma8(GrayImage::from_fn(300, 2, |x, _| image::Luma([x as u8])));
        let mut out = Vec::new();
        for img in [&colour, &grey] {
            // `image`'s baseline encoder, and ours (mozjpeg: progressive, optimised tables).
            let mut plain = Cursor::new(Vec::new());
            img.write_to(&mut plain, image::ImageFormat::Jpeg)
                .expect("encode");
            out.push(plain.into_inner());
            out.push(
                crate::imaging::codecs::encode::encode(img, Format::Jpeg, Some(80), true).expect("encode"),
            );
        }
        out
    }

    #[test]
    fn jpeg_dimensions_answer_as_images_reader_does_on_whole_cut_and_damaged_files() {
        let mut cases = 0;
        for jpeg in jpegs() {
            let mut inputs = vec![jpeg.clone()];
            // Every cut through the headers, and some through the scan.
            let header_end = jpeg.len().min(700);
            inputs.extend((0..header_end).map(|n| jpeg[..n].to_vec()));
            inputs.extend((header_end..jpeg.len()).step_by(97).map(|n| jpeg[..n].to_vec()));
            // Single bytes changed through the headers.
            for at in (2..header_end).step_by(3) {
                for value in [0x00, 0xff, 0xc0, jpeg[at].wrapping_add(1)] {
                    let mut damaged = jpeg.clone();
                    damaged[at] = value;
                    inputs.push(damaged);
                }
            }
            for input in inputs {
                let ours = jpeg_dimensions(&input).map_err(|e| e.to_string());
                assert_eq!(ours, image_says(&input), "{} bytes", input.len());
                cases += 1;
            }
        }
        assert!(cases > 3000, "only {cases} cases");
        // The whole files were read as their sizes.
        let sizes: Vec<_> = jpegs().iter().map(|j| jpeg_dimensions(j).ok()).collect();
        assert_eq!(
            sizes,
            [Some((37, 23)), Some((37, 23)), Some((300, 2)), Some((300, 2))]
        );
    }
}
