//! The per-image operations of a pipeline, over 8-bit images (`Luma8`, `LumaA8`, `Rgb8`,
//! `Rgba8`). Colour operations leave alpha alone.

use image::metadata::Orientation;
use image::DynamicImage;

pub(crate) mod resize;

use crate::imaging::error::ImagingError;
use crate::imaging::limits::Limits;
use crate::imaging::pipeline::{Flip, Step};

/// Applies one step. `logical` carries the full-resolution size of a pre-shrunk JPEG up to the
/// first resize (see [`resize::dct_shrink`]); every other step leaves it unused.
pub(crate) fn apply(
    step: &Step,
    img: DynamicImage,
    logical: &mut Option<(u32, u32)>,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    Ok(match *step {
        Step::Crop { x, y, width, height } => crop(img, x, y, width, height)?,
        Step::Rotate { degrees } => {
            if degrees != 180 {
                *logical = logical.map(|(w, h)| (h, w));
            }
            match degrees {
                90 => img.rotate90(),
                180 => img.rotate180(),
                270 => img.rotate270(),
                other => return Err(ImagingError::Invalid(format!("cannot rotate by {other} degrees"))),
            }
        }
        Step::Flip {
            direction: Flip::Horizontal,
        } => img.fliph(),
        Step::Flip {
            direction: Flip::Vertical,
        } => img.flipv(),
        Step::Resize {
            width,
            height,
            fit,
            upscale,
        } => resize::resize_step(img, logical.take(), width, height, fit, upscale, limits)?,
        Step::Grayscale => img.grayscale(),
        Step::Brightness { value } => img.brighten((value * 255 + value.signum() * 50) / 100),
        Step::Contrast { value } => contrast(img, value),
        Step::Blur { sigma } => blur(&img, sigma),
        Step::Sharpen { amount } => sharpen(img, amount),
    })
}

/// Whether an EXIF orientation turns the image on its side.
pub(crate) fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

fn crop(img: DynamicImage, x: u32, y: u32, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
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

/// Scales distance from mid-grey by `((100 + value) / 100)²`: −100 gives flat grey.
fn contrast(mut img: DynamicImage, value: i32) -> DynamicImage {
    let factor = ((100.0 + value as f32) / 100.0).powi(2);
    let lut: Vec<u8> = (0..=255u8)
        .map(|v| {
            (((f32::from(v) / 255.0 - 0.5) * factor + 0.5) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    map_colour_channels(&mut img, |v| lut[usize::from(v)]);
    img
}

/// Gaussian blur; large radii use the box-blur approximation, whose cost does not grow with
/// sigma.
fn blur(img: &DynamicImage, sigma: f32) -> DynamicImage {
    if sigma <= 3.0 {
        img.blur(sigma)
    } else {
        img.fast_blur(sigma)
    }
}

/// Unsharp mask: `pixel + amount × (pixel − blurred)`, with a one-pixel Gaussian.
fn sharpen(mut img: DynamicImage, amount: f32) -> DynamicImage {
    let blurred = img.blur(1.0);
    let (Some(dst), Some(src)) = (colour_bytes(&mut img), blurred_bytes(&blurred)) else {
        return img;
    };
    let (channels, alpha) = dst.1;
    for (i, (d, s)) in dst.0.iter_mut().zip(src).enumerate() {
        if alpha && i % channels == channels - 1 {
            continue;
        }
        let v = f32::from(*d);
        *d = (v + amount * (v - f32::from(*s))).round().clamp(0.0, 255.0) as u8;
    }
    img
}

/// The raw bytes of an 8-bit image with its channel count and whether the last one is alpha.
type Raw<'a> = (&'a mut [u8], (usize, bool));

fn colour_bytes(img: &mut DynamicImage) -> Option<Raw<'_>> {
    Some(match img {
        DynamicImage::ImageLuma8(b) => (&mut **b, (1, false)),
        DynamicImage::ImageLumaA8(b) => (&mut **b, (2, true)),
        DynamicImage::ImageRgb8(b) => (&mut **b, (3, false)),
        DynamicImage::ImageRgba8(b) => (&mut **b, (4, true)),
        _ => return None,
    })
}

fn blurred_bytes(img: &DynamicImage) -> Option<&[u8]> {
    match img {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => Some(img.as_bytes()),
        _ => None,
    }
}

fn map_colour_channels(img: &mut DynamicImage, f: impl Fn(u8) -> u8) {
    if let Some((bytes, (channels, alpha))) = colour_bytes(img) {
        for (i, v) in bytes.iter_mut().enumerate() {
            if !(alpha && i % channels == channels - 1) {
                *v = f(*v);
            }
        }
    }
}

/// Composites any alpha onto white, for formats without transparency (JPEG) — a plain
/// conversion would keep whatever colour hides under transparent pixels, often black.
pub(crate) fn flatten_on_white(img: &DynamicImage) -> DynamicImage {
    let over_white = |c: u8, a: u8| {
        let (c, a) = (u32::from(c), u32::from(a));
        ((c * a + 255 * (255 - a) + 127) / 255) as u8
    };
    match img {
        DynamicImage::ImageLumaA8(b) => {
            DynamicImage::ImageLuma8(image::GrayImage::from_fn(b.width(), b.height(), |x, y| {
                let p = b.get_pixel(x, y).0;
                image::Luma([over_white(p[0], p[1])])
            }))
        }
        DynamicImage::ImageRgba8(b) => {
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(b.width(), b.height(), |x, y| {
                let [r, g, bl, a] = b.get_pixel(x, y).0;
                image::Rgb([over_white(r, a), over_white(g, a), over_white(bl, a)])
            }))
        }
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => img.clone(),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}
