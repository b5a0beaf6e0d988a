//! Issue 16's decoders: HEIC/HEIF and AVIF (libheif) and JPEG XL (jxl-oxide), on real files —
//! the small fixtures in `tests/fixtures/formats/` (made with Debian's heif-enc and cjxl, see the
//! README there) and AVIFs encoded here — through the imaging core and the HTTP API.

use std::io::Cursor;

use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use image_processor::imaging::{self, Format, ImagingError, Limits, Pipeline};

use crate::common::{assert_error, spawn_app};

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../fixtures/formats/", $name)).as_slice()
    };
}

/// Every fixture made from the 64×32 "red left, blue right" picture (230,20,20 | 20,20,230).
const RED_BLUE: &[(&str, &[u8])] = &[
    ("rb.heic", fixture!("rb.heic")),
    ("rb10.heic", fixture!("rb10.heic")),
    ("rb12.heic", fixture!("rb12.heic")),
    ("rb.jxl", fixture!("rb.jxl")),
    ("rb16.jxl", fixture!("rb16.jxl")),
];

fn pipeline(spec: &str) -> Pipeline {
    let pairs: Vec<(&str, &str)> = spec
        .split('&')
        .filter(|s| !s.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .collect();
    Pipeline::from_fields(pairs)
        .expect("valid fields")
        .unwrap_or_default()
}

/// Processes `input` and decodes the output (which must not be AVIF: `image` reads no AVIF here).
fn run(input: &[u8], spec: &str) -> (Format, DynamicImage) {
    let out = imaging::process(input, &pipeline(spec), &LIMITS).expect("processes");
    let img = image::load_from_memory(&out.bytes).expect("output decodes");
    assert_eq!((img.width(), img.height()), (out.width, out.height));
    (out.format, img)
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

fn rgb_at(img: &DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

fn assert_red_blue(name: &str, img: &DynamicImage) {
    assert_eq!((img.width(), img.height()), (64, 32), "{name}");
    let (left, right) = (rgb_at(img, 8, 16), rgb_at(img, 56, 16));
    assert!(close(left, [230, 20, 20], 12), "{name}: left is {left:?}");
    assert!(close(right, [20, 20, 230], 12), "{name}: right is {right:?}");
}

#[test]
fn fixtures_are_sniffed_by_their_signatures() {
    let cases: &[(&[u8], Format)] = &[
        (fixture!("rb.heic"), Format::Heic),
        (fixture!("p3.avif"), Format::Avif),
        (fixture!("rb.jxl"), Format::Jxl),
        (fixture!("rb-o6.jxl"), Format::Jxl),
    ];
    for (bytes, format) in cases {
        assert_eq!(Format::sniff(bytes), Some(*format));
    }
    // A generic major brand names the codec among the compatible brands.
    let ftyp = |major: &[u8], compat: &[u8]| {
        let mut b = ((16 + compat.len()) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(major);
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.extend_from_slice(compat);
        b
    };
    assert_eq!(Format::sniff(&ftyp(b"mif1", b"miafavif")), Some(Format::Avif));
    assert_eq!(Format::sniff(&ftyp(b"mif1", b"heic")), Some(Format::Heic));
    assert_eq!(Format::sniff(&ftyp(b"msf1", b"iso8")), Some(Format::Heif));
    assert_eq!(Format::sniff(&ftyp(b"isom", b"mp41")), None);
    for (format, mime) in [
        (Format::Heic, "image/heic"),
        (Format::Heif, "image/heif"),
        (Format::Avif, "image/avif"),
        (Format::Jxl, "image/jxl"),
    ] {
        assert_eq!(format.content_type(), mime);
    }
}

#[test]
fn heic_and_jpeg_xl_decode_to_their_colours_and_come_out_as_jpeg() {
    for (name, bytes) in RED_BLUE {
        let probe = imaging::probe(bytes, &LIMITS).expect(name);
        assert_eq!((probe.width, probe.height), (64, 32), "{name}");
        let (format, img) = run(bytes, "");
        assert_eq!(format, Format::Jpeg, "{name}");
        assert_red_blue(name, &img);
    }
}

#[test]
fn ten_and_twelve_bit_heic_and_sixteen_bit_jpeg_xl_become_8_bit() {
    for (name, bytes) in RED_BLUE {
        let (_, img) = run(bytes, "format=png");
        assert!(
            matches!(img, DynamicImage::ImageRgb8(_)),
            "{name}: {:?}",
            img.color()
        );
        assert_red_blue(name, &img);
    }
}

#[test]
fn alpha_is_kept_and_the_default_output_is_png() {
    for (name, bytes) in [
        ("alpha.heic", fixture!("alpha.heic")),
        ("alpha.jxl", fixture!("alpha.jxl")),
    ] {
        let (format, img) = run(bytes, "");
        assert_eq!(format, Format::Png, "{name}");
        assert!(img.color().has_alpha(), "{name}");
        assert_eq!(img.get_pixel(8, 16).0[3], 255, "{name}: left is opaque");
        assert!(img.get_pixel(56, 16).0[3] < 8, "{name}: right is transparent");
        let left = rgb_at(&img, 8, 16);
        assert!(close(left, [230, 20, 20], 12), "{name}: {left:?}");
    }
}

/// Phones write the rotation twice: as the container's `irot` and as EXIF orientation 6. The
/// fixture has both (made from a 64×32 JPEG with orientation 6, `irot` added by add-irot.py):
/// turned once it is 32×64 with red on top; turned twice it would be upside down.
#[test]
fn heic_rotation_is_applied_once_though_exif_says_it_too() {
    for spec in ["", "auto_orient=false"] {
        let (_, img) = run(fixture!("rotated.heic"), spec);
        assert_eq!((img.width(), img.height()), (32, 64), "{spec}");
        let (top, bottom) = (rgb_at(&img, 16, 8), rgb_at(&img, 16, 56));
        assert!(close(top, [230, 20, 20], 16), "{spec}: top is {top:?}");
        assert!(close(bottom, [20, 20, 230], 16), "{spec}: bottom is {bottom:?}");
    }
    // EXIF orientation alone is not the container's geometry: HEIF viewers ignore it.
    let (_, img) = run(fixture!("exif6.heic"), "");
    assert_red_blue("exif6.heic", &img);
}

/// cjxl moves a JPEG's EXIF orientation 6 into the codestream header and keeps the EXIF too.
#[test]
fn jpeg_xl_orientation_is_applied_once() {
    let probe = imaging::probe(fixture!("rb-o6.jxl"), &LIMITS).expect("probes");
    assert_eq!((probe.width, probe.height), (32, 64));
    let (_, img) = run(fixture!("rb-o6.jxl"), "");
    assert_eq!((img.width(), img.height()), (32, 64));
    let (top, bottom) = (rgb_at(&img, 16, 8), rgb_at(&img, 16, 56));
    assert!(close(top, [230, 20, 20], 16), "top is {top:?}");
    assert!(close(bottom, [20, 20, 230], 16), "bottom is {bottom:?}");
}

fn avif(img: &DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Avif).expect("AVIF encodes");
    out.into_inner()
}

#[test]
fn avif_decodes_and_stays_avif_by_default() {
    let src = RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            Rgb([230, 20, 20])
        } else {
            Rgb([20, 20, 230])
        }
    });
    let bytes = avif(&DynamicImage::ImageRgb8(src));
    assert_eq!(Format::sniff(&bytes), Some(Format::Avif));
    let out = imaging::process(&bytes, &pipeline("width=32"), &LIMITS).expect("processes");
    assert_eq!((out.format, out.width, out.height), (Format::Avif, 32, 16));
    let (_, img) = run(&bytes, "format=png");
    assert_red_blue("generated avif", &img);
}

