//! Pure image processing: bytes + [`Pipeline`] in, bytes + metadata out.
//!
//! No database, no async, no I/O: the worker calls [`process`] on a blocking thread and the
//! HTTP layer calls [`probe`] to validate uploads from their header alone. Both run inside one
//! panic boundary (`guard`, below), so neither ever unwinds into its caller.
//!
//! # Layout
//! - `mod.rs` (here): [`probe`], [`process`] and the panic boundary; [`Processed`].
//! - `error`: [`ImagingError`] and its stable codes; the message of a caught panic.
//! - `limits`: [`Limits`] and the pixel-budget checks every header, decode and resize passes.
//! - `pipeline/`: [`Pipeline`] and its [`Step`]s (`mod.rs`), read from flat fields or JSON
//!   (`parse`), range-checked (`validate`).
//! - `codecs/`: reading and writing files; the types the codecs share are in `codecs/mod.rs`.
//!   - `format`: [`Format`], sniffed from magic bytes; names, MIME types, extensions.
//!   - `probe`: the header check ([`Probe`]), counting animation frames against the limit.
//!   - `decode`: decoding under strict limits to 8-bit, dispatching JPEG to `jpeg`, HEIC/HEIF
//!     and AVIF to `heif`, JPEG XL to `jxl`.
//!   - `jpeg`: MozJPEG (libjpeg-turbo) decoding with DCT-domain shrink, and encoding.
//!   - `heif`: libheif (libde265, dav1d) for HEIC/HEIF and AVIF, container transforms applied.
//!   - `jxl`: jxl-oxide, pure Rust, for JPEG XL.
//!   - `colour`: embedded ICC profiles converted to sRGB.
//!   - `encode`: every output format, with no metadata of the input carried over.
//! - `ops/`: the operations of a pipeline, one file per family (`mod.rs` maps a [`Step`] to
//!   its function).
//!   - `geometry`: crop, rotate, flip, and the EXIF orientation.
//!   - `resize`: contain / cover / fill planning, SIMD resampling, and how far a JPEG may be
//!     pre-shrunk while decoding.
//!   - `adjust`: per-pixel colour adjustments (brightness, contrast).
//!   - `colour`: saturation, hue, gamma, sepia, invert, tint, equalize (and which colour space
//!     each works in).
//!   - `filters`: neighbourhood filters (blur, sharpen).
//!   - `convolve`: 3×3 / 5×5 kernels (named or given) and pixelate.
//!   - `alpha`: flattening transparency for outputs without it, or onto `background`.
//!   - `smart`: the smart crop's saliency scoring and window search.
//!   - `watermark`: another image's output drawn over this one.
//!   - `pixels`: raw channel access the per-pixel operations share.
//! - `passthrough`: a JPEG whose pixels the pipeline would leave as they are keeps its
//!   compressed data, without its metadata.
//! - `animated`: the path that keeps every frame of an animation (GIF, WebP, APNG inputs,
//!   GIF and WebP outputs); `codecs/animation` decodes and encodes the frames.
//! - `facts`: the image's facts (hash, EXIF, BlurHash, dominant colour).
//! - `thumbnail`: the preview made with every job ([`THUMBNAIL_SIZE`]).

mod animated;
mod codecs;
mod error;
pub mod facts;
mod limits;
mod ops;
mod passthrough;
mod pipeline;
mod thumbnail;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use codecs::{decode, encode};
use ops::resize;

pub use codecs::format::Format;
pub use codecs::probe::Probe;
pub use error::ImagingError;
pub use limits::Limits;
pub use pipeline::{
    Colour, Fit, Flip, Focus, Frames, Gravity, Kernel, KernelName, Pipeline, PipelineError, Step, BLUR_RANGE,
    FIELD_NAMES, GAMMA_RANGE, MAX_DIMENSION, MAX_KERNEL_WEIGHT, PIXELATE_RANGE, SHARPEN_RANGE,
};
pub use thumbnail::THUMBNAIL_SIZE;

/// The result of running a pipeline.
#[derive(Debug, Clone)]
pub struct Processed {
    /// What the input's header said (the worker stores it for rows inserted by plain SQL).
    pub input: Probe,
    /// BlurHash and dominant colour of the original (`None` only for an empty image).
    pub facts: Option<facts::PixelFacts>,
    /// Frames written: 1 until animations are kept.
    pub frames: u32,
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// A small preview (longest side ≤ [`THUMBNAIL_SIZE`]) for lists and the UI.
    pub thumbnail: Vec<u8>,
    pub thumbnail_format: Format,
}

