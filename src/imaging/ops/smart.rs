//! The smart crop: where `fit=cover` with `gravity=smart` puts its window.
//!
//! **The choice.** smartcrop.js's scoring, which photo sites have used for years: each pixel is
//! scored for *detail* (edges: the magnitude of a Laplacian of luma), *skin* (closeness of its
//! normalised colour to a skin tone, for pixels neither black nor blown out) and *saturation*;
//! the window with the highest total wins. Faces are left to the skin score: no well-kept,
//! pure-Rust face detector with a bundled model fits an MIT binary without a download at run
//! time, and spectral-residual saliency needs an FFT for what these three cues mostly find.
//!
//! **The cost.** The analysis runs on a copy at most [`ANALYSIS_SIDE`] pixels on its longest
//! side (made with the same SIMD resampler as every resize), so it costs about the same for a
//! 1 MP and a 50 MP input: one pass to score pixels, one to build a summed-area table, then every
//! window position is scored in O(1) from the table. Instead of smartcrop.js's per-pixel
//! weighting inside the window, the window's inner part (its middle 60 % each way) counts twice,
//! so content at a crop's edge matters less than content it frames — also O(1) per position.
//! `cargo bench --bench imaging` reports it beside a plain resize.

use image::DynamicImage;

use super::resize::fit_within;

/// The longest side of the copy the analysis runs on.
pub(crate) const ANALYSIS_SIDE: u32 = 256;

const DETAIL_WEIGHT: f32 = 0.2;
const SKIN_WEIGHT: f32 = 1.8;
const SATURATION_WEIGHT: f32 = 0.3;
/// smartcrop.js's skin colour, as a normalised RGB direction.
const SKIN: [f32; 3] = [0.78, 0.57, 0.44];
/// How close (1 = the same direction) a colour must be to count as skin: smartcrop.js's 0.8.
const SKIN_THRESHOLD: f32 = 0.8;

/// Where a window of `window` (fractions of the width and height) should sit to frame the most
/// salient content: fractions of the free space along each axis (0 left/top, 1 right/bottom),
/// as `Gravity::anchor` gives them. Ties go to the window nearest the centre.
pub(crate) fn anchor(img: &DynamicImage, window: (f64, f64)) -> (f64, f64) {
    let small = match fit_within(img, ANALYSIS_SIDE) {
        Ok(Some(small)) => small,
        Ok(None) => img.clone(),
        Err(_) => return (0.5, 0.5),
    };
    let rgb = small.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let scores = saliency(&rgb);
    let table = SummedArea::new(&scores, w, h);
    let win_w = ((window.0 * w as f64).round() as usize).clamp(1, w);
    let win_h = ((window.1 * h as f64).round() as usize).clamp(1, h);
    let (free_x, free_y) = (w - win_w, h - win_h);
    let (inset_x, inset_y) = (win_w / 5, win_h / 5);
    let mut best = (f64::NEG_INFINITY, f64::INFINITY, (free_x / 2, free_y / 2));
    for y in 0..=free_y {
        for x in 0..=free_x {
            let whole = table.sum(x, y, win_w, win_h);
            let inner = table.sum(x + inset_x, y + inset_y, win_w - 2 * inset_x, win_h - 2 * inset_y);
            let score = whole + inner;
            let off_centre = (x as f64 - free_x as f64 / 2.0).abs() + (y as f64 - free_y as f64 / 2.0).abs();
            // A clearly better score wins; within rounding, the more central window does.
            if score > best.0 + 1e-6 || (score >= best.0 - 1e-6 && off_centre < best.1) {
                best = (score.max(best.0), off_centre, (x, y));
            }
        }
    }
    let (x, y) = best.2;
    let fraction = |at: usize, free: usize| if free == 0 { 0.5 } else { at as f64 / free as f64 };
    (fraction(x, free_x), fraction(y, free_y))
}

