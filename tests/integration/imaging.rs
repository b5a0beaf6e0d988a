//! The imaging core as a user of the service meets it: every operation, every orientation,
//! every output format, and a corpus of hostile files that must fail cleanly.

use std::cell::RefCell;
use std::io::Cursor;
use std::sync::Once;

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use image_processor::imaging::{
    self, Fit, Format, ImagingError, Limits, Pipeline, PipelineError, Processed, Step, FIELD_NAMES,
    THUMBNAIL_SIZE,
};

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("test image encodes");
    out.into_inner()
}

fn png(img: impl Into<DynamicImage>) -> Vec<u8> {
    encode(&img.into(), ImageFormat::Png)
}

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(enc).expect("test JPEG encodes");
    out
}

fn fields(spec: &str) -> Pipeline {
    let pairs: Vec<(&str, &str)> = spec
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| kv.split_once('=').expect("key=value"))
        .collect();
    Pipeline::from_fields(pairs)
        .expect("valid fields")
        .expect("some fields")
}

fn run(input: &[u8], spec: &str) -> (Processed, DynamicImage) {
    let out = imaging::process(input, &fields(spec), &LIMITS).expect("processes");
    let img = image::load_from_memory(&out.bytes).expect("output decodes");
    assert_eq!((img.width(), img.height()), (out.width, out.height));
    (out, img)
}

/// Red top-left, green top-right, blue bottom-left, white bottom-right.
fn quadrants(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| match (x < w / 2, y < h / 2) {
        (true, true) => Rgb([255, 0, 0]),
        (false, true) => Rgb([0, 255, 0]),
        (true, false) => Rgb([0, 0, 255]),
        (false, false) => Rgb([255, 255, 255]),
    })
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tolerance)
}

fn assert_upright(img: &DynamicImage, tolerance: i32) {
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    assert!(w > h, "landscape expected, got {w}x{h}");
    for (x, y, want) in [
        (w / 4, h / 4, [255, 0, 0]),
        (3 * w / 4, h / 4, [0, 255, 0]),
        (w / 4, 3 * h / 4, [0, 0, 255]),
        (3 * w / 4, 3 * h / 4, [255, 255, 255]),
    ] {
        let got = rgb.get_pixel(x, y).0;
        assert!(
            near(got, want, tolerance),
            "pixel at {x},{y} is {got:?}, want {want:?}"
        );
    }
}

// ---------------------------------------------------------------- operations

#[test]
fn rotate_90_moves_the_top_left_corner_to_the_top_right() {
    let mut img = RgbImage::from_pixel(40, 20, Rgb([0, 0, 0]));
    img.put_pixel(0, 0, Rgb([255, 0, 0]));
    let (_, out) = run(&png(img), "rotate=90&format=png");
    assert_eq!(out.dimensions(), (20, 40));
    assert_eq!(out.to_rgb8().get_pixel(19, 0).0, [255, 0, 0]);
    assert_eq!(out.to_rgb8().get_pixel(0, 0).0, [0, 0, 0]);
}

#[test]
fn rotate_180_and_270_move_the_corner_too() {
    let mut img = RgbImage::from_pixel(40, 20, Rgb([0, 0, 0]));
    img.put_pixel(0, 0, Rgb([255, 0, 0]));
    let input = png(img);
    let (_, out) = run(&input, "rotate=180");
    assert_eq!(out.to_rgb8().get_pixel(39, 19).0, [255, 0, 0]);
    let (_, out) = run(&input, "rotate=270");
    assert_eq!(out.dimensions(), (20, 40));
    assert_eq!(out.to_rgb8().get_pixel(0, 39).0, [255, 0, 0]);
}

#[test]
fn flip_mirrors() {
    let mut img = RgbImage::from_pixel(40, 20, Rgb([0, 0, 0]));
    img.put_pixel(0, 0, Rgb([255, 0, 0]));
    let input = png(img);
    let (_, h) = run(&input, "flip=h");
    assert_eq!(h.to_rgb8().get_pixel(39, 0).0, [255, 0, 0]);
    let (_, v) = run(&input, "flip=v");
    assert_eq!(v.to_rgb8().get_pixel(0, 19).0, [255, 0, 0]);
}

#[test]
fn crop_picks_the_region() {
    let img = RgbImage::from_fn(50, 40, |x, y| Rgb([x as u8, y as u8, 0]));
    let (out, decoded) = run(&png(img), "crop=10,5,20,15");
    assert_eq!((out.width, out.height), (20, 15));
    assert_eq!(decoded.to_rgb8().get_pixel(0, 0).0, [10, 5, 0]);
    assert_eq!(decoded.to_rgb8().get_pixel(19, 14).0, [29, 19, 0]);
}

