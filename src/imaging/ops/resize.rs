//! Resize geometry (contain / cover / fill / pad, no upscaling unless asked), which part `cover`
//! keeps (gravity, a focus point, or the smart crop's pick) and where `pad` places the image;
//! resampling with `fast_image_resize`, whose SIMD convolution is several times faster than
//! `image`'s resize. Also decides how far the JPEG decoder may pre-shrink in the DCT domain.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use super::smart;
use crate::imaging::error::ImagingError;
use crate::imaging::limits::{check_pixels, Limits};
use crate::imaging::pipeline::{Colour, Fit, Focus, Gravity, Pipeline, Step};

/// What a resize does to a `w×h` source: the source rectangle it reads (for `cover`, a
/// centred crop) and the size it produces.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    pub src: (f64, f64, f64, f64),
    pub dst: (u32, u32),
}

impl Plan {
    /// Output pixels per source pixel along the axis that shrinks least.
    fn max_scale(&self) -> f64 {
        let (_, _, sw, sh) = self.src;
        (f64::from(self.dst.0) / sw).max(f64::from(self.dst.1) / sh)
    }
}

/// Whether a `contain` resize into this box leaves a `w×h` image as it is (JPEG pass-through).
pub(crate) fn leaves_unchanged(
    dims: (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
    upscale: bool,
) -> bool {
    plan(dims, width, height, Fit::Contain, upscale).is_none()
}

/// Plans a resize of a `w×h` image into the box; `None` when the image stays as it is.
fn plan(
    (w, h): (u32, u32),
    width: Option<u32>,
    height: Option<u32>,
    fit: Fit,
    upscale: bool,
) -> Option<Plan> {
    let (fw, fh) = (f64::from(w), f64::from(h));
    let whole = (0.0, 0.0, fw, fh);
    let round = |v: f64| (v.round() as u32).max(1);
    let plan = match (width, height, fit) {
        (Some(bw), Some(bh), Fit::Cover) => {
            let mut scale = (f64::from(bw) / fw).max(f64::from(bh) / fh);
            let (mut bw, mut bh) = (f64::from(bw), f64::from(bh));
            if !upscale && scale > 1.0 {
                // Keep the box's shape but at the source's resolution.
                bw /= scale;
                bh /= scale;
                scale = 1.0;
            }
            let (cw, ch) = ((bw / scale).min(fw), (bh / scale).min(fh));
            Plan {
                src: ((fw - cw) / 2.0, (fh - ch) / 2.0, cw, ch),
                dst: (round(bw), round(bh)),
            }
        }
        (Some(bw), Some(bh), Fit::Fill) => {
            let (bw, bh) = if upscale { (bw, bh) } else { (bw.min(w), bh.min(h)) };
            Plan {
                src: whole,
                dst: (bw, bh),
            }
        }
        _ => {
            // Contain, or one side alone (which always keeps the aspect ratio).
            let sx = width.map_or(f64::INFINITY, |bw| f64::from(bw) / fw);
            let sy = height.map_or(f64::INFINITY, |bh| f64::from(bh) / fh);
            let mut scale = sx.min(sy);
            if !upscale {
                scale = scale.min(1.0);
            }
            if !scale.is_finite() {
                return None;
            }
            Plan {
                src: whole,
                dst: (round(fw * scale), round(fh * scale)),
            }
        }
    };
    let untouched = plan.dst == (w, h) && plan.src == whole;
    (!untouched).then_some(plan)
}

/// How far (1, 2, 4 or 8) the JPEG decoder may shrink a `w×h` photo for this pipeline while
/// leaving at least 2× headroom over the first resize's output, so the real filter still has
/// detail to work with. Only geometry-neutral steps (rotate, flip) may come before that resize;
/// anything else (crop, blur, …) needs full-resolution pixels.
pub(crate) fn dct_shrink(w: u32, h: u32, pipeline: &Pipeline) -> u32 {
    for step in &pipeline.steps {
        match *step {
            Step::Rotate { .. } | Step::Flip { .. } => continue,
            Step::Resize {
                width,
                height,
                fit,
                upscale,
                ..
            } => {
                // EXIF orientation or a rotate may swap the axes: take the less shrinking case.
                let scale = [(w, h), (h, w)]
                    .into_iter()
                    .map(|dims| plan(dims, width, height, fit, upscale).map_or(1.0, |p| p.max_scale()))
                    .fold(0.0, f64::max);
                return [8, 4, 2]
                    .into_iter()
                    .find(|&s| scale * 2.0 * f64::from(s) <= 1.0)
                    .unwrap_or(1);
            }
            _ => return 1,
        }
    }
    1
}

/// What a resize step asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub upscale: bool,
    pub gravity: Gravity,
    pub focus: Option<Focus>,
    pub background: Option<Colour>,
}

