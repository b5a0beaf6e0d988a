//! Pure image processing: bytes + [`Pipeline`] in, bytes + metadata out.
//!
//! No database, no async, no I/O: the worker calls [`process`] on a blocking thread and the
//! HTTP layer calls [`probe`] to validate uploads from their header alone.
//!
//! Layout: [`format`](Format) sniffs and names formats; `decode` reads headers (counting
//! animation frames against the pixel limit) and decodes with strict limits; `jpeg` is the fast
//! JPEG path (libjpeg-turbo via MozJPEG, shrinking in the DCT domain); `colour` converts embedded
//! ICC profiles to sRGB; `resize` plans geometry and resamples with a SIMD resizer; `ops` holds
//! the per-pixel operations; `encode` writes every output format with no metadata carried over.

mod codecs;
mod ops;
mod pipeline;

use codecs::{decode, encode};
use ops::resize;

pub use codecs::format::Format;
pub use pipeline::{
    Fit, Flip, Pipeline, PipelineError, Step, BLUR_RANGE, FIELD_NAMES, MAX_DIMENSION, SHARPEN_RANGE,
};

/// Bounds applied to every decode and encode, and the operator's one encoder trade-off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest width×height (all frames counted) accepted as input or produced as output.
    pub max_pixels: u64,
    /// Optimised Huffman tables for JPEG outputs: ~5 % smaller files for about twice the encode
    /// CPU (`JPEG_OPTIMIZE_CODING`). Thumbnails never use them.
    pub jpeg_optimize_coding: bool,
}

/// What the header of an upload says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    pub width: u32,
    pub height: u32,
}

/// The result of running a pipeline.
#[derive(Debug, Clone)]
pub struct Processed {
    /// What the input's header said (the worker stores it for rows inserted by plain SQL).
    pub input: Probe,
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// A small preview (longest side ≤ [`THUMBNAIL_SIZE`]) for lists and the UI.
    pub thumbnail: Vec<u8>,
    pub thumbnail_format: Format,
}

/// Longest side of the preview made with every job.
pub const THUMBNAIL_SIZE: u32 = 256;

/// Why an image could not be read or processed. Every variant is permanent for that input.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    /// The bytes are not an image in a format we read.
    #[error("not an image in a supported format ({0})")]
    Unsupported(String),
    /// Readable, but larger than `MAX_PIXELS` allows (`pixels` counts every animation frame).
    #[error(
        "image is {width}x{height} ({pixels} pixels counting all frames), over the limit of {limit} pixels"
    )]
    TooLarge {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    /// The header or the pixel data is damaged.
    #[error("image data is corrupt: {0}")]
    Corrupt(String),
    /// The pipeline cannot be applied to this image (e.g. a crop outside it).
    #[error("{0}")]
    Invalid(String),
    /// Encoding the output failed.
    #[error("could not encode {format}: {message}")]
    Encode { format: Format, message: String },
}

impl ImagingError {
    /// Stable machine-readable code, used in API errors and the row's `error` text.
    pub fn code(&self) -> &'static str {
        match self {
            ImagingError::Unsupported(_) => "unsupported_media_type",
            ImagingError::TooLarge { .. } => "image_too_large",
            ImagingError::Corrupt(_) => "corrupt_image",
            ImagingError::Invalid(_) => "invalid_pipeline",
            ImagingError::Encode { .. } => "encode_failed",
        }
    }
}

/// Reads format and dimensions from the header only, and checks them against `limits`. For
/// animated GIF and WebP every frame counts towards `max_pixels`.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ImagingError> {
    decode::probe(bytes, limits)
}

/// Decodes `bytes`, applies `pipeline`, encodes the result and a thumbnail. Animated inputs
/// contribute their first frame. Decoder panics are caught and reported as corrupt data.
pub fn process(bytes: &[u8], pipeline: &Pipeline, limits: &Limits) -> Result<Processed, ImagingError> {
    // A pipeline stored by SQL was never checked at upload.
    pipeline
        .validate()
        .map_err(|e| ImagingError::Invalid(e.to_string()))?;
    let probe = probe(bytes, limits)?;
    let shrink = if probe.format == Format::Jpeg {
        resize::dct_shrink(probe.width, probe.height, pipeline)
    } else {
        1
    };
    let decoded = decode::decode(bytes, &probe, shrink, limits)?;
    let mut img = decoded.image;
    // The size the image stands for while it is still pre-shrunk, so the first resize computes
    // exactly the geometry a full decode would have given.
    let mut logical = (shrink > 1).then_some((probe.width, probe.height));
    if pipeline.auto_orient {
        if let Some(o) = decoded.orientation {
            img.apply_orientation(o);
            if ops::swaps_axes(o) {
                logical = logical.map(|(w, h)| (h, w));
            }
        }
    }
    for step in &pipeline.steps {
        img = ops::apply(step, img, &mut logical, limits)?;
    }
    check_pixels(img.width(), img.height(), limits)?;
    let format = pipeline.format.unwrap_or(if probe.format.can_write() {
        probe.format
    } else {
        Format::Png
    });
    let bytes = encode::encode(&img, format, pipeline.quality, limits.jpeg_optimize_coding)?;
    let (thumbnail, thumbnail_format) = encode::thumbnail(&img)?;
    Ok(Processed {
        input: probe,
        bytes,
        format,
        width: img.width(),
        height: img.height(),
        thumbnail,
        thumbnail_format,
    })
}

/// Refuses `width×height×frames` over the limit, and empty images.
fn check_frames(width: u32, height: u32, frames: u64, limits: &Limits) -> Result<(), ImagingError> {
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

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
    check_frames(width, height, 1, limits)
}