#[test]
fn crop_outside_the_image_is_a_clear_error() {
    let input = png(RgbImage::new(50, 40));
    let err = imaging::process(&input, &fields("crop=40,0,20,10"), &LIMITS).unwrap_err();
    assert!(matches!(err, ImagingError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("crop"), "{err}");
}

/// Red left quarter, green middle half, blue right quarter.
fn stripes() -> RgbImage {
    RgbImage::from_fn(400, 200, |x, _| match x {
        0..100 => Rgb([255, 0, 0]),
        100..300 => Rgb([0, 255, 0]),
        _ => Rgb([0, 0, 255]),
    })
}

#[test]
fn cover_fills_the_box_with_the_centre() {
    let (_, out) = run(&png(stripes()), "width=100&height=100&fit=cover&format=png");
    assert_eq!(out.dimensions(), (100, 100));
    let rgb = out.to_rgb8();
    for (x, y) in [(2, 2), (97, 2), (2, 97), (97, 97), (50, 50)] {
        assert!(
            near(rgb.get_pixel(x, y).0, [0, 255, 0], 40),
            "{x},{y}: {:?}",
            rgb.get_pixel(x, y)
        );
    }
}

#[test]
fn contain_fits_inside_and_fill_stretches() {
    let input = png(stripes());
    let (_, contain) = run(&input, "width=100&height=100&fit=contain");
    assert_eq!(contain.dimensions(), (100, 50));
    let (_, fill) = run(&input, "width=100&height=100&fit=fill&format=png");
    assert_eq!(fill.dimensions(), (100, 100));
    assert!(near(fill.to_rgb8().get_pixel(2, 50).0, [255, 0, 0], 40));
    let (_, one_side) = run(&input, "height=50");
    assert_eq!(one_side.dimensions(), (100, 50));
}

#[test]
fn upscale_false_never_enlarges() {
    let input = png(stripes());
    for spec in [
        "width=800",
        "width=800&height=800",
        "width=800&height=900&fit=fill",
        "height=1000&fit=cover",
    ] {
        let (out, _) = run(&input, spec);
        assert!(
            out.width <= 400 && out.height <= 200,
            "{spec}: {}x{}",
            out.width,
            out.height
        );
    }
    let (_, cover) = run(&input, "width=800&height=800&fit=cover");
    assert_eq!(
        cover.dimensions(),
        (200, 200),
        "cover crops to the box's shape without enlarging"
    );
    let (up, _) = run(&input, "width=800&upscale=true");
    assert_eq!((up.width, up.height), (800, 400));
}

#[test]
fn grayscale_makes_r_g_b_equal() {
    let (_, out) = run(&png(quadrants(40, 20)), "grayscale=true&format=png");
    for p in out.to_rgb8().pixels() {
        assert!(p.0[0] == p.0[1] && p.0[1] == p.0[2], "{p:?}");
    }
}

#[test]
fn brightness_and_contrast_extremes() {
    let input = png(quadrants(40, 20));
    let (_, white) = run(&input, "brightness=100&format=png");
    assert!(white.to_rgb8().pixels().all(|p| p.0 == [255, 255, 255]));
    let (_, black) = run(&input, "brightness=-100&format=png");
    assert!(black.to_rgb8().pixels().all(|p| p.0 == [0, 0, 0]));
    let (_, flat) = run(&input, "contrast=-100&format=png");
    assert!(flat.to_rgb8().pixels().all(|p| near(p.0, [128, 128, 128], 1)));
    let (_, brighter) = run(
        &png(RgbImage::from_pixel(4, 4, Rgb([100, 100, 100]))),
        "brightness=20&format=png",
    );
    assert_eq!(brighter.to_rgb8().get_pixel(0, 0).0, [151, 151, 151]);
}

fn spread(img: &DynamicImage) -> f64 {
    let l = img.to_luma8();
    let n = l.len() as f64;
    let mean = l.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    l.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n
}

#[test]
fn blur_smooths_and_sharpen_adds_contrast() {
    let checks = RgbImage::from_fn(64, 64, |x, y| {
        if (x / 4 + y / 4) % 2 == 0 {
            Rgb([200, 200, 200])
        } else {
            Rgb([60, 60, 60])
        }
    });
    let input = png(checks.clone());
    let before = spread(&DynamicImage::ImageRgb8(checks));
    let (_, blurred) = run(&input, "blur=3&format=png");
    assert_eq!(blurred.dimensions(), (64, 64));
    assert!(spread(&blurred) < before / 2.0);
    let (_, wide) = run(&input, "blur=40&format=png");
    assert!(spread(&wide) < before / 10.0);
    let (_, sharp) = run(&input, "sharpen=1.5&format=png");
    assert_eq!(sharp.dimensions(), (64, 64));
    assert!(spread(&sharp) > before);
}

#[test]
fn flat_fields_apply_in_the_fixed_order_whatever_order_they_come_in() {
    let p = fields("format=webp&sharpen=1&width=100&rotate=90&crop=0,0,10,10&grayscale=true&flip=v");
    let ops: Vec<&str> = p.steps.iter().map(Step::name).collect();
    assert_eq!(ops, ["crop", "rotate", "flip", "resize", "grayscale", "sharpen"]);
    assert_eq!(p.format, Some(Format::Webp));
    assert!(p.auto_orient);
}

#[test]
fn json_form_parses_validates_and_round_trips() {
    let v = serde_json::json!({
        "steps": [
            {"op": "resize", "width": 800, "fit": "cover"},
            {"op": "grayscale"},
            {"op": "rotate", "degrees": 90},
            {"op": "blur", "sigma": 1.5},
            {"op": "flip", "direction": "h"},
            {"op": "crop", "x": 1, "y": 2, "width": 3, "height": 4},
            {"op": "brightness", "value": -10},
            {"op": "resize", "height": 100}
        ],
        "format": "webp",
        "quality": 80
    });
    let p = Pipeline::from_json(&v).expect("valid");
    assert_eq!(p.steps.len(), 8);
    assert!(matches!(
        p.steps[0],
        Step::Resize {
            width: Some(800),
            fit: Fit::Cover,
            ..
        }
    ));
    let back = serde_json::to_value(&p).expect("serialises");
    assert_eq!(Pipeline::from_json(&back).expect("round trip"), p);
    // The flat words are accepted as keys too.
    let alias =
        Pipeline::from_json(&serde_json::json!({"steps": [{"op": "rotate", "rotate": 270}]})).unwrap();
    assert_eq!(alias.steps, vec![Step::Rotate { degrees: 270 }]);
    // A flat object reads like the flat form.
    let flat =
        Pipeline::from_json(&serde_json::json!({"width": 300, "format": "png", "grayscale": true})).unwrap();
    assert_eq!(flat.steps.len(), 2);
    assert_eq!(flat.format, Some(Format::Png));
}

fn field_error(spec: &str) -> PipelineError {
    let pairs: Vec<(&str, &str)> = spec.split('&').map(|kv| kv.split_once('=').unwrap()).collect();
    Pipeline::from_fields(pairs).expect_err(spec)
}

#[test]
fn bad_values_name_the_parameter_and_its_range() {
    for (spec, param, hint) in [
        ("quality=0", "quality", "1 and 100"),
        ("quality=101", "quality", "1"),
        ("width=0", "width", "20000"),
        ("height=abc", "height", "20000"),
        ("rotate=45", "rotate", "90, 180 or 270"),
        ("flip=x", "flip", "h or v"),
        ("fit=stretch&width=5", "fit", "contain, cover, fill or pad"),
        ("crop=1,2,3", "crop", "x,y,w,h"),
        ("crop=1,2,0,4", "crop", "at least 1"),
        // Exactly the documented grammar: no spaces, signs, leading zeros or 10-digit values.
        ("crop=1, 2,3,4", "crop", "x,y,w,h"),
        ("crop=+1,2,3,4", "crop", "x,y,w,h"),
        ("crop=01,2,3,4", "crop", "x,y,w,h"),
        ("crop=1,2,3,1234567890", "crop", "x,y,w,h"),
        ("brightness=101", "brightness", "-100 and 100"),
        ("contrast=-200", "contrast", "-100 and 100"),
        ("blur=0", "blur", "0.1 and 100"),
        ("blur=NaN", "blur", "0.1 and 100"),
        ("sharpen=11", "sharpen", "0.1 and 10"),
        ("format=svg", "format", "jpeg, png"),
        ("upscale=maybe&width=3", "upscale", "true or false"),
        ("fit=cover", "fit", "width or height"),
        ("colour=red", "colour", "unknown"),
    ] {
        let e = field_error(spec);
        assert_eq!(e.param, param, "{spec}: {e}");
        assert!(e.message.contains(hint), "{spec}: {e}");
    }
    let json =
        Pipeline::from_json(&serde_json::json!({"steps": [{"op": "blur", "sigma": 500}]})).unwrap_err();
    assert_eq!(
        json.param, "steps[0].sigma",
        "the JSON form names the field by its path"
    );
    assert!(json.message.contains("0.1 and 100"), "{json}");
    let unknown = Pipeline::from_json(&serde_json::json!({"steps": [{"op": "explode"}]})).unwrap_err();
    assert_eq!(unknown.param, "steps[0].op");
    assert_eq!(Pipeline::from_fields(Vec::<(&str, &str)>::new()).unwrap(), None);
}

#[test]
fn field_names_cover_every_flat_field() {
    for name in FIELD_NAMES {
        let value = match *name {
            "crop" => "0,0,1,1",
            "rotate" => "90",
            "flip" => "h",
            "fit" => "cover",
            "format" => "png",
            "auto_orient" | "upscale" | "grayscale" | "invert" | "equalize" => "true",
            "tint" => "ff8800",
            "background" => "ffffff",
            "kernel" => "edge",
            "gravity" | "watermark_gravity" => "center",
            "focus" => "0.5,0.5",
            "frames" => "first",
            "watermark" => "00000000-0000-0000-0000-000000000001",
            _ => "5",
        };
        let mut pairs = vec![(*name, value)];
        if name.starts_with("watermark_") {
            pairs.push(("watermark", "00000000-0000-0000-0000-000000000001"));
        }
        if matches!(*name, "fit" | "upscale" | "gravity" | "focus") {
            pairs.push(("width", "10"));
        }
        if *name == "focus" {
            pairs.extend([("height", "10"), ("fit", "cover")]);
        }
        assert!(Pipeline::from_fields(pairs).is_ok(), "{name}");
    }
}

#[test]
fn stored_invalid_pipeline_fails_the_job_with_the_reason() {
    let p = Pipeline {
        steps: vec![Step::Rotate { degrees: 45 }],
        ..Pipeline::default()
    };
    let err = imaging::process(&png(quadrants(8, 8)), &p, &LIMITS).unwrap_err();
    assert!(matches!(err, ImagingError::Invalid(_)));
    assert!(err.to_string().contains("rotate"), "{err}");
}

// ---------------------------------------------------------------- orientation

/// A JPEG with an EXIF APP1 segment carrying `orientation` (and a GPS-like marker string).
fn with_exif(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes()); // one IFD entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    tiff.extend(b"GPS-SECRET-48.8584N");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// The stored pixels that a viewer honouring `orientation` shows as `upright`.
fn stored_for(upright: &DynamicImage, orientation: u8) -> DynamicImage {
    let o = image::metadata::Orientation::from_exif(orientation).unwrap();
    let candidates = [
        upright.clone(),
        upright.fliph(),
        upright.flipv(),
        upright.rotate90(),
        upright.rotate180(),
        upright.rotate270(),
        upright.rotate90().fliph(),
        upright.rotate270().fliph(),
    ];
    candidates
        .into_iter()
        .find(|c| {
            let mut shown = c.clone();
            shown.apply_orientation(o);
            shown == *upright
        })
        .expect("one of the eight transforms inverts the orientation")
}

#[test]
fn exif_orientations_1_to_8_all_come_out_upright() {
    let upright = DynamicImage::ImageRgb8(quadrants(64, 32));
    for o in 1..=8u8 {
        let stored = stored_for(&upright, o).to_rgb8();
        let input = with_exif(&jpeg(&stored, 95), u16::from(o));
        let (out, img) = run(&input, "format=png");
        assert_eq!((out.width, out.height), (64, 32), "orientation {o}");
        assert_upright(&img, 40);
        // auto_orient=false leaves the stored pixels alone.
        let (raw, _) = run(&input, "auto_orient=false&format=png");
        assert_eq!((raw.width, raw.height), stored.dimensions(), "orientation {o}");
    }
}

#[test]
fn orientation_is_right_on_the_dct_shrink_path_too() {
    let upright = DynamicImage::ImageRgb8(quadrants(1600, 800));
    for o in [6u8, 8, 5] {
        let stored = stored_for(&upright, o).to_rgb8();
        let input = with_exif(&jpeg(&stored, 90), u16::from(o));
        let (out, img) = run(&input, "width=200&height=200");
        assert_eq!((out.width, out.height), (200, 100), "orientation {o}");
        assert_upright(&img, 40);
    }
}

// ---------------------------------------------------------------- formats

fn noisy(w: u32, h: u32) -> RgbImage {
    let mut seed = 0x9E37_79B9u32;
    RgbImage::from_fn(w, h, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed % 40) as u8;
        Rgb([
            (x * 3) as u8 ^ n,
            ((y * 2) as u8).wrapping_add(n),
            ((x + y) as u8).wrapping_mul(3),
        ])
    })
}

