//! Colour operations, one pixel at a time, alpha left alone: saturation, hue, gamma, sepia,
//! invert, tint and equalize.
//!
//! Colour spaces, chosen per operation:
//! - **saturation, hue and tint work in linear light** (sRGB decoded with its transfer curve),
//!   with Rec. 709 luminance weights. Mixing light is only additive there, so a saturation
//!   change or a hue turn keeps each pixel's luminance (a grey stays the same grey, a pure
//!   red turned to green does not come out brighter), and a tint's ramp from black to the
//!   colour is even in light. Decoding and encoding go through lookup tables (256 entries in,
//!   8 192 out), so the cost is a 3×3 matrix per pixel.
//! - **sepia is the W3C Filter Effects matrix on encoded values**, as browsers' `filter:
//!   sepia()` applies it, so the result looks like what designers know.
//! - **gamma** is by definition a power curve on the encoded values: `out = in^(1/gamma)`, so
//!   gamma above 1 lightens the mid-tones and below 1 darkens them (ImageMagick's `-gamma`).
//! - **equalize** spreads the histogram of luma (BT.601 Y′, as JPEG stores it) over the full
//!   range and keeps each pixel's chroma (Cb, Cr): the contrast a viewer sees is in Y′.
//!
//! Grey images stay grey where the result is grey (saturation, hue, gamma, invert, equalize);
//! sepia and tint make colour, so they widen `Luma` to `Rgb` first.

use std::sync::OnceLock;

use image::DynamicImage;

use super::pixels::{colour_bytes, map_colour_channels};
use crate::imaging::pipeline::Colour;

/// Rec. 709 / sRGB luminance weights of linear R, G, B.
const LUMA_709: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// A 3×3 colour matrix, rows producing R, G, B.
type Matrix = [[f32; 3]; 3];

/// Scales chroma around luminance by `1 + value/100`: −100 is grey, 100 doubles chroma.
pub(crate) fn saturation(img: DynamicImage, value: i32) -> DynamicImage {
    let s = 1.0 + value as f32 / 100.0;
    let mut m = [[0.0; 3]; 3];
    for (r, row) in m.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = (1.0 - s) * LUMA_709[c] + if r == c { s } else { 0.0 };
        }
    }
    linear_matrix(img, &m)
}

/// Turns the hue by `degrees` around the luminance axis (the W3C `hueRotate` matrix, applied
/// to linear light): greys and luminance stay, 180 turns red to cyan.
pub(crate) fn hue(img: DynamicImage, degrees: i32) -> DynamicImage {
    let (sin, cos) = (degrees as f32).to_radians().sin_cos();
    let m = [
        [
            0.213 + cos * 0.787 - sin * 0.213,
            0.715 - cos * 0.715 - sin * 0.715,
            0.072 - cos * 0.072 + sin * 0.928,
        ],
        [
            0.213 - cos * 0.213 + sin * 0.143,
            0.715 + cos * 0.285 + sin * 0.140,
            0.072 - cos * 0.072 - sin * 0.283,
        ],
        [
            0.213 - cos * 0.213 - sin * 0.787,
            0.715 - cos * 0.715 + sin * 0.715,
            0.072 + cos * 0.928 + sin * 0.072,
        ],
    ];
    linear_matrix(img, &m)
}

