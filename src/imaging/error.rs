//! [`ImagingError`], the one error type of the imaging layer, with its stable codes; and reading
//! the message out of a caught panic.

use super::codecs::format::Format;

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
    /// An animation with more frames than `MAX_FRAMES` (counted from the headers, stopping
    /// at the first frame over).
    #[error("animation has more than {limit} frames (MAX_FRAMES; {frames} counted so far)")]
    TooManyFrames { frames: u64, limit: u32 },
    /// The header or the pixel data is damaged (or a decoder panicked on it).
    #[error("image data is corrupt: {0}")]
    Corrupt(String),
    /// The pipeline cannot be applied to this image (e.g. a crop outside it).
    #[error("{0}")]
    Invalid(String),
    /// Encoding the output failed.
    #[error("could not encode {format}: {message}")]
    Encode { format: Format, message: String },
    /// The caller asked processing to stop ([`super::process_until`]); nothing was produced.
    #[error("processing was cancelled")]
    Cancelled,
}

impl ImagingError {
    /// Stable machine-readable code, used in API errors and the row's `error` text.
    pub fn code(&self) -> &'static str {
        match self {
            ImagingError::Unsupported(_) => "unsupported_media_type",
            ImagingError::TooLarge { .. } | ImagingError::TooManyFrames { .. } => "image_too_large",
            ImagingError::Corrupt(_) => "corrupt_image",
            ImagingError::Invalid(_) => "invalid_pipeline",
            ImagingError::Encode { .. } => "encode_failed",
            ImagingError::Cancelled => "cancelled",
        }
    }
}

/// The text of a panic payload: `panic!` and `resume_unwind` with a string give a `String` or a
/// `&str`; anything else has no message to show.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "unknown failure".to_string()
    }
}
