//! Raw access to the channels of the four 8-bit layouts, for the per-pixel operations.

use image::DynamicImage;

/// The raw bytes of an 8-bit image with its channel count and whether the last one is alpha.
pub(crate) type Raw<'a> = (&'a mut [u8], (usize, bool));

pub(crate) fn colour_bytes(img: &mut DynamicImage) -> Option<Raw<'_>> {
    Some(match img {
        DynamicImage::ImageLuma8(b) => (&mut **b, (1, false)),
        DynamicImage::ImageLumaA8(b) => (&mut **b, (2, true)),
        DynamicImage::ImageRgb8(b) => (&mut **b, (3, false)),
        DynamicImage::ImageRgba8(b) => (&mut **b, (4, true)),
        _ => return None,
    })
}

/// Maps every colour channel through `f`, leaving alpha as it is.
pub(crate) fn map_colour_channels(img: &mut DynamicImage, f: impl Fn(u8) -> u8) {
    if let Some((bytes, (channels, alpha))) = colour_bytes(img) {
        for (i, v) in bytes.iter_mut().enumerate() {
            if !(alpha && i % channels == channels - 1) {
                *v = f(*v);
            }
        }
    }
}

/// The bytes of an image in one of the four 8-bit layouts, read-only; `None` for any other.
pub(crate) fn raw_bytes(img: &DynamicImage) -> Option<&[u8]> {
    match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => Some(img.as_bytes()),
        _ => None,
    }
}