#[test]
fn every_output_format_has_its_magic_decodes_again_and_reports_its_type() {
    let input = png(noisy(120, 80));
    for format in [
        Format::Jpeg,
        Format::Png,
        Format::Webp,
        Format::Gif,
        Format::Bmp,
        Format::Tiff,
        Format::Avif,
    ] {
        let out = imaging::process(&input, &fields(&format!("format={format}")), &LIMITS).expect("encodes");
        assert_eq!(out.format, format);
        let b = &out.bytes;
        let magic_ok = match format {
            Format::Jpeg => b.starts_with(&[0xFF, 0xD8, 0xFF]),
            Format::Png => b.starts_with(b"\x89PNG\r\n\x1a\n"),
            Format::Gif => b.starts_with(b"GIF8"),
            Format::Webp => b.starts_with(b"RIFF") && &b[8..12] == b"WEBP",
            Format::Bmp => b.starts_with(b"BM"),
            Format::Tiff => b.starts_with(b"II*\0") || b.starts_with(b"MM\0*"),
            Format::Avif => &b[4..8] == b"ftyp" && b[8..32].windows(4).any(|w| w == b"avif"),
            Format::Heic | Format::Heif | Format::Jxl => unreachable!("{format} is not an output"),
        };
        assert!(magic_ok, "{format}: {:?}", &b[..16]);
        assert_eq!(Format::sniff(b), Some(format));
        let again = imaging::probe(b, &LIMITS).expect("our output probes");
        assert_eq!((again.width, again.height), (120, 80));
        // Our AVIF decoder is libheif's; `image` has none here.
        let decoded = if format == Format::Avif {
            let out = imaging::process(b, &fields("format=png"), &LIMITS).expect("decodes again");
            image::load_from_memory(&out.bytes).expect("PNG decodes")
        } else {
            image::load_from_memory(b).expect("decodes again")
        };
        assert_eq!(decoded.dimensions(), (120, 80));
    }
}