/// Applies a resize step. `logical` is the full-resolution size this (pre-shrunk) image stands
/// for; the geometry is planned on it and the source rectangle mapped onto the actual pixels.
pub(crate) fn resize_step(
    img: DynamicImage,
    logical: Option<(u32, u32)>,
    t: Target,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    let actual = (img.width(), img.height());
    let dims = logical.unwrap_or(actual);
    let resized = match plan(dims, t.width, t.height, t.fit, t.upscale) {
        None => img,
        Some(mut p) => {
            if t.fit == Fit::Cover {
                place_cover(&mut p, dims, &img, t.gravity, t.focus);
            }
            if dims != actual {
                let sx = f64::from(actual.0) / f64::from(dims.0);
                let sy = f64::from(actual.1) / f64::from(dims.1);
                let (x, y, w, h) = p.src;
                p.src = (
                    x * sx,
                    y * sy,
                    (w * sx).min(f64::from(actual.0)),
                    (h * sy).min(f64::from(actual.1)),
                );
            }
            // The output bound, checked before anything is allocated.
            check_pixels(p.dst.0, p.dst.1, limits)?;
            resample(&img, p)?
        }
    };
    match (t.fit, t.width, t.height) {
        (Fit::Pad, Some(bw), Some(bh)) => {
            let anchor = t.gravity.anchor().unwrap_or((0.5, 0.5));
            pad(resized, (bw, bh), anchor, t.background, limits)
        }
        _ => Ok(resized),
    }
}

/// Moves `cover`'s source rectangle (planned centred) to where the focus point, the gravity or
/// the smart crop wants it, within the image.
fn place_cover(p: &mut Plan, (w, h): (u32, u32), img: &DynamicImage, gravity: Gravity, focus: Option<Focus>) {
    let (fw, fh) = (f64::from(w), f64::from(h));
    let (_, _, cw, ch) = p.src;
    let (free_x, free_y) = ((fw - cw).max(0.0), (fh - ch).max(0.0));
    let (ax, ay) = match focus {
        // As close to the centre as the image allows: the window centred on the point, clamped.
        Some(f) => {
            let at = |point: f64, size: f64, full: f64, free: f64| {
                if free > 0.0 {
                    ((point * full - size / 2.0).clamp(0.0, free)) / free
                } else {
                    0.5
                }
            };
            (
                at(f64::from(f.x), cw, fw, free_x),
                at(f64::from(f.y), ch, fh, free_y),
            )
        }
        None => gravity
            .anchor()
            .unwrap_or_else(|| smart::anchor(img, (cw / fw, ch / fh))),
    };
    p.src.0 = free_x * ax;
    p.src.1 = free_y * ay;
}

/// Pads `img` to exactly `box_size` with `background` (transparent when `None`), placing it at
/// `anchor` (fractions of the free space). The padding never blends with the image: the image's
/// own pixels, alpha included, are copied as they are.
fn pad(
    img: DynamicImage,
    (bw, bh): (u32, u32),
    (ax, ay): (f64, f64),
    background: Option<Colour>,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    let (w, h) = (img.width(), img.height());
    if (w, h) == (bw, bh) {
        return Ok(img);
    }
    check_pixels(bw, bh, limits)?;
    let bg = background.unwrap_or(Colour {
        r: 0,
        g: 0,
        b: 0,
        a: 0,
    });
    let mut canvas = image::RgbaImage::from_pixel(bw, bh, image::Rgba([bg.r, bg.g, bg.b, bg.a]));
    let x = (f64::from(bw.saturating_sub(w)) * ax).round() as i64;
    let y = (f64::from(bh.saturating_sub(h)) * ay).round() as i64;
    let opaque = bg.a == 255 && !img.color().has_alpha();
    image::imageops::replace(&mut canvas, &img.to_rgba8(), x, y);
    let out = DynamicImage::ImageRgba8(canvas);
    Ok(if opaque {
        DynamicImage::ImageRgb8(out.to_rgb8())
    } else {
        out
    })
}

