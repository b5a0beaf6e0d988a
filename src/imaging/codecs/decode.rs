//! Decoding under strict limits into one of the four 8-bit layouts the operations work on:
//! JPEG through MozJPEG (`jpeg`), HEIC/HEIF/AVIF through libheif (`heif`), JPEG XL through
//! jxl-oxide (`jxl`), everything else (and CMYK JPEGs) through the `image` crate.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

use super::format::Format;
use super::probe::Probe;
use super::{colour, from_image_error, heif, jpeg, jxl, Decoded};
use crate::imaging::error::ImagingError;
use crate::imaging::limits::Limits;

/// Decodes the (first frame of the) image. `shrink` (1, 2, 4 or 8) lets the JPEG decoder scale
/// down in the DCT domain; other formats ignore it.
pub(crate) fn decode(
    bytes: &[u8],
    probe: &Probe,
    shrink: u32,
    limits: &Limits,
) -> Result<Decoded, ImagingError> {
    let size = (probe.width, probe.height);
    match probe.format {
        Format::Jpeg => {
            // `None`: a CMYK/YCCK JPEG, which the general decoder converts to RGB.
            if let Some(decoded) = jpeg::decode(bytes, size, shrink)? {
                return Ok(decoded);
            }
        }
        Format::Heic | Format::Heif | Format::Avif => return heif::decode(bytes, size, limits),
        Format::Jxl => return jxl::decode(bytes, size),
        _ => {}
    }
    decode_general(bytes, probe, limits)
}

fn decode_general(bytes: &[u8], probe: &Probe, limits: &Limits) -> Result<Decoded, ImagingError> {
    let format = probe
        .format
        .to_image_format()
        .ok_or_else(|| ImagingError::Unsupported(format!("{} input cannot be decoded", probe.format)))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    let refused = |e| {
        from_image_error(e, |_| ImagingError::TooLarge {
            width: probe.width,
            height: probe.height,
            pixels: u64::from(probe.width) * u64::from(probe.height),
            limit: limits.max_pixels,
        })
    };
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
pub(super) fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    l.max_image_width = Some(side);
    l.max_image_height = Some(side);
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    l
}

/// Converts 16-bit, float and exotic layouts to the 8-bit layout the operations work on.
fn to_8bit(image: DynamicImage) -> DynamicImage {
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