#[test]
fn default_output_keeps_the_input_format() {
    for (fmt, format) in [
        (ImageFormat::Png, Format::Png),
        (ImageFormat::Gif, Format::Gif),
        (ImageFormat::Bmp, Format::Bmp),
    ] {
        let input = encode(
            &DynamicImage::ImageRgba8(RgbaImage::from_pixel(10, 10, Rgba([1, 2, 3, 255]))),
            fmt,
        );
        let out = imaging::process(&input, &Pipeline::default(), &LIMITS).expect("processes");
        assert_eq!(out.format, format);
    }
}

#[test]
fn quality_changes_size_for_jpeg_and_webp() {
    let input = png(noisy(300, 200));
    for format in ["jpeg", "webp"] {
        let low = imaging::process(&input, &fields(&format!("format={format}&quality=20")), &LIMITS).unwrap();
        let high =
            imaging::process(&input, &fields(&format!("format={format}&quality=95")), &LIMITS).unwrap();
        assert!(
            low.bytes.len() * 2 < high.bytes.len(),
            "{format}: {} vs {}",
            low.bytes.len(),
            high.bytes.len()
        );
    }
}

#[test]
fn jpeg_optimize_coding_makes_the_same_pixels_smaller() {
    let input = png(noisy(300, 200));
    let optimized = Limits {
        jpeg_optimize_coding: true,
        max_frames: 1000,
        ..LIMITS
    };
    let plain = imaging::process(&input, &fields("format=jpeg&quality=85"), &LIMITS).expect("plain");
    let tuned = imaging::process(&input, &fields("format=jpeg&quality=85"), &optimized).expect("optimized");
    // Only the Huffman tables differ, so the decoded pixels are identical.
    let a = image::load_from_memory(&plain.bytes)
        .expect("plain decodes")
        .to_rgb8();
    let b = image::load_from_memory(&tuned.bytes)
        .expect("optimized decodes")
        .to_rgb8();
    assert!(a == b, "optimised Huffman coding changed the pixels");
    assert!(
        tuned.bytes.len() < plain.bytes.len(),
        "optimised {} bytes, plain {} bytes",
        tuned.bytes.len(),
        plain.bytes.len()
    );
    // The thumbnail is made the same way whatever the setting.
    assert_eq!(plain.thumbnail, tuned.thumbnail);
}

