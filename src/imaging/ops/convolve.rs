//! Convolution with a 3×3 or 5×5 kernel (named or given), and pixelation.
//!
//! Both work on the encoded 8-bit values, like every convolution filter users know from image
//! editors (an edge or emboss kernel in linear light would look different from what they
//! expect), and leave alpha alone. Edges repeat the border pixel. A kernel is normalised by the
//! sum of its weights when that sum is not 0, so a blur keeps the brightness and an edge kernel
//! (sum 0) maps flat areas to black.
//!
//! Cost: one multiply-add per weight per channel and pixel of the *output* (9 for 3×3, 25 for
//! 5×5, twice 6 for Sobel), vectorised over rows. A Lanczos downscale by two does about as many
//! multiply-adds per *output* pixel but has a quarter of the output pixels and hand-written
//! SIMD, so a kernel costs several times a resize of the same image; `cargo bench --bench
//! imaging` reports both per megapixel.

use image::DynamicImage;

use super::pixels::colour_bytes;
use crate::imaging::pipeline::{Kernel, KernelName};

/// The weights of a named kernel, row by row.
pub(crate) fn named_weights(name: KernelName) -> &'static [f32] {
    match name {
        KernelName::Edge => &[0., -1., 0., -1., 4., -1., 0., -1., 0.],
        KernelName::Outline => &[-1., -1., -1., -1., 8., -1., -1., -1., -1.],
        KernelName::Emboss => &[-2., -1., 0., -1., 1., 1., 0., 1., 2.],
        KernelName::Sharpen => &[0., -1., 0., -1., 5., -1., 0., -1., 0.],
        KernelName::Box => &[1., 1., 1., 1., 1., 1., 1., 1., 1.],
        KernelName::Gaussian => &[
            1., 4., 6., 4., 1., 4., 16., 24., 16., 4., 6., 24., 36., 24., 6., 4., 16., 24., 16., 4., 1., 4.,
            6., 4., 1.,
        ],
        // Sobel is two kernels; `kernel` combines them (gradient magnitude).
        KernelName::Sobel => &SOBEL_X,
    }
}

const SOBEL_X: [f32; 9] = [-1., 0., 1., -2., 0., 2., -1., 0., 1.];
const SOBEL_Y: [f32; 9] = [-1., -2., -1., 0., 0., 0., 1., 2., 1.];

/// Convolves the colour channels with `kernel`. `sobel` is the gradient magnitude
/// `√(gx² + gy²)` of the horizontal and vertical Sobel kernels (each alone would keep only the
/// edges of one direction and one sign).
pub(crate) fn kernel(img: DynamicImage, kernel: &Kernel) -> DynamicImage {
    match kernel {
        Kernel::Named(KernelName::Sobel) => convolve(img, &[&SOBEL_X, &SOBEL_Y], |acc| acc[0].hypot(acc[1])),
        Kernel::Named(name) => apply(img, named_weights(*name)),
        Kernel::Custom(weights) => apply(img, weights),
    }
}

fn apply(img: DynamicImage, weights: &[f32]) -> DynamicImage {
    // A sum is "0" relative to the weights' size: summed in f32, `0,…,100.1,-100.2,…,0.1`
    // comes to 1.5e-6, and dividing by that would saturate every pixel.
    let sum: f64 = weights.iter().map(|&w| f64::from(w)).sum();
    let magnitude: f64 = weights.iter().map(|&w| f64::from(w).abs()).sum();
    let scale = if sum.abs() > 1e-4 * magnitude {
        (1.0 / sum) as f32
    } else {
        1.0
    };
    convolve(img, &[weights], |acc| acc[0] * scale)
}

