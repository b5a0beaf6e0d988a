//! Animations: every frame of a GIF, WebP or APNG input, composited onto the canvas by the
//! `image` crate's animation decoders (so each frame is a whole picture, whatever the file's
//! disposal tricks), with its delay and the loop count; and animated GIF and WebP outputs.
//!
//! GIF output quantises each frame to its own 256-colour palette with NeuQuant (the `gif`
//! crate's `Frame::from_rgba_speed`, MIT): good colour for photographic frames, transparency
//! kept, about 10 ms for a 400×300 frame at speed 10. libimagequant would dither better, but it
//! is GPL-3 and this binary is MIT. WebP output goes through libwebp's animation encoder, which
//! finds the changed rectangle between frames itself.

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::png::PngDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, ImageDecoder, RgbaImage};

use super::decode::decoder_limits;
use super::format::Format;
use super::probe::{apng_control, Probe};
use crate::imaging::error::ImagingError;
use crate::imaging::limits::Limits;

/// One decoded frame: the whole canvas, and how long it shows.
pub(crate) struct Frame {
    pub image: RgbaImage,
    pub delay_ms: u32,
}

/// How many times an animation plays: `None` for ever.
pub(crate) type Plays = Option<u16>;

/// An animation being decoded, frame by frame (one composited canvas in memory at a time).
pub(crate) struct Frames<'a> {
    pub frames: image::Frames<'a>,
    pub plays: Plays,
}

/// Starts decoding every frame of an animated GIF, WebP or APNG, under the decoder limits
/// `MAX_PIXELS` sets.
pub(crate) fn decode<'a>(
    bytes: &'a [u8],
    probe: &Probe,
    limits: &Limits,
) -> Result<Frames<'a>, ImagingError> {
    let corrupt = |e: image::ImageError| ImagingError::Corrupt(e.to_string());
    let (frames, plays) = match probe.format {
        Format::Gif => {
            let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            decoder.set_limits(decoder_limits(limits)).map_err(corrupt)?;
            (decoder.into_frames(), gif_plays(bytes))
        }
        Format::Webp => {
            let mut decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            decoder.set_limits(decoder_limits(limits)).map_err(corrupt)?;
            (decoder.into_frames(), webp_plays(bytes))
        }
        Format::Png => {
            let mut decoder = PngDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
            decoder.set_limits(decoder_limits(limits)).map_err(corrupt)?;
            let plays = apng_control(bytes)
                .and_then(|(_, plays)| u16::try_from(plays).ok())
                .filter(|p| *p > 0);
            (decoder.apng().map_err(corrupt)?.into_frames(), plays)
        }
        other => {
            return Err(ImagingError::Unsupported(format!("{other} has no animation")));
        }
    };
    Ok(Frames { frames, plays })
}

impl Iterator for Frames<'_> {
    type Item = Result<Frame, ImagingError>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = self.frames.next()?;
        Some(
            frame
                .map(|f| {
                    let (num, den) = f.delay().numer_denom_ms();
                    Frame {
                        delay_ms: num.checked_div(den).unwrap_or(0),
                        image: f.into_buffer(),
                    }
                })
                .map_err(|e| ImagingError::Corrupt(e.to_string())),
        )
    }
}

/// A GIF's NETSCAPE loop count `n` means n repetitions after the first play (what browsers do);
/// without the extension it plays once.
fn gif_plays(bytes: &[u8]) -> Plays {
    let mut options = gif::DecodeOptions::new();
    options.skip_frame_decoding(true);
    let Ok(mut decoder) = options.read_info(Cursor::new(bytes)) else {
        return Some(1);
    };
    // The extension comes before the first frame; reading that frame's header passes it.
    let _ = decoder.next_frame_info();
    match decoder.repeat() {
        gif::Repeat::Infinite => None,
        gif::Repeat::Finite(n) => Some(n.saturating_add(1)),
    }
}

fn webp_plays(bytes: &[u8]) -> Plays {
    match image_webp::WebPDecoder::new(Cursor::new(bytes)).map(|d| d.loop_count()) {
        Ok(image_webp::LoopCount::Times(n)) => Some(n.get()),
        _ => None,
    }
}

/// Frames of the same size, ready to encode.
pub(crate) struct Animation<'a> {
    pub frames: &'a [(RgbaImage, u32)],
    pub plays: Plays,
}

/// Encodes an animated GIF or WebP.
pub(crate) fn encode(anim: &Animation<'_>, format: Format, quality: u8) -> Result<Vec<u8>, ImagingError> {
    let fail = |message: String| ImagingError::Encode { format, message };
    match format {
        Format::Gif => encode_gif(anim).map_err(fail),
        Format::Webp => encode_webp(anim, quality).map_err(fail),
        other => Err(fail(format!("{other} cannot animate"))),
    }
}

