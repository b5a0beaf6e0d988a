//! [`Limits`], and the pixel-budget checks that every header, decode and resize passes.

use super::error::ImagingError;

/// Bounds applied to every decode and encode, and the operator's one encoder trade-off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest width×height (all frames counted) accepted as input or produced as output.
    pub max_pixels: u64,
    /// Optimised Huffman tables for JPEG outputs: ~5 % smaller files for about twice the encode
    /// CPU (`JPEG_OPTIMIZE_CODING`). Thumbnails never use them.
    pub jpeg_optimize_coding: bool,
    /// Most frames an animation may have (`MAX_FRAMES`); more is refused like too many pixels.
    pub max_frames: u32,
}

/// Refuses `width×height×frames` over the limit, more frames than `max_frames`, and empty
/// images.
pub(crate) fn check_frames(
    width: u32,
    height: u32,
    frames: u64,
    limits: &Limits,
) -> Result<(), ImagingError> {
    if frames > u64::from(limits.max_frames) {
        return Err(ImagingError::TooManyFrames {
            frames,
            limit: limits.max_frames,
        });
    }
    let pixels = u64::from(width)
        .saturating_mul(u64::from(height))
        .saturating_mul(frames);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooLarge {
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImagingError::Corrupt(format!(
            "image has zero size ({width}x{height})"
        )));
    }
    Ok(())
}

/// [`check_frames`] for one still image: an output, or a resize's target.
pub(crate) fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
    check_frames(width, height, 1, limits)
}
