//! HEIC/HEIF and AVIF input through libheif (a shared library, see `scripts/build-libheif`),
//! which decodes HEVC with libde265 and AV1 with dav1d.
//!
//! These are C and C++ decoders: a panic boundary cannot catch a memory error in them, so they
//! only see files that passed the header check, under libheif's own security limits (a memory
//! cap derived from `MAX_PIXELS`), and are fuzzed (`fuzz/fuzz_targets/heif.rs`).
//!
//! Geometry: libheif applies the container's transformations (`irot`, `imir`, `clap`) while
//! decoding, as the HEIF specification requires; the EXIF orientation a camera also writes into
//! the file describes the same rotation, so it is not returned (it would be applied twice).
//! Colour: 10- and 12-bit images are decoded to 8 bits; an ICC profile or the `nclx` primaries
//! and transfer are converted to sRGB with `colour`.

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage, RgbaImage};
use libheif_rs::{
    ColorSpace, DecodingOptions, HeifContext, HeifError, HeifErrorCode, HeifErrorSubCode, ImageHandle,
    LibHeif, RgbChroma, SecurityLimits,
};

use super::{colour, Decoded};
use crate::imaging::error::ImagingError;
use crate::imaging::limits::{check_frames, Limits};

/// Bytes libheif may allocate per pixel of the accepted image: the decoded YCbCr planes at up to
/// 16 bits a sample, the interleaved RGBA output, and a grid's tiles while they are assembled.
const BYTES_PER_PIXEL: u64 = 24;
/// Working room beyond that: the compressed data, the HEVC/AV1 decoders' own state.
const EXTRA_BYTES: u64 = 64 << 20;

/// libheif is initialised once per process (`heif_init` is reference counted and loads no
/// plugins in our build); the handle lives as long as the process.
fn libheif() -> &'static LibHeif {
    static LIBHEIF: OnceLock<LibHeif> = OnceLock::new();
    LIBHEIF.get_or_init(LibHeif::new)
}

/// The header check: the size of the primary image as it will be shown (after rotation), read
/// from the container's boxes without decoding anything. The file's box tree is parsed under
/// libheif's security limits (items, tiles, children per box, memory), so deep or recursive
/// boxes and huge declared grids are refused while parsing.
pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<(u32, u32), ImagingError> {
    let ctx = read(bytes, limits)?;
    let handle = ctx.primary_image_handle().map_err(from_heif_error)?;
    let (width, height) = (handle.width(), handle.height());
    check_frames(width, height, 1, limits)?;
    Ok((width, height))
}

/// Decodes the primary image to 8-bit RGB(A) in sRGB, the container's geometry applied.
pub(crate) fn decode(bytes: &[u8], expected: (u32, u32), limits: &Limits) -> Result<Decoded, ImagingError> {
    let ctx = read(bytes, limits)?;
    let handle = ctx.primary_image_handle().map_err(from_heif_error)?;
    let has_alpha = handle.has_alpha_channel();
    let chroma = if has_alpha {
        RgbChroma::Rgba
    } else {
        RgbChroma::Rgb
    };
    let mut options = DecodingOptions::new()
        .ok_or_else(|| ImagingError::Corrupt("HEIF: libheif could not allocate options".into()))?;
    options.set_convert_hdr_to_8bit(true);
    // Full-image decodes only: an image whose tiles fail to decode is damaged, not grey.
    options.set_strict_decoding(true);
    let decoded = libheif()
        .decode(&handle, ColorSpace::Rgb(chroma), Some(options))
        .map_err(from_heif_error)?;
    let (w, h) = (decoded.width(), decoded.height());
    if (w, h) != expected {
        return Err(corrupt(format!(
            "decoded {w}x{h}, the header said {}x{}",
            expected.0, expected.1
        )));
    }
    let plane = decoded
        .planes()
        .interleaved
        .ok_or_else(|| corrupt("no interleaved plane in the decoded image".into()))?;
    let channels = if has_alpha { 4 } else { 3 };
    if plane.storage_bits_per_pixel != 8 * channels {
        return Err(corrupt(format!(
            "decoded to {} bits a pixel, expected {}",
            plane.storage_bits_per_pixel,
            8 * channels
        )));
    }
    let row = w as usize * usize::from(channels);
    let mut pixels = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        let start = y * plane.stride;
        let line = plane
            .data
            .get(start..start + row)
            .ok_or_else(|| corrupt("decoded plane is shorter than the image".into()))?;
        pixels.extend_from_slice(line);
    }
    let mut image = if has_alpha {
        RgbaImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| corrupt("pixel buffer does not match the image size".into()))?;
    to_srgb(&handle, &mut image);
    Ok(Decoded {
        image,
        orientation: None,
    })
}

/// Converts from the colour space the file declares: an ICC profile (`prof`/`rICC`) wins over
/// `nclx` code points, as in libheif's own tools.
fn to_srgb(handle: &ImageHandle, image: &mut DynamicImage) {
    // libheif returns only ICC profiles (`prof`, `rICC`) as raw ones.
    if let Some(icc) = handle.color_profile_raw() {
        colour::to_srgb(image, &icc.data);
        return;
    }
    if let Some(nclx) = handle.color_profile_nclx() {
        colour::cicp_to_srgb(
            image,
            nclx.color_primaries() as u8,
            nclx.transfer_characteristics() as u8,
        );
    }
}

/// Parses the container under security limits sized from `MAX_PIXELS`. One decoding thread: the
/// worker already runs one job per core.
fn read<'a>(bytes: &'a [u8], limits: &Limits) -> Result<HeifContext<'a>, ImagingError> {
    let mut ctx = HeifContext::new().map_err(from_heif_error)?;
    let mut security = SecurityLimits::new();
    // libheif's own image-size limit stays at its default (2^30 pixels), above ours: our check
    // then answers `image_too_large` with the size, and libheif's refuses only the absurd
    // sizes, as damage, while parsing.
    security.set_max_total_memory(
        limits
            .max_pixels
            .saturating_mul(BYTES_PER_PIXEL)
            .saturating_add(EXTRA_BYTES),
    );
    ctx.set_security_limits(&security).map_err(from_heif_error)?;
    ctx.set_max_decoding_threads(0);
    ctx.read_bytes(bytes).map_err(from_heif_error)?;
    Ok(ctx)
}

/// libheif's errors: files of a kind we cannot decode are `415`, everything else is damage.
fn from_heif_error(e: HeifError) -> ImagingError {
    match (e.code, e.sub_code) {
        (HeifErrorCode::UnsupportedFileType | HeifErrorCode::UnsupportedFeature, _) => {
            ImagingError::Unsupported(format!("HEIF: {}", e.message))
        }
        (_, HeifErrorSubCode::SecurityLimitExceeded) => {
            corrupt(format!("over a safety limit: {}", e.message))
        }
        _ => corrupt(e.message),
    }
}

fn corrupt(message: String) -> ImagingError {
    ImagingError::Corrupt(format!("HEIF: {message}"))
}
