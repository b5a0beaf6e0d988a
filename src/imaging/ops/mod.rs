//! The operations of a pipeline, over 8-bit images (`Luma8`, `LumaA8`, `Rgb8`, `Rgba8`): one
//! file per family, and [`apply`] mapping each [`Step`] to its function.

use image::DynamicImage;

use crate::imaging::error::ImagingError;
use crate::imaging::limits::Limits;
use crate::imaging::pipeline::Step;
use crate::imaging::Overlays;

pub(super) mod adjust;
pub(super) mod alpha;
pub(super) mod colour;
pub(super) mod convolve;
pub(super) mod filters;
pub(super) mod geometry;
mod pixels;
pub(super) mod resize;
mod smart;
mod watermark;

/// Applies one step. `logical` carries the full-resolution size of a pre-shrunk JPEG up to the
/// first resize (see [`resize::dct_shrink`]); geometry steps keep it in step, resize consumes it.
pub(crate) fn apply(
    step: &Step,
    img: DynamicImage,
    logical: &mut Option<(u32, u32)>,
    limits: &Limits,
    overlays: &Overlays,
) -> Result<DynamicImage, ImagingError> {
    Ok(match step {
        &Step::Crop { x, y, width, height } => geometry::crop(img, x, y, width, height)?,
        &Step::Rotate { degrees } => geometry::rotate(img, degrees, logical)?,
        &Step::Flip { direction } => geometry::flip(img, direction),
        &Step::Resize {
            width,
            height,
            fit,
            upscale,
            gravity,
            focus,
            background,
        } => {
            let target = resize::Target {
                width,
                height,
                fit,
                upscale,
                gravity,
                focus,
                background,
            };
            resize::resize_step(img, logical.take(), target, limits)?
        }
        Step::Grayscale => img.grayscale(),
        &Step::Brightness { value } => adjust::brightness(img, value),
        &Step::Contrast { value } => adjust::contrast(img, value),
        &Step::Saturation { value } => colour::saturation(img, value),
        &Step::Hue { degrees } => colour::hue(img, degrees),
        &Step::Gamma { value } => colour::gamma(img, value),
        &Step::Sepia { value } => colour::sepia(img, value),
        Step::Invert => colour::invert(img),
        &Step::Tint { color } => colour::tint(img, color),
        Step::Equalize => colour::equalize(img),
        &Step::Blur { sigma } => filters::blur(&img, sigma),
        &Step::Sharpen { amount } => filters::sharpen(img, amount),
        Step::Kernel { kernel } => convolve::kernel(img, kernel),
        &Step::Pixelate { size } => convolve::pixelate(img, size),
        &Step::Watermark {
            image,
            gravity,
            opacity,
            scale,
        } => {
            let mark = watermark::Mark {
                id: image,
                bytes: overlays.get(&image).map(Vec::as_slice),
                gravity,
                opacity,
                scale,
            };
            watermark::watermark(img, mark, limits)?
        }
    })
}