/// Convolves every channel with each of `kernels` (all 3×3 or all 5×5) and writes
/// `combine(the kernels' sums)` into the colour channels; alpha is left as it was.
///
/// Row by row: each source row needed is converted once to `f32` with the border pixel
/// repeated `r` times on both sides, kept in a ring of `size` rows, and every weight then adds
/// one shifted, contiguous slice of it to the output row's sums — a loop the compiler
/// vectorises, with no bounds or edge tests per pixel. Memory: `size` + 1 rows per kernel.
///
/// In place: output row `y` needs source rows `y - r ..= y + r`, and each is copied into the
/// ring when first needed, which is before its own output row is written (row `y + r` is
/// loaded for output `y`, overwritten at output `y + r`); a row leaves the ring only once no
/// later output needs it. So no copy of the whole image is made.
fn convolve(mut img: DynamicImage, kernels: &[&[f32]], combine: impl Fn(&[f32]) -> f32) -> DynamicImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let Some((bytes, (channels, alpha))) = colour_bytes(&mut img) else {
        return img;
    };
    if w == 0 || h == 0 {
        return img;
    }
    let size = if kernels.first().is_some_and(|k| k.len() == 25) {
        5
    } else {
        3
    };
    let r = size / 2;
    let stride = w * channels;
    let padded_len = (w + 2 * r) * channels;
    // The ring of padded source rows: slot `y % size` holds row `y` once loaded.
    let mut ring: Vec<(usize, Vec<f32>)> = (0..size).map(|_| (usize::MAX, vec![0.0; padded_len])).collect();
    let mut sums: Vec<Vec<f32>> = kernels.iter().map(|_| vec![0.0; stride]).collect();
    let mut each = vec![0.0; kernels.len()];
    for y in 0..h {
        sums.iter_mut().for_each(|s| s.iter_mut().for_each(|v| *v = 0.0));
        for ky in 0..size {
            let sy = (y + ky).saturating_sub(r).min(h - 1);
            let slot = &mut ring[sy % size];
            if slot.0 != sy {
                fill_padded(&mut slot.1, &bytes[sy * stride..(sy + 1) * stride], channels, r);
                slot.0 = sy;
            }
            let row = &ring[sy % size].1;
            for (k, kernel) in kernels.iter().enumerate() {
                for kx in 0..size {
                    let weight = kernel[ky * size + kx];
                    if weight == 0.0 {
                        continue;
                    }
                    let shifted = &row[kx * channels..kx * channels + stride];
                    for (sum, v) in sums[k].iter_mut().zip(shifted) {
                        *sum += weight * v;
                    }
                }
            }
        }
        let line = &mut bytes[y * stride..(y + 1) * stride];
        for (i, b) in line.iter_mut().enumerate() {
            if alpha && i % channels == channels - 1 {
                continue;
            }
            for (e, s) in each.iter_mut().zip(&sums) {
                *e = s[i];
            }
            // `+ 0.5` and truncation: `f32::round` is a libm call on baseline x86-64.
            *b = (combine(&each).clamp(0.0, 255.0) + 0.5) as u8;
        }
    }
    img
}

/// `row` as `f32`, with its first and last pixel repeated `r` times on each side.
fn fill_padded(padded: &mut [f32], row: &[u8], channels: usize, r: usize) {
    let w = row.len() / channels;
    for (x, px) in padded.chunks_exact_mut(channels).enumerate() {
        let sx = x.saturating_sub(r).min(w - 1);
        for (c, v) in px.iter_mut().enumerate() {
            *v = f32::from(row[sx * channels + c]);
        }
    }
}

