//! The project's one generator of photo-like test images, shared by file (`#[path]`) so that it
//! stays outside the library: `benches/imaging.rs` encodes its W1 inputs with it, and
//! `examples/photo.rs` writes the end-to-end bench's corpus (`scripts/bench`) with it.
//!
//! Smooth gradients, texture, hard edges and sensor-like noise, so the entropy-coded size per
//! pixel is close to a real camera JPEG's (≈2.5 bits/pixel at q90) and decoders work as hard as
//! on real photos.

use image::RgbImage;

/// The seed `photo(w, h, 0)` starts its noise from; the imaging bench's inputs use it.
const BASE_SEED: u32 = 0x1234_5678;

/// A deterministic "photo" of `w`×`h`; `seed` varies the noise (0 gives the imaging bench's).
pub fn photo(w: u32, h: u32, seed: u32) -> RgbImage {
    // xorshift32 must not start at 0.
    let mut state = match BASE_SEED ^ seed.wrapping_mul(0x9E37_79B9) {
        0 => BASE_SEED,
        s => s,
    };
    RgbImage::from_fn(w, h, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let base = [
            120.0 + 80.0 * (fx * 6.0 + fy * 3.0).sin() + 30.0 * (fx * 37.0).sin() * (fy * 23.0).cos(),
            110.0 + 70.0 * (fy * 5.0 - fx * 2.0).cos() + 25.0 * (fx * 51.0 + fy * 13.0).sin(),
            100.0 + 60.0 * (fx * 28.0 * fy).sin() + 20.0 * ((fx - 0.5) * (fy - 0.5) * 300.0).sin(),
        ];
        let edge = if ((x / 97) + (y / 131)) % 5 == 0 {
            40.0
        } else {
            0.0
        };
        let noise = (state % 25) as f32 - 12.0;
        image::Rgb(base.map(|b| (b + edge + noise).clamp(0.0, 255.0) as u8))
    })
}

/// Baseline (or progressive) JPEG at `quality`, 4:2:0, through MozJPEG's fastest settings.
pub fn encode_jpeg(img: &RgbImage, quality: f32, progressive: bool) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_fastest_defaults();
    c.set_size(img.width() as usize, img.height() as usize);
    c.set_quality(quality);
    if progressive {
        c.set_progressive_mode();
    }
    let mut s = c.start_compress(Vec::new()).expect("compress starts");
    s.write_scanlines(img.as_raw()).expect("scanlines");
    s.finish().expect("compress finishes")
}
