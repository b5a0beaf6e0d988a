//! Alpha compositing for outputs that cannot carry transparency.

use image::DynamicImage;

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