#[test]
fn avif_alpha_is_kept() {
    let src = RgbaImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            Rgba([230, 20, 20, 255])
        } else {
            Rgba([20, 20, 230, 0])
        }
    });
    for (name, bytes) in [
        ("generated", avif(&DynamicImage::ImageRgba8(src))),
        ("alpha.avif", fixture!("alpha.avif").to_vec()),
    ] {
        let (_, img) = run(&bytes, "format=png");
        assert_eq!(img.get_pixel(8, 16).0[3], 255, "{name}");
        assert!(img.get_pixel(56, 16).0[3] < 8, "{name}");
    }
}

/// p3.avif holds the red/blue pixels tagged (nclx) as Display P3: in sRGB that red is more
/// saturated than the numbers say, so it comes out redder than (230, 20, 20).
#[test]
fn display_p3_avif_is_converted_to_srgb() {
    let (_, img) = run(fixture!("p3.avif"), "format=png");
    let red = rgb_at(&img, 8, 16);
    assert!(red[0] > 240 && red[1] < 12, "P3 red in sRGB: {red:?}");
}

#[test]
fn read_only_formats_are_refused_as_outputs() {
    for name in ["heic", "heif", "jxl"] {
        let err = Pipeline::from_fields([("format", name)]).expect_err(name);
        assert_eq!(err.param, "format", "{name}");
    }
}

#[tokio::test]
async fn uploads_of_each_new_format_are_processed() {
    let app = spawn_app().await;
    let cases: &[(&str, &[u8], &str, &str)] = &[
        ("rb.heic", fixture!("rb.heic"), "image/heic", "image/jpeg"),
        ("alpha.heic", fixture!("alpha.heic"), "image/heic", "image/png"),
        ("p3.avif", fixture!("p3.avif"), "image/avif", "image/avif"),
        ("rb.jxl", fixture!("rb.jxl"), "image/jxl", "image/jpeg"),
    ];
    for (name, bytes, input_type, output_type) in cases {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str("application/octet-stream")
                .expect("mime"),
        );
        let res = app
            .http
            .post(app.url("/api/images"))
            .multipart(form)
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), 202, "{name}");
        let body: serde_json::Value = res.json().await.expect("json");
        let id = body["id"].as_str().expect("id").to_string();
        let done = app.wait_done(&id).await;
        assert_eq!(done["status"], "completed", "{name}: {done}");
        let original = app.get(&format!("/api/images/{id}/original")).await;
        assert_eq!(original.headers()["content-type"], *input_type, "{name}");
        let processed = app.get(&format!("/api/images/{id}/processed")).await;
        assert_eq!(processed.headers()["content-type"], *output_type, "{name}");
    }
    // A truncated HEIC is refused at upload with the SPEC's 422.
    let truncated = &fixture!("rb.heic")[..300];
    let res = crate::common::upload_png(&app, truncated.to_vec(), &[]).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_error("truncated heic", &body, "corrupt_image");
    app.stop().await;
}

#[test]
fn errors_keep_their_codes() {
    let err = imaging::probe(b"\0\0\0\x0cftypheic\0\0\0\0", &LIMITS).unwrap_err();
    assert!(
        matches!(err, ImagingError::Corrupt(_) | ImagingError::Unsupported(_)),
        "{err:?}"
    );
}