#[test]
fn metadata_is_not_carried_into_outputs() {
    let input = with_exif(&jpeg(&noisy(64, 48), 90), 1);
    assert!(input.windows(10).any(|w| w == b"GPS-SECRET"));
    for format in ["jpeg", "png", "webp", "tiff"] {
        let (out, _) = run(&input, &format!("format={format}"));
        assert!(
            !out.bytes.windows(10).any(|w| w == b"GPS-SECRET"),
            "{format} kept EXIF"
        );
        assert!(
            !out.bytes.windows(4).any(|w| w == b"Exif"),
            "{format} kept an Exif block"
        );
    }
}

#[test]
fn alpha_into_jpeg_is_flattened_on_white() {
    // Fully transparent black hides under the alpha; it must not come out black.
    let mut img = RgbaImage::from_pixel(32, 32, Rgba([0, 0, 0, 0]));
    for x in 0..16 {
        for y in 0..32 {
            img.put_pixel(x, y, Rgba([255, 0, 0, 255]));
        }
    }
    let (out, decoded) = run(&png(img), "format=jpeg");
    assert_eq!(out.format, Format::Jpeg);
    let rgb = decoded.to_rgb8();
    assert!(
        near(rgb.get_pixel(28, 16).0, [255, 255, 255], 8),
        "{:?}",
        rgb.get_pixel(28, 16)
    );
    assert!(
        near(rgb.get_pixel(4, 16).0, [255, 0, 0], 30),
        "{:?}",
        rgb.get_pixel(4, 16)
    );
}

#[test]
fn sixteen_bit_grey_alpha_and_palette_inputs_give_8_bit_output() {
    let rgb16 = image::ImageBuffer::<Rgb<u16>, _>::from_pixel(20, 10, Rgb([65535u16, 0, 32768]));
    let (_, out) = run(&png(DynamicImage::ImageRgb16(rgb16)), "format=png");
    assert_eq!(out.color(), image::ColorType::Rgb8);
    assert!(near(out.to_rgb8().get_pixel(3, 3).0, [255, 0, 128], 1));

    let la = image::GrayAlphaImage::from_pixel(20, 10, image::LumaA([90, 128]));
    let (_, out) = run(&png(DynamicImage::ImageLumaA8(la)), "format=webp");
    assert_eq!(out.dimensions(), (20, 10));

    // GIF is palette-based: decoded and written again as PNG.
    let gif = encode(&DynamicImage::ImageRgb8(quadrants(40, 20)), ImageFormat::Gif);
    let (_, out) = run(&gif, "format=png");
    assert_upright(&out, 10);
}

/// A JPEG with `icc` in an APP2 `ICC_PROFILE` segment.
fn with_icc(jpeg: &[u8], icc: &[u8]) -> Vec<u8> {
    let mut app2 = b"ICC_PROFILE\0\x01\x01".to_vec();
    app2.extend(icc);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE2]);
    out.extend(u16::try_from(app2.len() + 2).unwrap().to_be_bytes());
    out.extend(app2);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn display_p3_photos_are_converted_to_srgb_and_srgb_ones_left_alone() {
    let p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let srgb = moxcms::ColorProfile::new_srgb().encode().unwrap();
    let plain = jpeg(&RgbImage::from_pixel(32, 32, Rgb([60, 200, 60])), 95);
    let centre = |bytes: &[u8]| run(bytes, "format=png").1.to_rgb8().get_pixel(16, 16).0;
    let (as_is, tagged_srgb, tagged_p3) = (
        centre(&plain),
        centre(&with_icc(&plain, &srgb)),
        centre(&with_icc(&plain, &p3)),
    );
    assert_eq!(as_is, tagged_srgb);
    // P3 green is more saturated than the same numbers in sRGB: in sRGB it needs a larger G-R.
    let spread = |p: [u8; 3]| i32::from(p[1]) - i32::from(p[0]);
    assert!(
        spread(tagged_p3) > spread(as_is) + 10,
        "{as_is:?} -> {tagged_p3:?}"
    );
    // The profile itself is not carried into the output.
    let out = imaging::process(&with_icc(&plain, &p3), &fields("format=jpeg"), &LIMITS).unwrap();
    assert!(!out.bytes.windows(11).any(|w| w == b"ICC_PROFILE"));
}

