//! Writes one photo-like image with the generator the imaging bench uses
//! (`benches/support/photo.rs`); `scripts/bench` builds its corpus with it.
//!
//! ```text
//! cargo run --release --example photo -- WIDTHxHEIGHT SEED QUALITY OUT.jpg
//! cargo run --release --example photo -- 16x16 7 0 tiny.png      # PNG: QUALITY is ignored
//! ```

use std::process::ExitCode;

#[path = "../benches/support/photo.rs"]
mod photo;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("photo: {e}\nusage: photo WIDTHxHEIGHT SEED QUALITY OUT.{{jpg,png}}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let [size, seed, quality, out] = args else {
        return Err(format!("expected 4 arguments, got {}", args.len()));
    };
    let (w, h) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .filter(|&(w, h)| w > 0 && h > 0)
        .ok_or_else(|| format!("size {size:?} is not WIDTHxHEIGHT"))?;
    let seed: u32 = seed.parse().map_err(|_| format!("seed {seed:?} is not a u32"))?;
    let quality: f32 = quality
        .parse()
        .map_err(|_| format!("quality {quality:?} is not a number"))?;
    let img = photo::photo(w, h, seed);
    let bytes = if out.ends_with(".png") {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png)
            .map_err(|e| format!("encoding PNG: {e}"))?;
        buf.into_inner()
    } else {
        photo::encode_jpeg(&img, quality, false)
    };
    std::fs::write(out, bytes).map_err(|e| format!("writing {out}: {e}"))
}
