//! Neighbourhood filters: Gaussian blur and the unsharp mask.

use image::DynamicImage;

use super::pixels::{colour_bytes, raw_bytes};

/// Gaussian blur; large radii use the box-blur approximation, whose cost does not grow with
/// sigma.
pub(crate) fn blur(img: &DynamicImage, sigma: f32) -> DynamicImage {
    if sigma <= 3.0 {
        img.blur(sigma)
    } else {
        img.fast_blur(sigma)
    }
}

/// Unsharp mask: `pixel + amount × (pixel − blurred)`, with a one-pixel Gaussian.
pub(crate) fn sharpen(mut img: DynamicImage, amount: f32) -> DynamicImage {
    let blurred = img.blur(1.0);
    let (Some(dst), Some(src)) = (colour_bytes(&mut img), raw_bytes(&blurred)) else {
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