#[test]
fn cmyk_jpeg_is_converted_to_rgb() {
    let (w, h) = (32usize, 16usize);
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    c.set_size(w, h);
    c.set_quality(90.0);
    let mut started = c.start_compress(Vec::new()).unwrap();
    started.write_scanlines(&vec![0u8; w * h * 4]).unwrap();
    let bytes = started.finish().unwrap();
    let (out, img) = run(&bytes, "format=jpeg");
    assert_eq!((out.width, out.height), (32, 16));
    assert_eq!(img.color(), image::ColorType::Rgb8);
}

#[test]
fn thumbnail_is_small_and_decodes() {
    let input = jpeg(&noisy(1200, 900), 85);
    let out = imaging::process(&input, &fields("width=1000"), &LIMITS).unwrap();
    assert_eq!((out.width, out.height), (1000, 750));
    let thumb = image::load_from_memory(&out.thumbnail).unwrap();
    assert_eq!(thumb.dimensions(), (THUMBNAIL_SIZE, 192));
    assert_eq!(Format::sniff(&out.thumbnail), Some(out.thumbnail_format));
}

#[test]
fn big_jpeg_takes_the_dct_shrink_path_and_keeps_exact_geometry() {
    let input = jpeg(&quadrants(3201, 1601), 90);
    let out = imaging::process(&input, &Pipeline::default(), &LIMITS).unwrap();
    assert_eq!((out.width, out.height), (800, 400));
    assert_upright(&image::load_from_memory(&out.bytes).unwrap(), 40);
    let (cover, img) = run(&input, "width=300&height=300&fit=cover");
    assert_eq!((cover.width, cover.height), (300, 300));
    // The centre square of the quadrants still has all four colours in its corners.
    let rgb = img.to_rgb8();
    assert!(near(rgb.get_pixel(10, 10).0, [255, 0, 0], 40));
    assert!(near(rgb.get_pixel(290, 290).0, [255, 255, 255], 40));
}

// ---------------------------------------------------------------- hostile files

fn assert_refused(bytes: &[u8], limits: &Limits, what: &str) -> ImagingError {
    let err = imaging::process(bytes, &Pipeline::default(), limits).expect_err(what);
    assert!(!err.to_string().is_empty());
    err
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    c.extend(kind);
    c.extend(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend(data);
    c.extend(crc32fast::hash(&crc_input).to_be_bytes());
    c
}

#[test]
fn empty_text_html_svg_and_pdf_are_unsupported() {
    for (bytes, what) in [
        (&b""[..], "empty"),
        (b"hello, this is text", "text"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "html"),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>",
            "svg",
        ),
        (b"%PDF-1.4\n1 0 obj<<>>endobj\n", "pdf"),
        (b"\0\0\0\0\0\0\0\0", "zeros"),
    ] {
        let err = imaging::probe(bytes, &LIMITS).expect_err(what);
        assert!(matches!(err, ImagingError::Unsupported(_)), "{what}: {err}");
        assert_eq!(err.code(), "unsupported_media_type");
        assert_refused(bytes, &LIMITS, what);
    }
}

/// AVIF was output-only in the first release; issue 16 reads it (libheif), so our own output
/// is accepted as input.
#[test]
fn avif_input_is_read() {
    let avif = imaging::process(&png(noisy(16, 16)), &fields("format=avif"), &LIMITS).unwrap();
    let probe = imaging::probe(&avif.bytes, &LIMITS).expect("AVIF probes");
    assert_eq!((probe.format, probe.width, probe.height), (Format::Avif, 16, 16));
}

#[test]
fn truncated_files_fail_cleanly() {
    let jpg = jpeg(&noisy(200, 150), 90);
    let pngb = png(noisy(200, 150));
    let gif = encode(&DynamicImage::ImageRgb8(noisy(50, 50)), ImageFormat::Gif);
    let webp = imaging::process(&pngb, &fields("format=webp"), &LIMITS)
        .unwrap()
        .bytes;
    for (bytes, what) in [(&jpg, "jpeg"), (&pngb, "png"), (&gif, "gif"), (&webp, "webp")] {
        for cut in [bytes.len() / 2, 30, 12] {
            let err = assert_refused(&bytes[..cut], &LIMITS, what);
            assert!(
                matches!(err, ImagingError::Corrupt(_) | ImagingError::Unsupported(_)),
                "{what} cut at {cut}: {err}"
            );
        }
    }
}

#[test]
fn png_declaring_100000_by_100000_is_refused_from_the_header() {
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(png_chunk(b"IHDR", &ihdr));
    // A zlib stream of a few zero bytes: what follows the header does not matter.
    bytes.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    ));
    bytes.extend(png_chunk(b"IEND", &[]));
    let err = imaging::probe(&bytes, &LIMITS).unwrap_err();
    assert!(
        matches!(err, ImagingError::TooLarge { width: 100_000, .. }),
        "{err}"
    );
    assert_eq!(err.code(), "image_too_large");
    assert_refused(&bytes, &LIMITS, "huge png");
}

