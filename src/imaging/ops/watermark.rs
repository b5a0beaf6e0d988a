//! Watermarks: another image's processed output drawn over this one.
//!
//! The overlay arrives as encoded bytes (the worker loads it from the database; imaging stays
//! free of I/O), is read under the same limits as any upload, scaled to a share of this
//! image's width (up or down; never taller than this image), and composited "over" at an
//! opacity, with its own alpha respected. A mark at an edge keeps a margin of 2 % of the
//! shorter side, so a corner logo does not touch the frame.

use image::{DynamicImage, Rgba, RgbaImage};
use uuid::Uuid;

use super::resize::{self, Target};
use crate::imaging::codecs::{decode, probe};
use crate::imaging::error::ImagingError;
use crate::imaging::limits::Limits;
use crate::imaging::pipeline::{Fit, Gravity};

/// What a watermark step asks for.
pub(crate) struct Mark<'a> {
    pub id: Uuid,
    /// The overlay's encoded bytes, `None` when it could not be had.
    pub bytes: Option<&'a [u8]>,
    pub gravity: Gravity,
    /// 0–100.
    pub opacity: u8,
    /// Percent of the base image's width, 1–100.
    pub scale: u8,
}

/// The margin from an edge, as a share of the base's shorter side.
const MARGIN: f64 = 0.02;

pub(crate) fn watermark(
    img: DynamicImage,
    mark: Mark<'_>,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    let bytes = mark.bytes.ok_or_else(|| {
        ImagingError::Invalid(format!(
            "watermark image {} is not available: unknown, not completed, or deleted since the upload",
            mark.id
        ))
    })?;
    let header = probe::probe(bytes, limits)?;
    let overlay = decode::decode(bytes, &header, 1, limits)?.image;
    let (w, h) = (img.width(), img.height());
    let width = ((f64::from(w) * f64::from(mark.scale) / 100.0).round() as u32).max(1);
    let target = Target {
        width: Some(width),
        height: Some(h),
        fit: Fit::Contain,
        upscale: true,
        gravity: Gravity::Centre,
        focus: None,
        background: None,
    };
    let overlay = resize::resize_step(overlay, None, target, limits)?.to_rgba8();
    let (ax, ay) = mark.gravity.anchor().unwrap_or((0.5, 0.5));
    let margin = (f64::from(w.min(h)) * MARGIN).round();
    let place = |free: u32, anchor: f64| -> u32 {
        let free = f64::from(free);
        let inner = free - 2.0 * margin;
        (if inner >= 0.0 {
            margin + inner * anchor
        } else {
            free * anchor
        })
        .round() as u32
    };
    let x = place(w - overlay.width(), ax);
    let y = place(h - overlay.height(), ay);
    Ok(composite(img, &overlay, (x, y), f32::from(mark.opacity) / 100.0))
}

