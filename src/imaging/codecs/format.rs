//! Image formats: sniffing from magic bytes, names, MIME types and file extensions.

use image::ImageFormat;
use serde::{Deserialize, Serialize};

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

    /// The MIME type sent in `Content-Type`.
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

    /// The usual file extension, without the dot.
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

    /// Whether we can decode this format. AVIF is write-only: decoding it needs the dav1d C
    /// library, which is not on our build machines.
    pub fn can_read(self) -> bool {
        !matches!(self, Format::Avif)
    }

    /// The output format when the pipeline names none: the input's own when we can write it,
    /// else PNG. Every format we read we also write, so today every arm keeps the input's; the
    /// match is exhaustive so that a read-only format added later has to choose here.
    /// Whether this output format can hold an animation.
    pub(crate) fn can_animate(self) -> bool {
        matches!(self, Format::Gif | Format::Webp)
    }

    pub(crate) fn default_output(self) -> Format {
        match self {
            Format::Jpeg
            | Format::Png
            | Format::Gif
            | Format::Webp
            | Format::Bmp
            | Format::Tiff
            | Format::Avif => self,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}