/// Pixelates with square blocks of `size` pixels (the last row and column of blocks may be
/// smaller): each block becomes the average of its pixels, alpha included.
pub(crate) fn pixelate(mut img: DynamicImage, size: u32) -> DynamicImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let size = size as usize;
    let Some((bytes, (channels, _))) = colour_bytes(&mut img) else {
        return img;
    };
    let mut sums = vec![0u64; channels];
    for by in (0..h).step_by(size) {
        let rows = by..(by + size).min(h);
        for bx in (0..w).step_by(size) {
            let cols = bx..(bx + size).min(w);
            sums.iter_mut().for_each(|s| *s = 0);
            for y in rows.clone() {
                let line = &bytes[(y * w + cols.start) * channels..(y * w + cols.end) * channels];
                for (i, v) in line.iter().enumerate() {
                    sums[i % channels] += u64::from(*v);
                }
            }
            let n = (rows.len() * cols.len()) as u64;
            let mean: Vec<u8> = sums.iter().map(|s| ((s + n / 2) / n) as u8).collect();
            for y in rows.clone() {
                let line = &mut bytes[(y * w + cols.start) * channels..(y * w + cols.end) * channels];
                for px in line.chunks_exact_mut(channels) {
                    px.copy_from_slice(&mean);
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, GrayImage, Luma, Rgba, RgbaImage};

    use super::*;

    /// A grey image with a vertical step: left half `lo`, right half `hi`.
    fn step(w: u32, h: u32, lo: u8, hi: u8) -> DynamicImage {
        DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, _| {
            Luma([if x < w / 2 { lo } else { hi }])
        }))
    }

    fn row(img: &DynamicImage, y: u32) -> Vec<u8> {
        let g = img.to_luma8();
        (0..g.width()).map(|x| g.get_pixel(x, y).0[0]).collect()
    }

    #[test]
    fn edge_kernels_are_black_on_flat_areas_and_bright_at_the_step() {
        for name in [KernelName::Edge, KernelName::Outline, KernelName::Sobel] {
            let out = kernel(step(8, 5, 40, 200), &Kernel::Named(name));
            let r = row(&out, 2);
            assert_eq!(r[0], 0, "{name:?}: flat left {r:?}");
            assert_eq!(r[7], 0, "{name:?}: flat right {r:?}");
            assert!(r[3].max(r[4]) > 100, "{name:?}: the step is an edge {r:?}");
        }
    }

    #[test]
    fn blurring_kernels_soften_the_step_and_keep_flat_levels() {
        for k in [
            Kernel::Named(KernelName::Box),
            Kernel::Named(KernelName::Gaussian),
        ] {
            let out = kernel(step(10, 5, 40, 200), &k);
            let r = row(&out, 2);
            assert_eq!((r[0], r[9]), (40, 200), "{k:?}: normalised by the sum {r:?}");
            assert!(r[4] > 40 && r[5] < 200, "{k:?}: softened {r:?}");
        }
    }

    #[test]
    fn sharpen_and_emboss_change_the_step_in_their_direction() {
        let out = kernel(step(8, 5, 40, 200), &Kernel::Named(KernelName::Sharpen));
        let r = row(&out, 2);
        assert!(r[3] < 40 && r[4] > 200, "overshoot on both sides: {r:?}");
        let out = kernel(step(8, 5, 40, 200), &Kernel::Named(KernelName::Emboss));
        let r = row(&out, 2);
        assert_eq!(
            (r[0], r[7]),
            (40, 200),
            "emboss sums to 1: flat areas keep their level"
        );
        assert!(r[3] > 40, "a rising step is lit: {r:?}");
    }

    #[test]
    fn a_custom_identity_kernel_changes_nothing_and_a_shift_kernel_moves_pixels() {
        let src = step(8, 5, 40, 200);
        let mut identity = vec![0.0; 25];
        identity[12] = 1.0;
        assert_eq!(
            row(&kernel(src.clone(), &Kernel::Custom(identity)), 2),
            row(&src, 2)
        );
        // Weight on the right-hand neighbour: each pixel takes the value to its right.
        let shift = vec![0., 0., 0., 0., 0., 1., 0., 0., 0.];
        let r = row(&kernel(src, &Kernel::Custom(shift)), 2);
        assert_eq!(r, [40, 40, 40, 200, 200, 200, 200, 200]);
    }

    #[test]
    fn a_custom_kernel_summing_to_zero_in_decimals_is_not_amplified() {
        // 100.1 − 100.2 + 0.1 is 0, but not in f32: the kernel must act as an edge kernel.
        let weights = vec![0., 0., 0., 0., 100.1, -100.2, 0., 0., 0.1];
        let flat = DynamicImage::ImageLuma8(GrayImage::from_pixel(6, 6, Luma([120])));
        let out = kernel(flat, &Kernel::Custom(weights));
        assert!(row(&out, 3).iter().all(|&v| v < 5), "{:?}", row(&out, 3));
    }

    #[test]
    fn working_in_place_reads_rows_above_and_below_as_they_were() {
        // Row y holds 10·y. Taking the row above reads rows the pass has already written.
        let img = DynamicImage::ImageLuma8(GrayImage::from_fn(3, 6, |_, y| Luma([10 * y as u8])));
        let column =
            |out: &DynamicImage| -> Vec<u8> { (0..6).map(|y| out.to_luma8().get_pixel(1, y).0[0]).collect() };
        let above = kernel(
            img.clone(),
            &Kernel::Custom(vec![0., 1., 0., 0., 0., 0., 0., 0., 0.]),
        );
        assert_eq!(column(&above), [0, 0, 10, 20, 30, 40]);
        let below = kernel(
            img.clone(),
            &Kernel::Custom(vec![0., 0., 0., 0., 0., 0., 0., 1., 0.]),
        );
        assert_eq!(column(&below), [10, 20, 30, 40, 50, 50]);
        // Two rows up, in a 5×5 kernel.
        let mut two_up = vec![0.; 25];
        two_up[2] = 1.;
        assert_eq!(
            column(&kernel(img, &Kernel::Custom(two_up))),
            [0, 0, 0, 10, 20, 30]
        );
    }

    #[test]
    fn kernels_leave_alpha_alone() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(4, 4, |x, _| Rgba([x as u8 * 60, 0, 0, 99])));
        let out = kernel(img, &Kernel::Named(KernelName::Outline)).to_rgba8();
        assert!(out.pixels().all(|p| p.0[3] == 99));
    }

    #[test]
    fn pixelate_averages_blocks_and_clips_the_last_ones() {
        let img = DynamicImage::ImageLuma8(GrayImage::from_fn(5, 1, |x, _| Luma([x as u8 * 10])));
        assert_eq!(row(&pixelate(img, 2), 0), [5, 5, 25, 25, 40]);
        let img = DynamicImage::ImageRgba8(RgbaImage::from_fn(4, 4, |x, y| {
            Rgba([(x + 4 * y) as u8, 0, 0, 255])
        }));
        let out = pixelate(img, 4).to_rgba8();
        let mean = (0..16u32).sum::<u32>() as f32 / 16.0;
        assert!(out
            .pixels()
            .all(|p| f32::from(p.0[0]) == mean.round() && p.0[3] == 255));
    }
}
