//! The animated path of [`super::process_until`]: an animated GIF, WebP or APNG whose output
//! can animate (GIF, WebP) and whose pipeline does not ask for `frames=first` keeps every frame.
//!
//! Frames are decoded one at a time (one composited canvas in memory); each goes through the
//! pipeline's steps and is kept at its output size until all are encoded. The probe has already
//! counted every frame against `MAX_PIXELS` and `MAX_FRAMES`, and the outputs are checked
//! against `MAX_PIXELS` all together too.
//!
//! Limits: each frame is processed on its own, so `gravity=smart` picks its crop per frame (a
//! moving subject makes the crop follow it); EXIF orientation does not apply (these formats
//! carry none in practice); a frame that fails to decode after the first ends the animation
//! there, as browsers do.

use std::sync::atomic::AtomicBool;

use image::{DynamicImage, RgbaImage};

use super::codecs::animation::{self, Animation};
use super::codecs::encode::default_quality;
use super::codecs::format::Format;
use super::codecs::probe::Probe;
use super::error::ImagingError;
use super::limits::{check_frames, Limits};
use super::{check_stop, facts, ops, thumbnail, Overlays, Pipeline, Processed};

/// Runs `pipeline` over every frame of the animation in `bytes` and encodes `format`.
pub(super) fn process(
    bytes: &[u8],
    probe: Probe,
    pipeline: &Pipeline,
    format: Format,
    limits: &Limits,
    overlays: &Overlays,
    stop: &AtomicBool,
) -> Result<Processed, ImagingError> {
    let mut decoded = animation::decode(bytes, &probe, limits)?;
    let plays = decoded.plays;
    let mut frames: Vec<(RgbaImage, u32)> = Vec::new();
    let mut original_facts = None;
    for (index, frame) in decoded.by_ref().enumerate() {
        check_stop(stop)?;
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) if index == 0 => return Err(e),
            Err(e) => {
                tracing::debug!(index, error = %e, "animation frame unreadable; keeping the frames before it");
                break;
            }
        };
        let mut img = DynamicImage::ImageRgba8(frame.image);
        if index == 0 {
            original_facts = facts::pixel_facts(&img);
        }
        let mut logical = None;
        for step in &pipeline.steps {
            img = ops::apply(step, img, &mut logical, limits, overlays)?;
        }
        if let Some(bg) = pipeline.background {
            img = ops::alpha::flatten_on(&img, bg);
        }
        let img = img.into_rgba8();
        if let Some((first, _)) = frames.first() {
            if first.dimensions() != img.dimensions() {
                return Err(ImagingError::Invalid(format!(
                    "animation frame {index} came out {}x{}, the first {}x{}",
                    img.width(),
                    img.height(),
                    first.width(),
                    first.height()
                )));
            }
        }
        check_frames(img.width(), img.height(), index as u64 + 1, limits)?;
        frames.push((img, frame.delay_ms));
    }
    check_stop(stop)?;
    let quality = pipeline
        .quality
        .unwrap_or_else(|| default_quality(format))
        .clamp(1, 100);
    let bytes = animation::encode(
        &Animation {
            frames: &frames,
            plays,
        },
        format,
        quality,
    )?;
    check_stop(stop)?;
    let (first, _) = frames
        .into_iter()
        .next()
        .ok_or_else(|| ImagingError::Corrupt("the animation has no frames".into()))?;
    let (width, height) = first.dimensions();
    let count = u32::try_from(frames_len(&bytes, format).unwrap_or(1)).unwrap_or(u32::MAX);
    let (thumbnail, thumbnail_format) = thumbnail::thumbnail(&DynamicImage::ImageRgba8(first))?;
    Ok(Processed {
        input: probe,
        facts: original_facts,
        frames: count,
        bytes,
        format,
        width,
        height,
        thumbnail,
        thumbnail_format,
    })
}

/// Frames in an encoded output, read back from its headers (what a client will see).
fn frames_len(bytes: &[u8], format: Format) -> Option<u64> {
    let limits = Limits {
        max_pixels: u64::MAX,
        jpeg_optimize_coding: false,
        max_frames: u32::MAX,
    };
    let probe = super::codecs::probe::probe(bytes, &limits).ok()?;
    (probe.format == format).then_some(u64::from(probe.frames))
}
