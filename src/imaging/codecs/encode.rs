//! Writing every output format from decoded pixels only, so EXIF (GPS!), XMP, ICC and comments
//! of the input never reach an output.

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType as PngFilter};
use image::codecs::{
    avif::AvifEncoder, bmp::BmpEncoder, gif::GifEncoder, png::PngEncoder, tiff::TiffEncoder,
};
use image::DynamicImage;

use super::format::Format;
use super::jpeg;
use crate::imaging::error::ImagingError;
use crate::imaging::ops::alpha::flatten_on_white;

/// Default quality per lossy format when the pipeline names none.
pub(crate) fn default_quality(format: Format) -> u8 {
    match format {
        Format::Webp => 80,
        Format::Avif => 70,
        _ => 85,
    }
}

/// rav1e speed 1 (slowest) – 10 (fastest): even 10 takes about a second for 800×600 on one core.
const AVIF_SPEED: u8 = 10;
/// NeuQuant sampling for GIF palettes, 1 (best) – 30 (fastest).
const GIF_SPEED: i32 = 10;
/// PNG outputs of at most this many pixels (64×64) use the fast deflate (fdeflate, no tables to
/// set up); larger ones zlib's default level.
const PNG_FAST_PIXELS: u64 = 64 * 64;

/// libwebp's largest side.
const WEBP_MAX_SIDE: u32 = 16_383;

/// Encodes `img` as `format`; `quality` (1–100) applies to JPEG, WebP (lossy) and AVIF, and
/// `jpeg_optimize` to JPEG only.
pub(crate) fn encode(
    img: &DynamicImage,
    format: Format,
    quality: Option<u8>,
    jpeg_optimize: bool,
) -> Result<Vec<u8>, ImagingError> {
    let quality = quality.unwrap_or_else(|| default_quality(format)).clamp(1, 100);
    let fail = |message: String| ImagingError::Encode { format, message };
    let mut out = Cursor::new(Vec::new());
    match format {
        Format::Jpeg => {
            let flat;
            let src = if img.color().has_alpha() {
                flat = flatten_on_white(img);
                &flat
            } else {
                img
            };
            return jpeg::encode(src, quality, jpeg_optimize).map_err(fail);
        }
        Format::Webp => return encode_webp(img, quality).map_err(fail),
        // `image` defaults to its fastest setting, which made outputs several times larger than
        // the inputs; the default zlib level with adaptive filters is the usual trade-off. Except
        // for icons: zlib's compressor zeroes about 300 KB of tables per image, which cost more
        // than the compression itself below [`PNG_FAST_PIXELS`] (perf over 10 000 16×16 jobs:
        // 17 % of the worker's CPU in the compressor's set-up).
        Format::Png => img.write_with_encoder(PngEncoder::new_with_quality(
            &mut out,
            if u64::from(img.width()) * u64::from(img.height()) <= PNG_FAST_PIXELS {
                CompressionType::Fast
            } else {
                CompressionType::Default
            },
            PngFilter::Adaptive,
        )),
        Format::Gif => rgba(img).write_with_encoder(GifEncoder::new_with_speed(&mut out, GIF_SPEED)),
        Format::Bmp => img.write_with_encoder(BmpEncoder::new(&mut out)),
        Format::Tiff => without_grey_alpha(img).write_with_encoder(TiffEncoder::new(&mut out)),
        Format::Avif => {
            colour(img).write_with_encoder(AvifEncoder::new_with_speed_quality(&mut out, AVIF_SPEED, quality))
        }
        // Read-only formats: the pipeline parser refuses them as outputs.
        Format::Heic | Format::Heif | Format::Jxl => {
            return Err(fail(format!("{format} output is not supported")))
        }
    }
    .map_err(|e| fail(e.to_string()))?;
    Ok(out.into_inner())
}

/// Lossy WebP through libwebp (alpha kept, compressed lossily too).
fn encode_webp(img: &DynamicImage, quality: u8) -> Result<Vec<u8>, String> {
    if img.width() > WEBP_MAX_SIDE || img.height() > WEBP_MAX_SIDE {
        return Err(format!(
            "WebP is limited to {WEBP_MAX_SIDE} pixels a side, the image is {}x{}",
            img.width(),
            img.height()
        ));
    }
    let src = colour(img);
    let encoder = match &*src {
        DynamicImage::ImageRgba8(b) => webp::Encoder::from_rgba(b.as_raw(), b.width(), b.height()),
        DynamicImage::ImageRgb8(b) => webp::Encoder::from_rgb(b.as_raw(), b.width(), b.height()),
        _ => return Err("unexpected pixel layout".into()),
    };
    let memory = encoder
        .encode_simple(false, f32::from(quality))
        .map_err(|e| format!("libwebp: {e:?}"))?;
    Ok(memory.to_vec())
}

/// RGB(A) for encoders that take no grey: grey becomes RGB, grey+alpha RGBA.
fn colour(img: &DynamicImage) -> std::borrow::Cow<'_, DynamicImage> {
    match img {
        DynamicImage::ImageLuma8(_) => std::borrow::Cow::Owned(DynamicImage::ImageRgb8(img.to_rgb8())),
        DynamicImage::ImageLumaA8(_) => std::borrow::Cow::Owned(DynamicImage::ImageRgba8(img.to_rgba8())),
        _ => std::borrow::Cow::Borrowed(img),
    }
}

fn rgba(img: &DynamicImage) -> std::borrow::Cow<'_, DynamicImage> {
    match img {
        DynamicImage::ImageRgba8(_) => std::borrow::Cow::Borrowed(img),
        _ => std::borrow::Cow::Owned(DynamicImage::ImageRgba8(img.to_rgba8())),
    }
}

/// TIFF writes grey and RGB(A) but not grey+alpha.
fn without_grey_alpha(img: &DynamicImage) -> std::borrow::Cow<'_, DynamicImage> {
    match img {
        DynamicImage::ImageLumaA8(_) => std::borrow::Cow::Owned(DynamicImage::ImageRgba8(img.to_rgba8())),
        _ => std::borrow::Cow::Borrowed(img),
    }
}
