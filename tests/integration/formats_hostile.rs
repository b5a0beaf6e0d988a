//! The hostile-input battery for issue 16's decoders: truncated files, lying and huge declared
//! sizes, deep container boxes, garbage after a valid `ftyp`. Every answer is an error with one
//! of the upload's codes (or, for harmless damage, an image): never a panic, an abort or an
//! allocation of the declared size.

use image_processor::imaging::{self, ImagingError, Limits, Pipeline};

const LIMITS: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

const FIXTURES: &[(&str, &[u8])] = &[
    ("rb.heic", include_bytes!("../fixtures/formats/rb.heic")),
    ("rb10.heic", include_bytes!("../fixtures/formats/rb10.heic")),
    ("alpha.heic", include_bytes!("../fixtures/formats/alpha.heic")),
    ("rotated.heic", include_bytes!("../fixtures/formats/rotated.heic")),
    ("alpha.avif", include_bytes!("../fixtures/formats/alpha.avif")),
    ("p3.avif", include_bytes!("../fixtures/formats/p3.avif")),
    ("rb.jxl", include_bytes!("../fixtures/formats/rb.jxl")),
    ("rb16.jxl", include_bytes!("../fixtures/formats/rb16.jxl")),
    ("alpha.jxl", include_bytes!("../fixtures/formats/alpha.jxl")),
    ("rb-o6.jxl", include_bytes!("../fixtures/formats/rb-o6.jxl")),
];

/// Probes and processes `bytes`; every error must carry one of the upload's codes.
fn outcome(bytes: &[u8]) -> Result<(), ImagingError> {
    let allowed = ["unsupported_media_type", "corrupt_image", "image_too_large"];
    let result = imaging::probe(bytes, &LIMITS)
        .and_then(|_| imaging::process(bytes, &Pipeline::default(), &LIMITS).map(|_| ()));
    if let Err(e) = &result {
        assert!(allowed.contains(&e.code()), "{e:?}");
    }
    result
}

#[test]
fn truncated_files_are_refused() {
    for (name, bytes) in FIXTURES {
        for len in [
            0,
            4,
            12,
            20,
            32,
            bytes.len() / 4,
            bytes.len() / 2,
            bytes.len() * 3 / 4,
        ] {
            let result = outcome(&bytes[..len.min(bytes.len())]);
            assert!(result.is_err(), "{name} cut to {len} bytes was accepted");
        }
        // The last bytes may be padding: only no crash is asked.
        let _ = outcome(&bytes[..bytes.len() - 1]);
    }
}

/// Rewrites the width and height of every `ispe` (image spatial extents) box: heif-enc writes
/// two here (the coded 64×64 image, and the 64×32 primary image derived from it).
fn with_ispe(bytes: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let boxes: Vec<usize> = out
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"ispe")
        .map(|(at, _)| at + 8)
        .collect();
    assert!(!boxes.is_empty(), "no ispe box");
    for at in boxes {
        out[at..at + 4].copy_from_slice(&width.to_be_bytes());
        out[at + 4..at + 8].copy_from_slice(&height.to_be_bytes());
    }
    out
}

#[test]
fn heic_declaring_a_huge_size_is_refused_before_decoding() {
    let rb = FIXTURES[0].1;
    // Over MAX_PIXELS but under libheif's own limit: our check, with the size in the answer.
    match imaging::probe(&with_ispe(rb, 20_000, 20_000), &LIMITS) {
        Err(ImagingError::TooLarge { width, height, .. }) => {
            assert_eq!((width, height), (20_000, 20_000))
        }
        other => panic!("expected image_too_large, got {other:?}"),
    }
    // Over libheif's limit too (2^30 pixels): refused while parsing.
    let err = imaging::probe(&with_ispe(rb, 65_535, 65_535), &LIMITS).unwrap_err();
    assert!(
        matches!(err, ImagingError::TooLarge { .. } | ImagingError::Corrupt(_)),
        "{err:?}"
    );
}

#[test]
fn heic_whose_header_lies_about_its_size_is_refused_or_cropped() {
    let rb = FIXTURES[0].1;
    for (w, h) in [(16, 16), (64, 16), (4096, 4096), (1, 1)] {
        let lying = with_ispe(rb, w, h);
        match outcome(&lying) {
            Err(_) => {}
            // libheif crops a coded image larger than `ispe` to it: then it is that size.
            Ok(()) => {
                let out = imaging::process(&lying, &Pipeline::default(), &LIMITS).expect("again");
                assert_eq!((out.width, out.height), (w, h));
            }
        }
    }
}

/// Bits in JPEG XL order: least significant first.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    used: usize,
}