#[test]
fn zip_bomb_like_png_is_bounded_by_the_pixel_limit() {
    // 4000x4000 of zeros deflates to a few kilobytes.
    let bomb = png(image::GrayImage::new(4000, 4000));
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let small = Limits {
        max_pixels: 1_000_000,
        jpeg_optimize_coding: false,
        max_frames: 1000,
    };
    let err = assert_refused(&bomb, &small, "bomb");
    assert!(matches!(err, ImagingError::TooLarge { .. }), "{err}");
    // Under a limit that admits it, it decodes within that budget.
    let out = imaging::process(&bomb, &fields("width=100"), &LIMITS).unwrap();
    assert_eq!((out.width, out.height), (100, 100));
}

#[test]
fn gif_with_thousands_of_frames_counts_every_frame() {
    let mut bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut bytes, 100, 100, &[0, 0, 0, 255, 255, 255]).unwrap();
        for i in 0..3000u32 {
            let frame = gif::Frame {
                width: 100,
                height: 100,
                buffer: std::borrow::Cow::Owned(vec![(i % 2) as u8; 100 * 100]),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).unwrap();
        }
    }
    let limits = Limits {
        max_pixels: 10_000_000,
        jpeg_optimize_coding: false,
        max_frames: 100_000,
    };
    let err = imaging::probe(&bytes, &limits).unwrap_err();
    assert!(
        matches!(err, ImagingError::TooLarge { pixels, .. } if pixels > 10_000_000),
        "{err}"
    );
    // MAX_FRAMES (1000 here) stops the count at frame 1001, before the pixels run out.
    let err = imaging::probe(&bytes, &LIMITS).unwrap_err();
    assert!(
        matches!(
            err,
            ImagingError::TooManyFrames {
                frames: 1001,
                limit: 1000
            }
        ),
        "{err}"
    );
    // Under limits that admit it (30 M pixels in all), a still output takes the first frame.
    let roomy = Limits {
        max_frames: 100_000,
        ..LIMITS
    };
    let out = imaging::process(&bytes, &fields("format=png"), &roomy).unwrap();
    assert_eq!((out.width, out.height), (100, 100));
    let first = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
    assert_eq!(first.get_pixel(5, 5).0, [0, 0, 0]);
}

#[test]
fn jpeg_with_corrupt_huffman_data_is_a_clear_error() {
    let good = jpeg(&noisy(256, 256), 90);
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for (i, b) in bad[mid..mid + 400].iter_mut().enumerate() {
        *b ^= 0x5A ^ (i as u8);
        if *b == 0xFF {
            *b = 0xFE;
        }
    }
    let err = assert_refused(&bad, &LIMITS, "corrupt huffman");
    assert!(matches!(err, ImagingError::Corrupt(_)), "{err}");
    assert_eq!(err.code(), "corrupt_image");
    // The same file through the DCT-shrink path.
    let err = imaging::process(&bad, &fields("width=32"), &LIMITS).unwrap_err();
    assert!(matches!(err, ImagingError::Corrupt(_)), "{err}");
}

/// Runs `f` and returns, beside its result, every panic raised on this thread meanwhile, caught
/// or not: the decoders' panic boundary turns a panic into an error, which alone would hide it.
/// (MozJPEG's error exits unwind with `resume_unwind`, which skips the hook: no false alarms.)
fn panics_during<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    thread_local! {
        static WATCHED: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
    }
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = WATCHED.try_with(|w| {
                if let Some(panics) = w.borrow_mut().as_mut() {
                    panics.push(info.to_string());
                }
            });
            previous(info);
        }));
    });
    WATCHED.with(|w| *w.borrow_mut() = Some(Vec::new()));
    let result = f();
    let panics = WATCHED.with(|w| w.borrow_mut().take()).unwrap_or_default();
    (result, panics)
}

#[test]
fn the_panic_watch_sees_a_panic_that_was_caught() {
    let (caught, panics) = panics_during(|| std::panic::catch_unwind(|| panic!("on purpose")));
    assert!(caught.is_err());
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert!(panics[0].contains("on purpose"), "{panics:?}");
}

#[test]
fn random_garbage_behind_real_magic_never_panics() {
    let mut seed = 12345u32;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let magics: [&[u8]; 6] = [
        b"\xFF\xD8\xFF\xE0",
        b"\x89PNG\r\n\x1a\n",
        b"GIF89a",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"BM",
        b"II*\0",
    ];
    let mut inputs = Vec::new();
    for magic in magics {
        for len in [0usize, 10, 100, 2000] {
            let mut bytes = magic.to_vec();
            bytes.extend((0..len).map(|_| rnd() as u8));
            inputs.push(bytes);
        }
    }
    // Valid headers with garbage bodies.
    let jpg = jpeg(&noisy(64, 64), 80);
    for start in [20, 200, 600] {
        let mut bytes = jpg.clone();
        for b in &mut bytes[start..] {
            *b = rnd() as u8;
        }
        inputs.push(bytes);
    }
    let (outcomes, panics) = panics_during(|| {
        inputs
            .iter()
            .map(|bytes| imaging::process(bytes, &Pipeline::default(), &LIMITS))
            .collect::<Vec<_>>()
    });
    // Either outcome is fine; panicking (even into the panic boundary) or hanging is not.
    assert!(
        panics.is_empty(),
        "{} panics on garbage input:\n{}",
        panics.len(),
        panics.join("\n")
    );
    for (bytes, outcome) in inputs.iter().zip(outcomes) {
        match outcome {
            Ok(out) => {
                let decoded = image::load_from_memory(&out.bytes).expect("the output decodes");
                assert_eq!(decoded.dimensions(), (out.width, out.height));
            }
            Err(e) => assert!(
                !e.to_string().is_empty(),
                "an error without a message for {} bytes starting {:02x?}",
                bytes.len(),
                &bytes[..bytes.len().min(12)]
            ),
        }
    }
}