/// The per-pixel score: detail, skin and saturation, weighted as in smartcrop.js.
fn saliency(rgb: &image::RgbImage) -> Vec<f32> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let luma: Vec<f32> = rgb
        .pixels()
        .map(|p| {
            (0.2126 * f32::from(p.0[0]) + 0.7152 * f32::from(p.0[1]) + 0.0722 * f32::from(p.0[2])) / 255.0
        })
        .collect();
    let at = |x: usize, y: usize| luma[y * w + x];
    let mut out = Vec::with_capacity(w * h);
    for (i, p) in rgb.pixels().enumerate() {
        let (x, y) = (i % w, i / w);
        let l = luma[i];
        let neighbours = [
            at(x.saturating_sub(1), y),
            at((x + 1).min(w - 1), y),
            at(x, y.saturating_sub(1)),
            at(x, (y + 1).min(h - 1)),
        ];
        let detail = (4.0 * l - neighbours.iter().sum::<f32>()).abs().min(1.0);
        let [r, g, b] = p.0.map(|c| f32::from(c) / 255.0);
        let (max, min) = (r.max(g).max(b), r.min(g).min(b));
        let saturation = if max > 0.05 { (max - min) / max } else { 0.0 };
        let norm = (r * r + g * g + b * b).sqrt();
        let skin = if norm > 0.0 && (0.2..=0.95).contains(&l) {
            // smartcrop.js: 1 − the distance between the two colours as unit vectors.
            let cos = (r * SKIN[0] + g * SKIN[1] + b * SKIN[2]) / (norm * skin_norm());
            let closeness = 1.0 - (2.0 - 2.0 * cos.min(1.0)).sqrt();
            ((closeness - SKIN_THRESHOLD) / (1.0 - SKIN_THRESHOLD)).max(0.0)
        } else {
            0.0
        };
        out.push(DETAIL_WEIGHT * detail + SKIN_WEIGHT * skin + SATURATION_WEIGHT * saturation * l.min(1.0));
    }
    out
}

fn skin_norm() -> f32 {
    (SKIN[0] * SKIN[0] + SKIN[1] * SKIN[1] + SKIN[2] * SKIN[2]).sqrt()
}

/// A summed-area table: the sum over any rectangle in four look-ups.
struct SummedArea {
    w: usize,
    sums: Vec<f64>,
}

impl SummedArea {
    fn new(values: &[f32], w: usize, h: usize) -> SummedArea {
        // One extra row and column of zeros, so rectangles at the edge need no special case.
        let mut sums = vec![0.0; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0.0;
            for x in 0..w {
                row += f64::from(values[y * w + x]);
                sums[(y + 1) * (w + 1) + x + 1] = sums[y * (w + 1) + x + 1] + row;
            }
        }
        SummedArea { w, sums }
    }

    fn sum(&self, x: usize, y: usize, w: usize, h: usize) -> f64 {
        let at = |x: usize, y: usize| self.sums[y * (self.w + 1) + x];
        at(x + w, y + h) - at(x, y + h) - at(x + w, y) + at(x, y)
    }
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, Rgb, RgbImage};

    use super::*;

    /// A flat grey-blue backdrop with a little noise, so no region is empty of detail.
    fn backdrop(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let n = ((x * 7 + y * 13) % 5) as u8;
            Rgb([90 + n, 100 + n, 120 + n])
        })
    }

    #[test]
    fn detail_on_the_right_pulls_the_window_right() {
        let mut img = backdrop(600, 300);
        for y in 60..240 {
            for x in 460..580 {
                let v = if (x / 6 + y / 6) % 2 == 0 { 20 } else { 235 };
                img.put_pixel(x, y, Rgb([v, v, v]));
            }
        }
        let (ax, _) = anchor(&DynamicImage::ImageRgb8(img), (0.5, 1.0));
        assert!(ax > 0.9, "the checkerboard is at the right edge: {ax}");
    }

    #[test]
    fn skin_on_the_left_pulls_the_window_left() {
        let mut img = backdrop(600, 300);
        for y in 80..220 {
            for x in 30..130 {
                // A smooth face-like patch: skin tone with soft shading, little edge detail.
                let shade = 1.0 - ((x as f32 - 80.0).powi(2) + (y as f32 - 150.0).powi(2)) / 20_000.0;
                let c = |v: f32| (v * shade).clamp(0.0, 255.0) as u8;
                img.put_pixel(x, y, Rgb([c(210.0), c(153.0), c(118.0)]));
            }
        }
        let (ax, _) = anchor(&DynamicImage::ImageRgb8(img), (0.4, 1.0));
        assert!(ax < 0.1, "the skin patch is at the left edge: {ax}");
    }

    #[test]
    fn a_portrait_keeps_the_salient_top() {
        let mut img = backdrop(300, 900);
        for y in 20..200 {
            for x in 50..250 {
                let v = if (x / 4 + y / 4) % 2 == 0 { 200 } else { 30 };
                img.put_pixel(x, y, Rgb([v, v / 2, 40]));
            }
        }
        let (_, ay) = anchor(&DynamicImage::ImageRgb8(img), (1.0, 1.0 / 3.0));
        assert!(ay < 0.1, "the busy part is at the top: {ay}");
    }

    #[test]
    fn a_uniform_image_keeps_the_centre() {
        let img = RgbImage::from_pixel(400, 200, Rgb([128, 128, 128]));
        assert_eq!(anchor(&DynamicImage::ImageRgb8(img), (0.5, 1.0)), (0.5, 0.5));
    }
}