/// Draws `overlay` over `img` at `at` with `opacity`; the result keeps alpha only if `img` had it.
fn composite(img: DynamicImage, overlay: &RgbaImage, (x0, y0): (u32, u32), opacity: f32) -> DynamicImage {
    let had_alpha = img.color().has_alpha();
    let mut base = img.to_rgba8();
    for (x, y, p) in overlay.enumerate_pixels() {
        let Some(dst) = base.get_pixel_mut_checked(x0 + x, y0 + y) else {
            continue;
        };
        let a = f32::from(p.0[3]) / 255.0 * opacity;
        if a <= 0.0 {
            continue;
        }
        let ab = f32::from(dst.0[3]) / 255.0;
        let out_a = a + ab * (1.0 - a);
        let mix = |m: u8, b: u8| {
            ((f32::from(m) * a + f32::from(b) * ab * (1.0 - a)) / out_a)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        *dst = Rgba([
            mix(p.0[0], dst.0[0]),
            mix(p.0[1], dst.0[1]),
            mix(p.0[2], dst.0[2]),
            (out_a * 255.0).round() as u8,
        ]);
    }
    let out = DynamicImage::ImageRgba8(base);
    if had_alpha {
        out
    } else {
        DynamicImage::ImageRgb8(out.to_rgb8())
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageFormat, Rgb, RgbImage};

    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 50_000_000,
        jpeg_optimize_coding: false,
        max_frames: 1000,
    };

    fn png(img: &DynamicImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).expect("encodes");
        out.into_inner()
    }

    fn mark(bytes: &[u8], gravity: Gravity, opacity: u8, scale: u8) -> Mark<'_> {
        Mark {
            id: Uuid::nil(),
            bytes: Some(bytes),
            gravity,
            opacity,
            scale,
        }
    }

    fn white(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([255, 255, 255])))
    }

    #[test]
    fn a_southeast_mark_sits_in_the_corner_at_its_scale_and_opacity() {
        let logo = png(&DynamicImage::ImageRgb8(RgbImage::from_pixel(
            10,
            5,
            Rgb([0, 0, 0]),
        )));
        let out = watermark(white(200, 100), mark(&logo, Gravity::Southeast, 50, 20), &LIMITS)
            .expect("draws")
            .to_rgb8();
        // 20 % of 200 = 40 px wide, 20 px tall; 2 px margin (2 % of 100).
        let inside = out.get_pixel(200 - 2 - 20, 100 - 2 - 10).0;
        assert!(
            (126..=129).contains(&inside[0]),
            "half-transparent black over white: {inside:?}"
        );
        assert_eq!(
            out.get_pixel(200 - 2 - 41, 100 - 12).0,
            [255, 255, 255],
            "left of the mark"
        );
        assert_eq!(out.get_pixel(199, 99).0, [255, 255, 255], "the margin");
        assert_eq!(out.get_pixel(10, 10).0, [255, 255, 255], "far from the mark");
        let marked = out.pixels().filter(|p| p.0[0] < 200).count();
        assert_eq!(marked, 40 * 20, "exactly the scaled mark");
    }

    #[test]
    fn opacity_0_leaves_the_image_and_100_covers_it() {
        let logo = png(&DynamicImage::ImageRgb8(RgbImage::from_pixel(
            4,
            4,
            Rgb([0, 0, 255]),
        )));
        let base = white(100, 100);
        let none = watermark(base.clone(), mark(&logo, Gravity::Centre, 0, 50), &LIMITS).expect("draws");
        assert_eq!(none.to_rgb8(), base.to_rgb8());
        let full = watermark(base, mark(&logo, Gravity::Centre, 100, 50), &LIMITS).expect("draws");
        assert_eq!(full.to_rgb8().get_pixel(50, 50).0, [0, 0, 255]);
    }

    #[test]
    fn the_marks_own_transparency_is_kept() {
        let logo = RgbaImage::from_fn(10, 10, |x, _| Rgba([255, 0, 0, if x < 5 { 0 } else { 255 }]));
        let logo = png(&DynamicImage::ImageRgba8(logo));
        let out = watermark(white(100, 100), mark(&logo, Gravity::Northwest, 100, 10), &LIMITS)
            .expect("draws")
            .to_rgb8();
        // 10 px mark at the 2 px margin: its left half is see-through.
        assert_eq!(out.get_pixel(3, 5).0, [255, 255, 255]);
        assert_eq!(out.get_pixel(9, 5).0, [255, 0, 0]);
    }

    #[test]
    fn a_missing_or_broken_mark_is_a_clear_error() {
        let err = watermark(
            white(10, 10),
            Mark {
                id: Uuid::nil(),
                bytes: None,
                gravity: Gravity::Centre,
                opacity: 50,
                scale: 20,
            },
            &LIMITS,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not available"), "{err}");
        let err = watermark(
            white(10, 10),
            mark(b"not an image", Gravity::Centre, 50, 20),
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(err.code(), "unsupported_media_type");
    }
}
