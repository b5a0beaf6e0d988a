//! The small preview made with every job, for lists and the UI.

use image::DynamicImage;

use super::codecs::encode;
use super::codecs::format::Format;
use super::error::ImagingError;
use super::ops::resize;

/// Longest side of the preview made with every job.
pub const THUMBNAIL_SIZE: u32 = 256;

/// The preview stored with each job: JPEG, or WebP when the image has transparency. Never with
/// optimised Huffman tables: the second pass would cost more than the rest of the preview.
pub(crate) fn thumbnail(img: &DynamicImage) -> Result<(Vec<u8>, Format), ImagingError> {
    let small = resize::fit_within(img, THUMBNAIL_SIZE)?;
    let small = small.as_ref().unwrap_or(img);
    let format = if small.color().has_alpha() {
        Format::Webp
    } else {
        Format::Jpeg
    };
    Ok((encode::encode(small, format, Some(75), false)?, format))
}
