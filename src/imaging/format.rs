//! Image formats: sniffing from magic bytes, MIME types, and encoding.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat};
use serde::{Deserialize, Serialize};

use super::ImagingError;

/// A format we read and/or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    Bmp,
    Tiff,
    Avif,
}

impl Format {
    /// Detects the format from the file's first bytes; never trusts names or headers.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        let f = image::guess_format(bytes).ok()?;
        Format::from_image_format(f)
    }

    fn from_image_format(f: ImageFormat) -> Option<Format> {
        Some(match f {
            ImageFormat::Jpeg => Format::Jpeg,
            ImageFormat::Png => Format::Png,
            ImageFormat::Gif => Format::Gif,
            ImageFormat::WebP => Format::Webp,
            ImageFormat::Bmp => Format::Bmp,
            ImageFormat::Tiff => Format::Tiff,
            ImageFormat::Avif => Format::Avif,
            _ => return None,
        })
    }

    pub(crate) fn to_image_format(self) -> ImageFormat {
        match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Gif => ImageFormat::Gif,
            Format::Webp => ImageFormat::WebP,
            Format::Bmp => ImageFormat::Bmp,
            Format::Tiff => ImageFormat::Tiff,
            Format::Avif => ImageFormat::Avif,
        }
    }

    /// Parses a user-facing name (`jpeg`, `jpg`, `png`, …).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Format::Jpeg,
            "png" => Format::Png,
            "gif" => Format::Gif,
            "webp" => Format::Webp,
            "bmp" => Format::Bmp,
            "tiff" | "tif" => Format::Tiff,
            "avif" => Format::Avif,
            _ => return None,
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Avif => "image/avif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Bmp => "bmp",
            Format::Tiff => "tiff",
            Format::Avif => "avif",
        }
    }

    /// Whether we can encode this format.
    pub fn can_write(self) -> bool {
        !matches!(self, Format::Avif)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// Encodes `img` as `format`; `quality` (1–100) applies to lossy formats.
pub(crate) fn encode(
    img: &DynamicImage,
    format: Format,
    quality: Option<u8>,
) -> Result<Vec<u8>, ImagingError> {
    let err = |e: image::ImageError| ImagingError::Encode {
        format,
        message: e.to_string(),
    };
    let mut out = Cursor::new(Vec::new());
    match format {
        Format::Jpeg => {
            // JPEG has no alpha: flatten to RGB rather than let the encoder refuse it.
            let rgb = DynamicImage::ImageRgb8(img.to_rgb8());
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.unwrap_or(85));
            rgb.write_with_encoder(enc).map_err(err)?;
        }
        other => {
            let img = match other {
                Format::Png | Format::Tiff | Format::Webp => img.clone(),
                _ => DynamicImage::ImageRgba8(img.to_rgba8()),
            };
            img.write_to(&mut out, other.to_image_format()).map_err(err)?;
        }
    }
    Ok(out.into_inner())
}