/// Reads format and dimensions from the header only, and checks them against `limits`. For
/// animated GIF and WebP every frame counts towards `max_pixels`. Never panics: see [`process`].
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Probe, ImagingError> {
    guard(|| codecs::probe::probe(bytes, limits))
}

/// Decodes `bytes`, applies `pipeline`, encodes the result and a thumbnail. Animated inputs
/// contribute their first frame. Never panics: a panic inside (in practice a decoder meeting
/// hostile input) is returned as [`ImagingError::Corrupt`] with the panic's message.
pub fn process(bytes: &[u8], pipeline: &Pipeline, limits: &Limits) -> Result<Processed, ImagingError> {
    process_with(bytes, pipeline, limits, &Overlays::new())
}

/// The encoded bytes of the images a pipeline draws as watermarks, by id
/// ([`Pipeline::watermark_ids`]). Imaging does no I/O: the worker loads them.
pub type Overlays = std::collections::HashMap<uuid::Uuid, Vec<u8>>;

/// [`process`] for a pipeline with watermark steps: `overlays` holds their images. A step whose
/// image is missing fails the job with a clear reason.
pub fn process_with(
    bytes: &[u8],
    pipeline: &Pipeline,
    limits: &Limits,
    overlays: &Overlays,
) -> Result<Processed, ImagingError> {
    process_until(bytes, pipeline, limits, overlays, &AtomicBool::new(false))
}

/// [`process_with`] that gives up with [`ImagingError::Cancelled`] once `stop` is set: a
/// cancelled job's thread returns at the next safe point (before the decode, between steps,
/// before each encode) instead of finishing work whose result will be dropped. A single decode,
/// operation or encode is not interrupted: the longest is about a second for a 50 MP image.
pub fn process_until(
    bytes: &[u8],
    pipeline: &Pipeline,
    limits: &Limits,
    overlays: &Overlays,
    stop: &AtomicBool,
) -> Result<Processed, ImagingError> {
    guard(|| run(bytes, pipeline, limits, overlays, stop, Extras::Made))
}

/// [`process_until`] for an output that needs neither a thumbnail nor the original's facts (a
/// variant: the image's own job makes those): `thumbnail` comes back empty and `facts` `None`
/// for still images, which saves a second resize and encode and a pass over the pixels.
/// Animations still make both (their first frame's).
pub fn process_output_until(
    bytes: &[u8],
    pipeline: &Pipeline,
    limits: &Limits,
    overlays: &Overlays,
    stop: &AtomicBool,
) -> Result<Processed, ImagingError> {
    guard(|| run(bytes, pipeline, limits, overlays, stop, Extras::Skipped))
}

/// Whether [`run`] makes the thumbnail and the original's facts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Extras {
    Made,
    Skipped,
}

/// The safe points of [`process_until`].
fn check_stop(stop: &AtomicBool) -> Result<(), ImagingError> {
    if stop.load(Ordering::Relaxed) {
        Err(ImagingError::Cancelled)
    } else {
        Ok(())
    }
}

/// Applies `steps` to an image already decoded to one of the 8-bit layouts, with no codec (and
/// no watermark images): what the benchmarks time per operation. The same panic boundary as
/// [`process`].
pub fn apply_steps(
    img: image::DynamicImage,
    steps: &[Step],
    limits: &Limits,
) -> Result<image::DynamicImage, ImagingError> {
    guard(|| {
        let mut img = img;
        for step in steps {
            step.validate()
                .map_err(|e| ImagingError::Invalid(e.to_string()))?;
            img = ops::apply(step, img, &mut None, limits, &Overlays::new())?;
        }
        Ok(img)
    })
}

/// The panic boundary of the imaging layer, and its only one but for libjpeg's error channel
/// (see `codecs/jpeg.rs`). Code below it may panic on hostile input (decoders index past a
/// damaged chunk, say); the worker's thread and the upload handler must not see that unwind.
///
/// `AssertUnwindSafe` holds: the closure only reads its borrowed inputs, and everything it
/// builds is dropped during the unwind, so no half-updated state outlives a panic.
fn guard<T>(f: impl FnOnce() -> Result<T, ImagingError>) -> Result<T, ImagingError> {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(ImagingError::Corrupt(format!(
            "decoder gave up: {}",
            error::panic_message(payload.as_ref())
        )))
    })
}

