//! Reading and writing image files. What the codecs share lives here, so no codec file imports
//! another one back: the decoded-image type and the mapping of the `image` crate's errors.
//!
//! `probe` checks a header before any pixel is decoded; `decode` dispatches to `jpeg` (MozJPEG),
//! `heif` (libheif: HEIC, HEIF, AVIF), `jxl` (jxl-oxide: JPEG XL) or the `image` crate's
//! decoders and converts to sRGB with `colour`; `encode` writes every output format; `format`
//! names and sniffs formats.

use image::error::LimitError;
use image::metadata::Orientation;
use image::{DynamicImage, ImageError};

use crate::imaging::error::ImagingError;

pub(super) mod animation;
mod colour;
pub(super) mod decode;
pub(super) mod encode;
pub(super) mod format;
mod heif;
mod jpeg;
mod jxl;
pub(super) mod probe;

/// A decoded input, normalised to `Luma8`, `LumaA8`, `Rgb8` or `Rgba8`.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    /// The EXIF orientation, applied by the caller when the pipeline asks for it.
    pub orientation: Option<Orientation>,
}

/// Maps an `image` crate error to ours. `on_limits` says what hitting a decoder limit means
/// where the error came from: while reading a header it is damage, while decoding an image whose
/// header passed the pixel check it means the image is too large.
fn from_image_error(e: ImageError, on_limits: impl FnOnce(LimitError) -> ImagingError) -> ImagingError {
    match e {
        ImageError::Unsupported(u) => ImagingError::Unsupported(u.to_string()),
        ImageError::Limits(l) => on_limits(l),
        other => ImagingError::Corrupt(other.to_string()),
    }
}
