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
    /// HEIF with HEVC-coded images (what phones write): brands `heic`, `heix`, `hevc`, ….
    Heic,
    /// HEIF with another or no declared codec (`mif1`, `msf1`): decoded by the same library.
    Heif,
    /// JPEG XL, as a bare codestream or in its ISO BMFF container.
    Jxl,
}

/// The JPEG XL codestream signature, and its container's first box (`JXL `, 12 bytes).
const JXL_CODESTREAM: &[u8] = &[0xFF, 0x0A];
const JXL_CONTAINER: &[u8] = b"\0\0\0\x0CJXL \r\n\x87\n";
/// HEVC-coded HEIF brands (ISO/IEC 23008-12 Annex B); `mif1`/`msf1` are the generic ones.
const HEIC_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs",
];
const HEIF_BRANDS: &[&[u8; 4]] = &[b"mif1", b"msf1"];
const AVIF_BRANDS: &[&[u8; 4]] = &[b"avif", b"avis"];

impl Format {
    /// Detects the format from the file's first bytes; never trusts names or headers.
    pub fn sniff(bytes: &[u8]) -> Option<Format> {
        if bytes.starts_with(JXL_CODESTREAM) || bytes.starts_with(JXL_CONTAINER) {
            return Some(Format::Jxl);
        }
        if let Some(f) = sniff_ftyp(bytes) {
            return Some(f);
        }
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

    /// The `image` crate's name for it; `None` for the formats it has no codec for here.
    pub(crate) fn to_image_format(self) -> Option<ImageFormat> {
        Some(match self {
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Gif => ImageFormat::Gif,
            Format::Webp => ImageFormat::WebP,
            Format::Bmp => ImageFormat::Bmp,
            Format::Tiff => ImageFormat::Tiff,
            Format::Avif => ImageFormat::Avif,
            Format::Heic | Format::Heif | Format::Jxl => return None,
        })
    }

    /// Parses a user-facing name (`jpeg`, `jpg`, `png`, …), of a format read or written: an
    /// output format must also pass [`Format::can_write`].
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Format::Jpeg,
            "png" => Format::Png,
            "gif" => Format::Gif,
            "webp" => Format::Webp,
            "bmp" => Format::Bmp,
            "tiff" | "tif" => Format::Tiff,
            "avif" => Format::Avif,
            "heic" => Format::Heic,
            "heif" => Format::Heif,
            "jxl" => Format::Jxl,
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
            Format::Heic => "image/heic",
            Format::Heif => "image/heif",
            Format::Jxl => "image/jxl",
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
            Format::Heic => "heic",
            Format::Heif => "heif",
            Format::Jxl => "jxl",
        }
    }

    /// Whether we can decode this format: all of them (AVIF, HEIC and HEIF through libheif,
    /// JPEG XL through jxl-oxide).
    pub fn can_read(self) -> bool {
        true
    }

    /// Whether this output format can hold an animation.
    pub(crate) fn can_animate(self) -> bool {
        matches!(self, Format::Gif | Format::Webp)
    }

    /// Whether we can encode this format. HEIC/HEIF and JPEG XL are read-only: their encoders
    /// would be more C libraries (x265 is GPL) for formats browsers barely show.
    pub fn can_write(self) -> bool {
        !matches!(self, Format::Heic | Format::Heif | Format::Jxl)
    }

    /// The output format when the pipeline names none: the input's own when we can write it.
    /// Read-only formats (photos, nearly always) become JPEG, or PNG when the image has alpha
    /// (SPEC): a PNG of a photo is several times larger than the JPEG. The match is exhaustive
    /// so that a format added later has to choose here.
    pub(crate) fn default_output(self, has_alpha: bool) -> Format {
        match self {
            Format::Jpeg
            | Format::Png
            | Format::Gif
            | Format::Webp
            | Format::Bmp
            | Format::Tiff
            | Format::Avif => self,
            Format::Heic | Format::Heif | Format::Jxl if has_alpha => Format::Png,
            Format::Heic | Format::Heif | Format::Jxl => Format::Jpeg,
        }
    }

    /// The output every client reads: JPEG, or PNG when the image has alpha.
    pub(crate) fn universal_output(has_alpha: bool) -> Format {
        if has_alpha {
            Format::Png
        } else {
            Format::Jpeg
        }
    }
}

/// Reads an ISO BMFF `ftyp` box (the first box of HEIF and AVIF files): the major brand first,
/// then the compatible brands, since a file may declare the generic `mif1` as major brand and
/// name its codec (`avif`, `heic`) only among the compatible ones.
fn sniff_ftyp(bytes: &[u8]) -> Option<Format> {
    if bytes.get(4..8)? != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let major: &[u8; 4] = bytes.get(8..12)?.try_into().ok()?;
    // Box size 0 or 1 (to the end of file / 64-bit size) is not used for `ftyp`; a size past
    // the data only limits how many compatible brands are read.
    let end = size.clamp(16, bytes.len().max(16)).min(bytes.len());
    let compatible = bytes.get(16..end).unwrap_or_default().chunks_exact(4);
    let brands = std::iter::once(&major[..]).chain(compatible);
    let mut generic = false;
    for brand in brands {
        if AVIF_BRANDS.iter().any(|b| &b[..] == brand) {
            return Some(Format::Avif);
        }
        if HEIC_BRANDS.iter().any(|b| &b[..] == brand) {
            return Some(Format::Heic);
        }
        generic |= HEIF_BRANDS.iter().any(|b| &b[..] == brand);
    }
    generic.then_some(Format::Heif)
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}