/// [`process`] without the boundary.
fn run(
    bytes: &[u8],
    pipeline: &Pipeline,
    limits: &Limits,
    overlays: &Overlays,
    stop: &AtomicBool,
    extras: Extras,
) -> Result<Processed, ImagingError> {
    check_stop(stop)?;
    // A pipeline stored by SQL was never checked at upload.
    pipeline
        .validate()
        .map_err(|e| ImagingError::Invalid(e.to_string()))?;
    let probe = codecs::probe::probe(bytes, limits)?;
    if probe.frames > 1 && pipeline.frames != Some(Frames::First) && !pipeline.universal_format {
        // Animations are GIF, WebP or APNG, each its own default output (alpha or not).
        let format = pipeline.format.unwrap_or(probe.format.default_output(true));
        if format.can_animate() {
            return animated::process(bytes, probe, pipeline, format, limits, overlays, stop);
        }
    }
    if passthrough::pipeline_keeps_pixels(&probe, pipeline) {
        if let Some(kept) = passthrough::strip(bytes) {
            return pass_through(bytes, kept, probe, limits, stop, extras);
        }
    }
    let shrink = if probe.format == Format::Jpeg {
        resize::dct_shrink(probe.width, probe.height, pipeline)
    } else {
        1
    };
    let decoded = decode::decode(bytes, &probe, shrink, limits)?;
    check_stop(stop)?;
    let mut img = decoded.image;
    // The size the image stands for while it is still pre-shrunk, so the first resize computes
    // exactly the geometry a full decode would have given.
    let mut logical = (shrink > 1).then_some((probe.width, probe.height));
    if let Some(o) = decoded.orientation.filter(|_| pipeline.auto_orient) {
        ops::geometry::auto_orient(&mut img, o, &mut logical);
    }
    // The original as shown (oriented), before any operation.
    let facts = match extras {
        Extras::Made => facts::pixel_facts(&img),
        Extras::Skipped => None,
    };
    for step in &pipeline.steps {
        check_stop(stop)?;
        img = ops::apply(step, img, &mut logical, limits, overlays)?;
    }
    check_stop(stop)?;
    if let Some(bg) = pipeline.background {
        img = ops::alpha::flatten_on(&img, bg);
    }
    limits::check_pixels(img.width(), img.height(), limits)?;
    let has_alpha = img.color().has_alpha();
    let format = match pipeline.format {
        Some(format) => format,
        None if pipeline.universal_format => Format::universal_output(has_alpha),
        None => probe.format.default_output(has_alpha),
    };
    let bytes = encode::encode(&img, format, pipeline.quality, limits.jpeg_optimize_coding)?;
    check_stop(stop)?;
    let (thumbnail, thumbnail_format) = match extras {
        Extras::Made => thumbnail::thumbnail(&img)?,
        Extras::Skipped => (Vec::new(), format),
    };
    Ok(Processed {
        input: probe,
        facts,
        frames: 1,
        bytes,
        format,
        width: img.width(),
        height: img.height(),
        thumbnail,
        thumbnail_format,
    })
}

/// A JPEG kept as it was but for its metadata ([`passthrough`]). Still decoded, at the smallest
/// scale that leaves the thumbnail its size (1/8 when no thumbnail is made): a damaged file
/// fails as on the full path, and the thumbnail and facts come from those pixels.
fn pass_through(
    bytes: &[u8],
    kept: Vec<u8>,
    probe: Probe,
    limits: &Limits,
    stop: &AtomicBool,
    extras: Extras,
) -> Result<Processed, ImagingError> {
    let longest = probe.width.max(probe.height);
    let shrink = match extras {
        Extras::Made => [8, 4, 2]
            .into_iter()
            .find(|s| longest / s >= THUMBNAIL_SIZE)
            .unwrap_or(1),
        Extras::Skipped => 8,
    };
    let img = decode::decode(bytes, &probe, shrink, limits)?.image;
    check_stop(stop)?;
    let (facts, (thumbnail, thumbnail_format)) = match extras {
        Extras::Made => (facts::pixel_facts(&img), thumbnail::thumbnail(&img)?),
        Extras::Skipped => (None, (Vec::new(), Format::Jpeg)),
    };
    Ok(Processed {
        input: probe,
        facts,
        frames: 1,
        bytes: kept,
        format: Format::Jpeg,
        width: probe.width,
        height: probe.height,
        thumbnail,
        thumbnail_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_under_the_boundary_comes_back_as_corrupt_data() {
        let err = guard::<()>(|| panic!("index 12 out of range")).unwrap_err();
        assert!(matches!(err, ImagingError::Corrupt(_)), "{err:?}");
        assert_eq!(err.code(), "corrupt_image");
        assert_eq!(
            err.to_string(),
            "image data is corrupt: decoder gave up: index 12 out of range"
        );
    }

    #[test]
    fn errors_pass_through_the_boundary_unchanged() {
        let err = guard::<()>(|| Err(ImagingError::Invalid("no".into()))).unwrap_err();
        assert!(
            matches!(err, ImagingError::Invalid(ref m) if m == "no"),
            "{err:?}"
        );
    }
}
