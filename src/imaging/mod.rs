//! Pure image processing: bytes + [`Pipeline`] in, bytes + metadata out.
//!
//! No database, no async, no I/O: the worker calls [`process`] on a blocking thread and the
//! HTTP layer calls [`probe`] to validate uploads from their header alone.

mod format;
mod pipeline;

pub use format::Format;
pub use pipeline::{Fit, Pipeline, PipelineError, Step};

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

/// Bounds applied to every decode and encode.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest width×height (all frames counted) accepted as input or produced as output.
    pub max_pixels: u64,
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
    /// Readable, but larger than `MAX_PIXELS` allows.
    #[error("image is {width}x{height} ({pixels} pixels), over the limit of {limit} pixels")]
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

/// Reads format and dimensions from the header only, and checks them against `limits`.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ImagingError> {
    let format = Format::sniff(bytes)
        .ok_or_else(|| ImagingError::Unsupported("unrecognised file signature".into()))?;
    let reader = ImageReader::with_format(Cursor::new(bytes), format.to_image_format());
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    check_pixels(width, height, limits)?;
    Ok(Probe {
        format,
        width,
        height,
    })
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
    let pixels = u64::from(width) * u64::from(height);
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

/// Decodes `bytes`, applies `pipeline`, encodes the result and a thumbnail.
pub fn process(bytes: &[u8], pipeline: &Pipeline, limits: &Limits) -> Result<Processed, ImagingError> {
    let probe = probe(bytes, limits)?;
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), probe.format.to_image_format())
        .into_decoder()
        .map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    if pipeline.auto_orient {
        if let Some(o) = orientation {
            img.apply_orientation(o);
        }
    }
    for step in &pipeline.steps {
        img = pipeline::apply(step, img)?;
    }
    let format = pipeline.format.unwrap_or(if probe.format.can_write() {
        probe.format
    } else {
        Format::Png
    });
    check_pixels(img.width(), img.height(), limits)?;
    let out = format::encode(&img, format, pipeline.quality)?;
    let thumb = img.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE);
    let thumbnail = format::encode(&thumb, Format::Jpeg, Some(80))?;
    Ok(Processed {
        bytes: out,
        format,
        width: img.width(),
        height: img.height(),
        thumbnail,
        thumbnail_format: Format::Jpeg,
    })
}