#[test]
fn bmp_declaring_a_huge_canvas_is_refused() {
    let mut bytes = b"BM".to_vec();
    bytes.extend(1000u32.to_le_bytes()); // file size
    bytes.extend([0; 4]);
    bytes.extend(54u32.to_le_bytes()); // pixel data offset
    bytes.extend(40u32.to_le_bytes()); // BITMAPINFOHEADER
    bytes.extend(60_000i32.to_le_bytes());
    bytes.extend(60_000i32.to_le_bytes());
    bytes.extend(1u16.to_le_bytes());
    bytes.extend(24u16.to_le_bytes());
    bytes.extend([0; 24]);
    let err = assert_refused(&bytes, &LIMITS, "huge bmp");
    assert!(
        matches!(err, ImagingError::TooLarge { .. } | ImagingError::Corrupt(_)),
        "{err}"
    );
}

#[test]
fn resize_output_over_the_pixel_limit_is_refused_before_allocating() {
    let input = png(noisy(100, 100));
    let small = Limits {
        max_pixels: 1_000_000,
        jpeg_optimize_coding: false,
        max_frames: 1000,
    };
    let err = imaging::process(
        &input,
        &fields("width=5000&height=5000&fit=fill&upscale=true"),
        &small,
    )
    .unwrap_err();
    assert!(matches!(err, ImagingError::TooLarge { .. }), "{err}");
}

/// A JPEG with more scans than `MAX_SCANS` (the progressive CPU bomb: thousands of tiny scans,
/// each revisiting every coefficient) fails at once as corrupt instead of decoding for minutes.
/// The scans here are `FF DA` pairs in a comment segment: the guard counts markers before
/// libjpeg sees the file, so that is what it must refuse; a file with fewer passes.
#[test]
fn jpeg_with_too_many_scans_is_refused_before_decoding() {
    let base = jpeg(&quadrants(64, 48), 90);
    let with_comment = |pairs: usize| {
        let mut comment = Vec::new();
        for _ in 0..pairs {
            comment.extend([0xFF, 0xDA]);
        }
        let mut out = base[..2].to_vec();
        out.extend([0xFF, 0xFE]);
        out.extend(
            u16::try_from(comment.len() + 2)
                .expect("short comment")
                .to_be_bytes(),
        );
        out.extend(comment);
        out.extend(&base[2..]);
        out
    };
    let bomb = with_comment(250);
    let started = std::time::Instant::now();
    let err = imaging::process(&bomb, &fields("width=32"), &LIMITS).expect_err("too many scans");
    assert!(matches!(err, ImagingError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("scans"), "{err}");
    println!("refused in {:?}: {err}", started.elapsed());
    let fine = with_comment(20);
    imaging::process(&fine, &fields("width=32"), &LIMITS).expect("a file under the limit decodes");
}

// ---------------------------------------------------------------- JPEG pass-through

#[test]
fn a_jpeg_the_pipeline_would_not_change_passes_through_without_its_metadata() {
    let original = jpeg(&noisy(640, 480), 92);
    let input = with_exif(&original, 1);
    // Fit 800×800 (the default pipeline): a 640×480 JPEG already fits.
    let out = imaging::process(&input, &Pipeline::default(), &LIMITS).expect("processes");
    assert_eq!(
        out.bytes, original,
        "the compressed data kept, the EXIF (with its GPS) dropped"
    );
    assert_eq!((out.width, out.height, out.format), (640, 480, Format::Jpeg));
    let thumb = image::load_from_memory(&out.thumbnail).expect("thumbnail decodes");
    assert_eq!(thumb.width().max(thumb.height()), THUMBNAIL_SIZE);
    assert!(out.facts.is_some());

    // Anything that changes the pixels or the encoding takes the full path.
    for spec in [
        "quality=80",
        "width=320",
        "format=png",
        "grayscale=true",
        "background=ff0000",
    ] {
        let (changed, _) = run(&input, spec);
        assert_ne!(changed.bytes, original, "{spec}");
    }
    // An orientation to apply: re-encoded upright.
    let turned =
        imaging::process(&with_exif(&original, 6), &Pipeline::default(), &LIMITS).expect("processes");
    assert_eq!((turned.width, turned.height), (480, 640));
    // Damage in the entropy data still fails: the file is decoded, at a smaller scale.
    let mut damaged = original.clone();
    let cut = damaged.len() * 2 / 3;
    damaged.truncate(cut);
    damaged.extend([0xFF, 0xD9]);
    let err = imaging::process(&damaged, &Pipeline::default(), &LIMITS).expect_err("truncated");
    assert_eq!(err.code(), "corrupt_image", "{err}");
}
