//! Alpha compositing: for outputs that cannot carry transparency, and for a pipeline's
//! `background`.

use image::DynamicImage;

use crate::imaging::pipeline::Colour;

/// Composites `img` over `bg` ("over", on the encoded values as browsers do). An opaque `bg`
/// gives an image without alpha; a translucent one keeps the combined alpha.
pub(crate) fn flatten_on(img: &DynamicImage, bg: Colour) -> DynamicImage {
    if !img.color().has_alpha() {
        return img.clone();
    }
    if bg.a == 255 && bg.r == 255 && bg.g == 255 && bg.b == 255 {
        return flatten_on_white(img);
    }
    let src = img.to_rgba8();
    let ab = f32::from(bg.a) / 255.0;
    let mut out = image::RgbaImage::new(src.width(), src.height());
    for (o, p) in out.pixels_mut().zip(src.pixels()) {
        let a = f32::from(p.0[3]) / 255.0;
        let alpha = a + ab * (1.0 - a);
        let mix = |c: u8, b: u8| {
            if alpha <= 0.0 {
                0
            } else {
                ((f32::from(c) * a + f32::from(b) * ab * (1.0 - a)) / alpha)
                    .round()
                    .clamp(0.0, 255.0) as u8
            }
        };
        o.0 = [
            mix(p.0[0], bg.r),
            mix(p.0[1], bg.g),
            mix(p.0[2], bg.b),
            (alpha * 255.0).round() as u8,
        ];
    }
    let out = DynamicImage::ImageRgba8(out);
    if bg.a == 255 {
        DynamicImage::ImageRgb8(out.to_rgb8())
    } else {
        out
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