/// NeuQuant sampling, 1 (best) – 30 (fastest); the still GIF encoder's setting.
const GIF_SPEED: i32 = 10;

fn encode_gif(anim: &Animation<'_>) -> Result<Vec<u8>, String> {
    let Some((first, _)) = anim.frames.first() else {
        return Err("no frames".into());
    };
    let side =
        |v: u32| u16::try_from(v).map_err(|_| format!("GIF is limited to 65535 pixels a side, not {v}"));
    let (w, h) = (side(first.width())?, side(first.height())?);
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, w, h, &[]).map_err(|e| e.to_string())?;
        match anim.plays {
            None => encoder.set_repeat(gif::Repeat::Infinite),
            Some(0 | 1) => Ok(()), // no extension: plays once
            Some(n) => encoder.set_repeat(gif::Repeat::Finite(n - 1)),
        }
        .map_err(|e| e.to_string())?;
        for (image, delay_ms) in anim.frames {
            let mut rgba = image.as_raw().clone();
            let mut frame = gif::Frame::from_rgba_speed(w, h, &mut rgba, GIF_SPEED);
            // Centiseconds; each frame is a whole canvas, so nothing of the last one shows.
            frame.delay = u16::try_from(delay_ms.saturating_add(5) / 10).unwrap_or(u16::MAX);
            frame.dispose = gif::DisposalMethod::Background;
            encoder.write_frame(&frame).map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

/// libwebp's largest side.
const WEBP_MAX_SIDE: u32 = 16_383;

fn encode_webp(anim: &Animation<'_>, quality: u8) -> Result<Vec<u8>, String> {
    let Some((first, _)) = anim.frames.first() else {
        return Err("no frames".into());
    };
    let (w, h) = (first.width(), first.height());
    if w > WEBP_MAX_SIDE || h > WEBP_MAX_SIDE {
        return Err(format!(
            "WebP is limited to {WEBP_MAX_SIDE} pixels a side, the image is {w}x{h}"
        ));
    }
    let mut config = webp::WebPConfig::new().map_err(|()| "libwebp: no encoder configuration".to_string())?;
    config.lossless = 0;
    config.quality = f32::from(quality);
    let mut encoder = webp::AnimEncoder::new(w, h, &config);
    encoder.set_loop_count(anim.plays.map_or(0, i32::from));
    let mut at_ms: i32 = 0;
    for (image, delay_ms) in anim.frames {
        encoder.add_frame(webp::AnimFrame::from_rgba(image.as_raw(), w, h, at_ms));
        at_ms = at_ms.saturating_add(i32::try_from(*delay_ms).unwrap_or(i32::MAX));
    }
    let memory = encoder.try_encode().map_err(|e| format!("libwebp: {e:?}"))?;
    let mut bytes = memory.to_vec();
    let total: u32 = anim.frames.iter().map(|(_, d)| *d).fold(0, u32::saturating_add);
    set_last_duration(&mut bytes, total);
    Ok(bytes)
}

/// The `webp` crate ends libwebp's animation with an end timestamp of 0, which libwebp refuses,
/// so the last frame gets a made-up duration (150 ms for 100/200/300 ms frames). The container
/// is plain RIFF: each `ANMF` chunk holds its frame's duration as 24 bits at payload offset 12.
/// The last one is set to what is left of the total (libwebp may have merged identical frames,
/// summing their durations, so the chunks need not match the input frames one to one).
fn set_last_duration(webp: &mut [u8], total_ms: u32) {
    if webp.get(0..4) != Some(b"RIFF") || webp.get(8..12) != Some(b"WEBP") {
        return;
    }
    let mut at = 12usize;
    let mut frames: Vec<usize> = Vec::new();
    while let Some(header) = webp.get(at..at.saturating_add(8)) {
        let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if &header[0..4] == b"ANMF" && webp.len() >= at + 8 + 16 {
            frames.push(at + 8 + 12);
        }
        at = at.saturating_add(8).saturating_add(size).saturating_add(size % 2);
    }
    let Some((&last, earlier)) = frames.split_last() else {
        return;
    };
    let duration = |at: usize| u32::from_le_bytes([webp[at], webp[at + 1], webp[at + 2], 0]);
    let before: u32 = earlier.iter().map(|&d| duration(d)).fold(0, u32::saturating_add);
    let rest = total_ms.saturating_sub(before).min(0xFF_FFFF).to_le_bytes();
    webp[last..last + 3].copy_from_slice(&rest[..3]);
}
