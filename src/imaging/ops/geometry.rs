//! Operations that move pixels without resampling them: crop, rotate, flip, and the EXIF
//! orientation. `logical` is the full-resolution size a pre-shrunk JPEG stands for (see
//! `resize::dct_shrink`); whatever swaps the axes swaps it too.

use image::metadata::Orientation;
use image::DynamicImage;

use crate::imaging::error::ImagingError;
use crate::imaging::pipeline::Flip;

/// Applies the EXIF orientation, as `auto_orient` asks.
pub(crate) fn auto_orient(img: &mut DynamicImage, o: Orientation, logical: &mut Option<(u32, u32)>) {
    img.apply_orientation(o);
    if swaps_axes(o) {
        *logical = logical.map(|(w, h)| (h, w));
    }
}

/// Whether an EXIF orientation turns the image on its side.
fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Rotates clockwise by 90, 180 or 270 degrees.
pub(crate) fn rotate(
    img: DynamicImage,
    degrees: u16,
    logical: &mut Option<(u32, u32)>,
) -> Result<DynamicImage, ImagingError> {
    let rotated = match degrees {
        90 => img.rotate90(),
        180 => img.rotate180(),
        270 => img.rotate270(),
        other => return Err(ImagingError::Invalid(format!("cannot rotate by {other} degrees"))),
    };
    if degrees != 180 {
        *logical = logical.map(|(w, h)| (h, w));
    }
    Ok(rotated)
}

/// Mirrors along an axis.
pub(crate) fn flip(img: DynamicImage, direction: Flip) -> DynamicImage {
    match direction {
        Flip::Horizontal => img.fliph(),
        Flip::Vertical => img.flipv(),
    }
}

/// Cuts out `width×height` at `x,y`, which must lie inside the image.
pub(crate) fn crop(
    img: DynamicImage,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
) -> Result<DynamicImage, ImagingError> {
    let inside = u64::from(x) + u64::from(width) <= u64::from(img.width())
        && u64::from(y) + u64::from(height) <= u64::from(img.height());
    if !inside || width == 0 || height == 0 {
        return Err(ImagingError::Invalid(format!(
            "crop {x},{y},{width},{height} does not lie inside the {}x{} image",
            img.width(),
            img.height()
        )));
    }
    Ok(img.crop_imm(x, y, width, height))
}
