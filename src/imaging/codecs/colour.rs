//! Colour management: pixels described by an embedded ICC profile (Display P3 from phones,
//! Adobe RGB from cameras, …) are converted to sRGB, because outputs carry no profile and every
//! viewer then assumes sRGB. Uses `moxcms`, the pure-Rust CMS that `image` already depends on.
//!
//! Best effort: a profile that cannot be parsed or connected leaves the pixels as they are.

use image::DynamicImage;
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    TransferCharacteristics, TransformOptions, Xyzd,
};

/// Converts an 8-bit RGB(A) image from the space `icc` describes to sRGB, in place.
pub(crate) fn to_srgb(img: &mut DynamicImage, icc: &[u8]) {
    let Ok(src) = ColorProfile::new_from_slice(icc) else {
        return;
    };
    convert(img, &src);
}

/// Converts an 8-bit RGB(A) image from the space that ITU-T H.273 code points describe (HEIF's
/// and AVIF's `nclx` box: Display P3 from phones, BT.2020 from HDR captures) to sRGB, in place.
/// An unspecified transfer is taken as sRGB's, as viewers do.
pub(crate) fn cicp_to_srgb(img: &mut DynamicImage, primaries: u8, transfer: u8) {
    const UNSPECIFIED: u8 = 2;
    const SRGB_TRANSFER: u8 = 13;
    let transfer = if transfer == UNSPECIFIED {
        SRGB_TRANSFER
    } else {
        transfer
    };
    let (Ok(color_primaries), Ok(transfer_characteristics)) = (
        CicpColorPrimaries::try_from(primaries),
        TransferCharacteristics::try_from(transfer),
    ) else {
        return;
    };
    let src = ColorProfile::new_from_cicp(CicpProfile {
        color_primaries,
        transfer_characteristics,
        // The pixels are RGB already (libheif applied the matrix); only primaries and curve count.
        matrix_coefficients: MatrixCoefficients::Identity,
        full_range: true,
    });
    // Code points without a defined gamut or curve leave the profile incomplete: keep the pixels.
    if src.cicp.is_none() || src.red_trc.is_none() {
        return;
    }
    convert(img, &src);
}

/// Converts from `src` to sRGB unless `src` is (close enough to) sRGB already.
fn convert(img: &mut DynamicImage, src: &ColorProfile) {
    if src.color_space != DataColorSpace::Rgb || is_srgb(src) {
        return;
    }
    let srgb = ColorProfile::new_srgb();
    let (layout, pixels): (Layout, &mut [u8]) = match img {
        DynamicImage::ImageRgb8(b) => (Layout::Rgb, &mut **b),
        DynamicImage::ImageRgba8(b) => (Layout::Rgba, &mut **b),
        _ => return,
    };
    let Ok(transform) = src.create_transform_8bit(layout, &srgb, layout, TransformOptions::default()) else {
        return;
    };
    let mut out = vec![0u8; pixels.len()];
    if transform.transform(pixels, &mut out).is_ok() {
        pixels.copy_from_slice(&out);
    }
}

/// Whether the profile's primaries are sRGB's, so converting would change nothing visible and
/// the (common) camera profile "sRGB IEC61966-2.1" costs no time.
fn is_srgb(p: &ColorProfile) -> bool {
    let s = ColorProfile::new_srgb();
    let close = |a: Xyzd, b: Xyzd| {
        (a.x - b.x).abs() < 0.003 && (a.y - b.y).abs() < 0.003 && (a.z - b.z).abs() < 0.003
    };
    close(p.red_colorant, s.red_colorant)
        && close(p.green_colorant, s.green_colorant)
        && close(p.blue_colorant, s.blue_colorant)
}

/// Joins the `ICC_PROFILE` APP2 segments of a JPEG (a profile over 64 KiB is split) in order.
pub(crate) fn icc_from_app2<'a>(segments: impl Iterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, &[u8])> = segments
        .filter_map(|s| s.strip_prefix(b"ICC_PROFILE\0"))
        .filter_map(|s| Some((*s.first()?, s.get(2..)?)))
        .collect();
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|(seq, _)| *seq);
    Some(
        chunks
            .into_iter()
            .flat_map(|(_, data)| data.iter().copied())
            .collect(),
    )
}