/// A power curve on every colour channel: `out = in^(1/gamma)`.
pub(crate) fn gamma(mut img: DynamicImage, gamma: f32) -> DynamicImage {
    let lut: Vec<u8> = (0..=255u8)
        .map(|v| {
            ((f32::from(v) / 255.0).powf(1.0 / gamma) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    map_colour_channels(&mut img, |v| lut[usize::from(v)]);
    img
}

/// Blends toward the W3C sepia tone by `amount` percent (0 leaves the image as it is).
pub(crate) fn sepia(img: DynamicImage, amount: i32) -> DynamicImage {
    let a = amount as f32 / 100.0;
    let k = 1.0 - a;
    let m = [
        [0.393 + 0.607 * k, 0.769 - 0.769 * k, 0.189 - 0.189 * k],
        [0.349 - 0.349 * k, 0.686 + 0.314 * k, 0.168 - 0.168 * k],
        [0.272 - 0.272 * k, 0.534 - 0.534 * k, 0.131 + 0.869 * k],
    ];
    let mut img = widen_to_rgb(img);
    map_rgb(&mut img, |[r, g, b]| {
        let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
        [
            to_u8(m[0][0] * r + m[0][1] * g + m[0][2] * b),
            to_u8(m[1][0] * r + m[1][1] * g + m[1][2] * b),
            to_u8(m[2][0] * r + m[2][1] * g + m[2][2] * b),
        ]
    });
    img
}

/// The negative of every colour channel; alpha kept.
pub(crate) fn invert(mut img: DynamicImage) -> DynamicImage {
    map_colour_channels(&mut img, |v| 255 - v);
    img
}

/// Duotone: each pixel's luminance mapped from black (0) to `colour` (full luminance), in
/// linear light.
pub(crate) fn tint(img: DynamicImage, colour: Colour) -> DynamicImage {
    let lut = LinearLut::get();
    let target = [colour.r, colour.g, colour.b].map(|c| lut.decode[usize::from(c)]);
    let mut img = widen_to_rgb(img);
    map_rgb(&mut img, |[r, g, b]| {
        let y = LUMA_709[0] * lut.decode[usize::from(r)]
            + LUMA_709[1] * lut.decode[usize::from(g)]
            + LUMA_709[2] * lut.decode[usize::from(b)];
        [
            lut.encode(y * target[0]),
            lut.encode(y * target[1]),
            lut.encode(y * target[2]),
        ]
    });
    img
}

/// Histogram equalisation of luma: the cumulative histogram of Y′ becomes the mapping, so the
/// darkest level present goes to 0, the brightest to 255 and the levels in between spread by
/// how many pixels use them. Chroma is kept. A flat image stays as it is.
pub(crate) fn equalize(mut img: DynamicImage) -> DynamicImage {
    let Some((bytes, (channels, alpha))) = colour_bytes(&mut img) else {
        return img;
    };
    let grey = channels - usize::from(alpha) == 1;
    let luma = |p: &[u8]| -> u8 {
        if grey {
            p[0]
        } else {
            // BT.601 Y′ in fixed point (weights × 2¹⁶, summing to 65536).
            ((19595 * u32::from(p[0]) + 38470 * u32::from(p[1]) + 7471 * u32::from(p[2]) + 32768) >> 16) as u8
        }
    };
    let mut histogram = [0u64; 256];
    for p in bytes.chunks_exact(channels) {
        histogram[usize::from(luma(p))] += 1;
    }
    let total: u64 = histogram.iter().sum();
    let first = histogram.iter().copied().find(|&n| n > 0).unwrap_or(0);
    if total == first {
        return img;
    }
    let mut map = [0u8; 256];
    let mut seen = 0u64;
    for (level, n) in histogram.iter().enumerate() {
        seen += n;
        map[level] = ((seen.saturating_sub(first) as f64 * 255.0) / (total - first) as f64).round() as u8;
    }
    for p in bytes.chunks_exact_mut(channels) {
        let y = luma(p);
        let to = map[usize::from(y)];
        if grey {
            p[0] = to;
            continue;
        }
        // Same chroma, new luma: Y′CbCr → R′G′B′ with Y′ replaced.
        let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
        let cb = -0.168_736 * r - 0.331_264 * g + 0.5 * b;
        let cr = 0.5 * r - 0.418_688 * g - 0.081_312 * b;
        let y = f32::from(to);
        p[0] = to_u8(y + 1.402 * cr);
        p[1] = to_u8(y - 0.344_136 * cb - 0.714_136 * cr);
        p[2] = to_u8(y + 1.772 * cb);
    }
    img
}

/// Applies `m` to every pixel in linear light. Grey images are returned as they are: every
/// matrix used here maps a grey to the same grey.
fn linear_matrix(mut img: DynamicImage, m: &Matrix) -> DynamicImage {
    let lut = LinearLut::get();
    // Written out rather than with `array::map`, which measured as an out-of-line call here.
    map_rgb(&mut img, |[r, g, b]| {
        let (r, g, b) = (
            lut.decode[usize::from(r)],
            lut.decode[usize::from(g)],
            lut.decode[usize::from(b)],
        );
        [
            lut.encode(m[0][0] * r + m[0][1] * g + m[0][2] * b),
            lut.encode(m[1][0] * r + m[1][1] * g + m[1][2] * b),
            lut.encode(m[2][0] * r + m[2][1] * g + m[2][2] * b),
        ]
    });
    img
}

/// Maps the R, G, B of every pixel of an `Rgb8`/`Rgba8` image (alpha kept); other layouts are
/// left alone.
fn map_rgb(img: &mut DynamicImage, f: impl Fn([u8; 3]) -> [u8; 3]) {
    // A constant chunk size per layout lets the compiler drop the per-pixel bounds checks.
    fn each<const N: usize>(bytes: &mut [u8], f: impl Fn([u8; 3]) -> [u8; 3]) {
        for p in bytes.chunks_exact_mut(N) {
            let out = f([p[0], p[1], p[2]]);
            p[..3].copy_from_slice(&out);
        }
    }
    match colour_bytes(img) {
        Some((bytes, (3, _))) => each::<3>(bytes, f),
        Some((bytes, (4, _))) => each::<4>(bytes, f),
        _ => {}
    }
}

/// `Luma8`/`LumaA8` widened to `Rgb8`/`Rgba8` (for operations that make colour).
fn widen_to_rgb(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageLuma8(_) => DynamicImage::ImageRgb8(img.to_rgb8()),
        DynamicImage::ImageLumaA8(_) => DynamicImage::ImageRgba8(img.to_rgba8()),
        other => other,
    }
}

/// Rounds to the nearest byte. `+ 0.5` then truncation, not `f32::round`, which is a libm call
/// on the baseline x86-64 target (no SSE4.1) and measured as the hot spot of these loops.
#[inline]
fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

/// sRGB ↔ linear light through tables: decoding is exact per byte; encoding quantises linear
/// light to 8 192 steps (an 8 KiB table that stays in the L1 cache; a 64 KiB one measured 30 %
/// slower), at most 0.4 of an output byte apart where the curve is steepest, so every byte
/// survives the round trip; no square root or power per pixel.
struct LinearLut {
    decode: [f32; 256],
    encode: Vec<u8>,
}

const ENCODE_STEPS: usize = 8_191;

impl LinearLut {
    fn get() -> &'static LinearLut {
        static LUT: OnceLock<LinearLut> = OnceLock::new();
        LUT.get_or_init(|| {
            let decode = std::array::from_fn(|i| srgb_to_linear(i as f32 / 255.0));
            let encode = (0..=ENCODE_STEPS)
                .map(|i| to_u8(linear_to_srgb(i as f32 / ENCODE_STEPS as f32) * 255.0))
                .collect();
            LinearLut { decode, encode }
        })
    }

    /// Linear light (clamped to 0..1) to an 8-bit sRGB value.
    #[inline]
    fn encode(&self, linear: f32) -> u8 {
        // `as usize` of the clamped, non-negative value cannot exceed the table's last index.
        let at = (linear.clamp(0.0, 1.0) * ENCODE_STEPS as f32 + 0.5) as usize;
        self.encode[at.min(ENCODE_STEPS)]
    }
}

fn srgb_to_linear(v: f32) -> f32 {
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(v: f32) -> f32 {
    if v <= 0.003_130_8 {
        v * 12.92
    } else {
        1.055 * v.powf(1.0 / 2.4) - 0.055
    }
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    fn rgb(pixels: &[[u8; 3]]) -> DynamicImage {
        let mut img = RgbImage::new(pixels.len() as u32, 1);
        for (x, p) in pixels.iter().enumerate() {
            img.put_pixel(x as u32, 0, Rgb(*p));
        }
        DynamicImage::ImageRgb8(img)
    }

    fn pixels(img: &DynamicImage) -> Vec<[u8; 3]> {
        img.to_rgb8().pixels().map(|p| p.0).collect()
    }

    fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
        a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
    }

    fn chroma(p: [u8; 3]) -> u8 {
        p.iter().max().copied().unwrap_or(0) - p.iter().min().copied().unwrap_or(0)
    }

    #[test]
    fn the_linear_tables_round_trip_every_byte() {
        let lut = LinearLut::get();
        for v in 0..=255u8 {
            assert_eq!(lut.encode(lut.decode[usize::from(v)]), v, "byte {v}");
        }
    }

    #[test]
    fn saturation_minus_100_is_grey_and_plus_100_widens_chroma() {
        let src = [[200, 80, 40], [40, 120, 200], [128, 128, 128]];
        let grey = pixels(&saturation(rgb(&src), -100));
        assert!(grey.iter().all(|p| chroma(*p) <= 1), "not grey: {grey:?}");
        let more = pixels(&saturation(rgb(&src), 100));
        for (before, after) in src.iter().zip(&more) {
            if chroma(*before) > 0 {
                assert!(chroma(*after) > chroma(*before), "{before:?} -> {after:?}");
            }
        }
        assert_eq!(more[2], [128, 128, 128], "a grey stays the same grey");
        assert_eq!(
            pixels(&saturation(rgb(&src), 0)),
            src.to_vec(),
            "0 changes nothing"
        );
    }

    #[test]
    fn hue_turns_red_toward_green_then_blue_and_keeps_greys() {
        let src = [[200, 30, 30], [90, 90, 90]];
        let turned = pixels(&hue(rgb(&src), 120));
        let [r, g, b] = turned[0];
        assert!(g > r && g > b, "red + 120° should be green-ish: {:?}", turned[0]);
        let [r, g, b] = pixels(&hue(rgb(&src), -120))[0];
        assert!(b > r && b > g, "red − 120° should be blue-ish");
        assert_eq!(turned[1], [90, 90, 90]);
        assert!(close(pixels(&hue(rgb(&src), 0))[0], src[0], 1));
        // A half turn then another is (nearly) the identity for a colour that stays in gamut.
        let muted = [[140, 110, 100]];
        let back = pixels(&hue(hue(rgb(&muted), 180), 180));
        assert!(close(back[0], muted[0], 2), "{:?}", back[0]);
    }

    #[test]
    fn gamma_above_one_lightens_mid_tones_below_one_darkens_and_keeps_the_ends() {
        let src = [[0, 128, 255]];
        let [lo, mid, hi] = pixels(&gamma(rgb(&src), 2.2))[0];
        assert_eq!((lo, hi), (0, 255));
        assert!(mid > 170, "128 at gamma 2.2 → {mid}");
        let [_, mid, _] = pixels(&gamma(rgb(&src), 0.5))[0];
        assert!(mid < 80, "128 at gamma 0.5 → {mid}");
        assert_eq!(pixels(&gamma(rgb(&src), 1.0))[0], src[0]);
    }

    #[test]
    fn sepia_100_gives_the_warm_tone_and_0_changes_nothing() {
        let src = [[100, 100, 100], [255, 255, 255]];
        let toned = pixels(&sepia(rgb(&src), 100));
        let [r, g, b] = toned[0];
        assert!(r > g && g > b, "sepia is warm: {:?}", toned[0]);
        assert_eq!(toned[1], [255, 255, 239], "white by the W3C matrix");
        assert_eq!(pixels(&sepia(rgb(&src), 0)), src.to_vec());
    }

    #[test]
    fn sepia_and_tint_widen_grey_images_to_colour() {
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(2, 2, image::Luma([100])));
        assert!(matches!(sepia(grey.clone(), 100), DynamicImage::ImageRgb8(_)));
        let tinted = tint(
            grey,
            Colour {
                r: 255,
                g: 0,
                b: 0,
                a: 255,
            },
        );
        let [r, g, b] = pixels(&tinted)[0];
        assert!(r > 0 && g == 0 && b == 0, "{:?}", [r, g, b]);
    }

    #[test]
    fn invert_negates_colour_and_keeps_alpha() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(1, 1, Rgba([10, 200, 255, 77])));
        let out = invert(img).to_rgba8();
        assert_eq!(out.get_pixel(0, 0).0, [245, 55, 0, 77]);
    }

    #[test]
    fn tint_maps_black_to_black_and_white_to_the_colour() {
        let orange = Colour {
            r: 255,
            g: 128,
            b: 0,
            a: 255,
        };
        let out = pixels(&tint(rgb(&[[0, 0, 0], [255, 255, 255], [128, 128, 128]]), orange));
        assert_eq!(out[0], [0, 0, 0]);
        assert_eq!(out[1], [255, 128, 0]);
        let [r, g, b] = out[2];
        assert!(
            r > g && g > b && r < 255 && r > 100,
            "mid-grey to a darker orange: {:?}",
            out[2]
        );
    }

    #[test]
    fn equalize_stretches_a_narrow_histogram_to_the_full_range() {
        let src: Vec<[u8; 3]> = (0..64u8)
            .map(|i| [100 + i / 2, 100 + i / 2, 100 + i / 2])
            .collect();
        let out = pixels(&equalize(rgb(&src)));
        let lo = out.iter().map(|p| p[0]).min().unwrap_or(0);
        let hi = out.iter().map(|p| p[0]).max().unwrap_or(0);
        assert_eq!((lo, hi), (0, 255), "range after equalize");
        assert!(out.windows(2).all(|w| w[0][0] <= w[1][0]), "order of levels kept");
        // A flat image has nothing to spread.
        let flat = rgb(&[[50, 60, 70]; 4]);
        assert_eq!(pixels(&equalize(flat)), vec![[50, 60, 70]; 4]);
    }

    #[test]
    fn equalize_keeps_chroma() {
        let src = [[200, 100, 100], [100, 50, 50], [150, 75, 75], [20, 10, 10]];
        let out = pixels(&equalize(rgb(&src)));
        for p in &out {
            assert!(
                p[0] > p[1] && (i16::from(p[1]) - i16::from(p[2])).abs() <= 1,
                "still red: {p:?}"
            );
        }
    }
}