impl Bits {
    fn put(&mut self, value: u32, count: usize) {
        for i in 0..count {
            if self.used % 8 == 0 {
                self.bytes.push(0);
            }
            if value >> i & 1 == 1 {
                *self.bytes.last_mut().expect("a byte") |= 1 << (self.used % 8);
            }
            self.used += 1;
        }
    }
}

/// A JPEG XL codestream with nothing but its headers: `width`×`height` (each 1..=2^18), default
/// metadata, and no frame.
fn jxl_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut b = Bits::default();
    b.put(0x0AFF, 16); // signature FF 0A
    b.put(0, 1); // not div8
    b.put(2, 2); // height: 1 + u(18)
    b.put(height - 1, 18);
    b.put(0, 3); // no aspect ratio: width follows
    b.put(2, 2);
    b.put(width - 1, 18);
    b.put(1, 1); // metadata all_default
    b.put(1, 1); // transform data all_default
    b.bytes.extend_from_slice(&[0; 8]);
    b.bytes
}

#[test]
fn jpeg_xl_declaring_a_huge_size_is_refused_from_its_header() {
    match imaging::probe(&jxl_header_only(200_000, 200_000), &LIMITS) {
        Err(ImagingError::TooLarge { width, height, .. }) => {
            assert_eq!((width, height), (200_000, 200_000))
        }
        other => panic!("expected image_too_large, got {other:?}"),
    }
    // A plausible size with no frame behind it is damage.
    let err = outcome(&jxl_header_only(64, 32)).unwrap_err();
    assert!(matches!(err, ImagingError::Corrupt(_)), "{err:?}");
}

/// A frame bomb in miniature: 30 frames of 200×200 are 1.2 MP in all, over a limit of 1 MP
/// that any one frame is well under. The header check counts every frame; under the
/// production limit the first frame is the image.
#[test]
fn jpeg_xl_animation_counts_every_frame_against_the_limit() {
    let frames = include_bytes!("../fixtures/formats/frames.jxl");
    let small = Limits {
        max_pixels: 1_000_000,
        ..LIMITS
    };
    match imaging::probe(frames, &small) {
        Err(ImagingError::TooLarge { pixels, .. }) => assert_eq!(pixels, 30 * 200 * 200),
        other => panic!("expected image_too_large, got {other:?}"),
    }
    let out = imaging::process(frames, &Pipeline::default(), &LIMITS).expect("first frame");
    assert_eq!((out.width, out.height), (200, 200));
}

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(8 + body.len())
        .expect("box size")
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

fn ftyp_heic() -> Vec<u8> {
    boxed(b"ftyp", b"heic\0\0\0\0mif1heic")
}

#[test]
fn deeply_nested_boxes_are_refused_without_overflowing_the_stack() {
    for kind in [b"iprp", b"ipco", b"dinf", b"meta", b"abcd"] {
        let mut inner = Vec::new();
        for _ in 0..20_000 {
            inner = boxed(kind, &inner);
        }
        let mut file = ftyp_heic();
        file.extend_from_slice(&boxed(b"meta", &[&[0u8; 4][..], &inner].concat()));
        assert!(outcome(&file).is_err(), "{}", String::from_utf8_lossy(kind));
    }
    // A box that claims to be larger than the file, and one that claims 64-bit size 2^63.
    let mut file = ftyp_heic();
    file.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xF0, b'm', b'e', b't', b'a', 0, 0, 0, 0]);
    assert!(outcome(&file).is_err());
    let mut file = ftyp_heic();
    file.extend_from_slice(&[0, 0, 0, 1, b'm', b'e', b't', b'a', 0x80, 0, 0, 0, 0, 0, 0, 0]);
    assert!(outcome(&file).is_err());
}

#[test]
fn garbage_after_a_valid_ftyp_is_refused() {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    for brand in [&b"heic"[..], b"avif", b"mif1"] {
        for len in [1usize, 7, 64, 512, 4096] {
            for _ in 0..8 {
                let mut file = boxed(b"ftyp", &[brand, b"\0\0\0\0mif1", brand].concat());
                file.extend((0..len).map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                }));
                assert!(outcome(&file).is_err(), "{len} random bytes were an image");
            }
        }
    }
}

#[test]
fn jpeg_xl_with_flipped_bits_fails_cleanly() {
    for (name, bytes) in FIXTURES.iter().filter(|(n, _)| n.ends_with(".jxl")) {
        for at in 0..bytes.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut damaged = bytes.to_vec();
                damaged[at] ^= bit;
                let _ = outcome(&damaged);
            }
        }
        let _ = name;
    }
}
