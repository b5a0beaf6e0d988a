//! Colour adjustments, one pixel at a time and alpha left alone: brightness and contrast
//! (grayscale is the `image` crate's own).

use image::DynamicImage;

use super::pixels::map_colour_channels;

/// Adds `value` percent of full scale (−100..100) to every colour channel.
pub(crate) fn brightness(img: DynamicImage, value: i32) -> DynamicImage {
    img.brighten((value * 255 + value.signum() * 50) / 100)
}

/// Scales distance from mid-grey by `((100 + value) / 100)²`: −100 gives flat grey.
pub(crate) fn contrast(mut img: DynamicImage, value: i32) -> DynamicImage {
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
