//! What the image fuzz targets share: the limits they run under, and the probe-then-process
//! check every decoder target makes. Built from flat fields, like an upload, so the targets
//! keep compiling when a pipeline step grows a field (a struct literal of `Step` broke `image`
//! once).

use image_processor::imaging::{self, Limits, Pipeline};

/// `MAX_PIXELS`' and `MAX_FRAMES`' defaults, for the header check an upload runs.
pub const PRODUCTION: Limits = Limits {
    max_pixels: 50_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

/// Lower for `process`, to keep executions fast: a tiny file may legitimately declare a
/// 50-megapixel image, and decoding one takes seconds, which would drown the search; the limit
/// checks themselves are the same code at either number.
pub const FUZZ_PROCESS: Limits = Limits {
    max_pixels: 4_000_000,
    jpeg_optimize_coding: false,
    max_frames: 1000,
};

/// The `image` target's pipelines, as flat fields like an upload sends them: every operation
/// and output format but AVIF, and animated outputs (GIF, WebP) for animated inputs.
pub const PIPELINES: [&str; 12] = [
    "",
    "width=64&height=64&fit=cover&gravity=smart&format=webp",
    "rotate=90&flip=h&width=40&format=png",
    "crop=0,0,1,1&grayscale=true&format=jpeg",
    "width=32&height=48&fit=fill&brightness=-50&contrast=80&format=gif",
    "height=24&blur=1.5&sharpen=2&format=bmp",
    "width=16&height=16&format=tiff",
    "width=40&height=30&fit=pad&background=ff000080&saturation=50&hue=90&format=png",
    "width=48&gamma=2.2&sepia=60&invert=true&tint=336699&equalize=true&format=jpeg",
    "width=48&kernel=sobel&pixelate=4&format=webp",
    "width=30&height=30&fit=cover&focus=0.2,0.8&frames=first&format=gif",
    "width=24&format=gif",
];

/// A pipeline from flat fields (`"width=48&format=png"`). The targets' specs are fixed, so
/// one that does not parse is a bug of the target: it panics on the first run rather than
/// quietly fuzzing the default pipeline instead.
pub fn pipeline(spec: &str) -> Pipeline {
    let pairs = spec.split('&').filter_map(|kv| kv.split_once('='));
    match Pipeline::from_fields(pairs) {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => panic!("the fuzz target's pipeline `{spec}` does not parse: {e}"),
    }
}

/// The upload's header check under [`PRODUCTION`], then the worker's job under
/// [`FUZZ_PROCESS`]. Errors are fine; what either accepts must be sound. Returns the output
/// when the job succeeded, for target-specific checks.
pub fn probe_then_process(data: &[u8], pipeline: &Pipeline) -> Option<imaging::Processed> {
    let probe = imaging::probe(data, &PRODUCTION).ok()?;
    assert!(probe.width > 0 && probe.height > 0, "probe accepted a zero size");
    assert!(
        u64::from(probe.width) * u64::from(probe.height) <= PRODUCTION.max_pixels,
        "probe accepted {}x{}",
        probe.width,
        probe.height
    );
    let out = imaging::process(data, pipeline, &FUZZ_PROCESS).ok()?;
    assert!(out.width > 0 && out.height > 0);
    assert!(u64::from(out.width) * u64::from(out.height) <= FUZZ_PROCESS.max_pixels);
    assert!(!out.bytes.is_empty() && !out.thumbnail.is_empty());
    Some(out)
}

/// The decoder targets' job: a 48×48 box as PNG (AVIF's encoder is too slow to fuzz and never
/// sees the hostile bytes), the commonest job on a hostile original.
pub fn decoder_job(data: &[u8]) {
    if let Some(out) = probe_then_process(data, &pipeline("width=48&height=48&format=png")) {
        assert!(
            out.width <= 48 && out.height <= 48,
            "{}x{}",
            out.width,
            out.height
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_pipeline_parses_with_every_switch() {
        for base in PIPELINES {
            for orient in ["", "&auto_orient=false"] {
                let spec = format!("{base}{orient}&quality=100");
                let pairs = spec
                    .trim_start_matches('&')
                    .split('&')
                    .filter_map(|kv| kv.split_once('='));
                assert!(Pipeline::from_fields(pairs).is_ok(), "{spec}");
            }
        }
    }
}