/// Resamples with a Lanczos3 kernel (premultiplying alpha so edges don't fringe).
fn resample(img: &DynamicImage, p: Plan) -> Result<DynamicImage, ImagingError> {
    resample_with(img, p, FilterType::Lanczos3)
}

fn resample_with(img: &DynamicImage, p: Plan, filter: FilterType) -> Result<DynamicImage, ImagingError> {
    let mut dst = DynamicImage::new(p.dst.0, p.dst.1, img.color());
    let (x, y, w, h) = p.src;
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .crop(x, y, w, h);
    Resizer::new()
        .resize(img, &mut dst, &options)
        .map_err(|e| ImagingError::Invalid(format!("resize failed: {e}")))?;
    Ok(dst)
}

/// Fits `img` inside `size×size` without enlarging it, for the preview. A Hamming kernel (one
/// pixel of support) rather than Lanczos3 (three): at 256 px the difference does not show, and a
/// whole 640×480 job went from 2.57 to 2.38 ms of CPU (the preview is made for every job).
pub(crate) fn fit_within(img: &DynamicImage, size: u32) -> Result<Option<DynamicImage>, ImagingError> {
    match plan(
        (img.width(), img.height()),
        Some(size),
        Some(size),
        Fit::Contain,
        false,
    ) {
        Some(p) => resample_with(img, p, FilterType::Hamming).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(width: Option<u32>, height: Option<u32>, fit: Fit) -> Pipeline {
        Pipeline {
            steps: vec![Step::Resize {
                width,
                height,
                fit,
                upscale: false,
                gravity: Gravity::Centre,
                focus: None,
                background: None,
            }],
            ..Pipeline::default()
        }
    }

    #[test]
    fn contain_keeps_aspect_and_never_upscales() {
        let p = plan((4000, 3000), Some(800), Some(800), Fit::Contain, false).unwrap();
        assert_eq!(p.dst, (800, 600));
        assert_eq!(plan((400, 300), Some(800), Some(800), Fit::Contain, false), None);
        let up = plan((400, 300), Some(800), Some(800), Fit::Contain, true).unwrap();
        assert_eq!(up.dst, (800, 600));
        assert_eq!(
            plan((400, 300), None, Some(150), Fit::Cover, false).unwrap().dst,
            (200, 150)
        );
    }

    #[test]
    fn cover_crops_the_centre_and_fill_stretches() {
        let p = plan((4000, 3000), Some(800), Some(800), Fit::Cover, false).unwrap();
        assert_eq!(p.dst, (800, 800));
        assert_eq!(p.src, (500.0, 0.0, 3000.0, 3000.0));
        // Without upscale a small image is only cropped to the box's shape.
        let small = plan((400, 300), Some(800), Some(800), Fit::Cover, false).unwrap();
        assert_eq!(small.dst, (300, 300));
        let fill = plan((4000, 3000), Some(100), Some(700), Fit::Fill, false).unwrap();
        assert_eq!(fill.dst, (100, 700));
    }

    #[test]
    fn dct_shrink_keeps_two_times_headroom() {
        let fit800 = Pipeline::default();
        assert_eq!(dct_shrink(4000, 3000, &fit800), 2); // 2000x1500 >= 2 x 800x600
        assert_eq!(dct_shrink(1600, 1200, &fit800), 1);
        assert_eq!(dct_shrink(8000, 6000, &fit800), 4);
        assert_eq!(dct_shrink(8000, 6000, &resize(Some(100), None, Fit::Contain)), 8);
        let crop_first = Pipeline {
            steps: vec![
                Step::Crop {
                    x: 0,
                    y: 0,
                    width: 10,
                    height: 10,
                },
                Step::Grayscale,
            ],
            ..Pipeline::default()
        };
        assert_eq!(dct_shrink(8000, 6000, &crop_first), 1);
    }
}
