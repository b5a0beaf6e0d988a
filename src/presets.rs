//! Presets and variants, the parts every layer shares: a preset's name, its pipeline (which
//! may ask for `"format": "auto"`), and the output format a variant row stands for.
//!
//! A variant is keyed `(image_id, preset, format)` (`sql/0015_presets_variants.sql`): `format`
//! is [`VariantFormat::Own`] (`''`) for a preset with a fixed or kept format, and for an `auto`
//! preset the format negotiated from the request's `Accept`.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::imaging::{Format, Pipeline, PipelineError};

/// The longest preset name.
pub const MAX_NAME_LEN: usize = 64;

/// A preset name: `[a-z0-9_-]{1,64}`, so it is safe in a URL path, a file name, a metrics label
/// and the notification payload (no `:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PresetName(String);

impl PresetName {
    /// Checks `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<PresetName, String> {
        if text.is_empty() {
            return Err("a preset name must not be empty".into());
        }
        if text.len() > MAX_NAME_LEN {
            return Err(format!(
                "a preset name is at most {MAX_NAME_LEN} characters (got {})",
                text.len()
            ));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
        {
            return Err(format!(
                "a preset name uses only a-z, 0-9, '_' and '-' (found {:?})",
                c
            ));
        }
        Ok(PresetName(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PresetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A preset's stored pipeline, parsed: the pipeline itself, and whether its format is `auto`.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetPipeline {
    /// With `format` unset when the preset says `auto`.
    pub pipeline: Pipeline,
    pub auto_format: bool,
}

impl PresetPipeline {
    /// Reads the JSON a preset stores (an upload's `pipeline` form), allowing `"format": "auto"`.
    /// The format must be one that is written (a `heic` the JSON form's parser lets through is
    /// refused here), and an error about it lists `auto` among the choices.
    pub fn from_json(value: &serde_json::Value) -> Result<PresetPipeline, PipelineError> {
        let auto_format = value.get("format").and_then(|f| f.as_str()) == Some("auto");
        let parsed = if auto_format {
            let mut without = value.clone();
            if let Some(obj) = without.as_object_mut() {
                obj.remove("format");
            }
            Pipeline::from_json(&without)
        } else {
            Pipeline::from_json(value)
        };
        let pipeline = parsed.map_err(|e| if e.param == "format" { format_error() } else { e })?;
        if pipeline.format.is_some_and(|f| !f.can_write()) {
            return Err(format_error());
        }
        Ok(PresetPipeline {
            pipeline,
            auto_format,
        })
    }

    /// The JSON a preset stores and shows: the pipeline's own (steps) form, with
    /// `"format": "auto"` when the format is negotiated. [`PresetPipeline::from_json`] reads it
    /// back to the same value.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        let mut value = serde_json::to_value(&self.pipeline)?;
        if self.auto_format {
            if let Some(obj) = value.as_object_mut() {
                obj.insert("format".into(), "auto".into());
            }
        }
        Ok(value)
    }

    /// The pipeline that makes the variant stored as `format`.
    pub fn for_variant(&self, format: VariantFormat) -> Pipeline {
        let mut p = self.pipeline.clone();
        match format {
            // JPEG, or PNG when the result has alpha: decided after the operations.
            VariantFormat::Own if self.auto_format => p.universal_format = true,
            VariantFormat::Own => {}
            VariantFormat::Avif => p.format = Some(Format::Avif),
            VariantFormat::Webp => p.format = Some(Format::Webp),
        }
        p
    }
}

/// What a preset's `format` may be.
fn format_error() -> PipelineError {
    PipelineError {
        param: "format".into(),
        message: "must be one of jpeg, png, webp, gif, bmp, tiff, avif, or auto (the best format the \
                  request's Accept names)"
            .into(),
    }
}

/// The `format` column of a variant row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VariantFormat {
    /// `''`: the preset's own format (fixed, or the input's kept); for an `auto` preset, what
    /// every client reads: JPEG, or PNG for an image with alpha.
    Own,
    Avif,
    Webp,
}

impl VariantFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantFormat::Own => "",
            VariantFormat::Avif => "avif",
            VariantFormat::Webp => "webp",
        }
    }

    pub fn parse(text: &str) -> Option<VariantFormat> {
        Some(match text {
            "" => VariantFormat::Own,
            "avif" => VariantFormat::Avif,
            "webp" => VariantFormat::Webp,
            _ => return None,
        })
    }

    /// The best format an `Accept` header names for an `auto` preset: AVIF, else WebP, else
    /// [`VariantFormat::Own`] (JPEG/PNG). Only explicit `image/avif` and `image/webp` count: `*/*` and `image/*` are
    /// what every client sends (curl, old browsers) whether or not it decodes AVIF, so they
    /// get the format everyone reads. A `q=0` refuses the type.
    pub fn negotiate(accept: Option<&str>) -> VariantFormat {
        let Some(accept) = accept else {
            return VariantFormat::Own;
        };
        let accepts = |wanted: &str| {
            accept.split(',').any(|item| {
                let mut parts = item.split(';');
                let mime = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                mime.eq_ignore_ascii_case(wanted) && !refused
            })
        };
        if accepts("image/avif") {
            VariantFormat::Avif
        } else if accepts("image/webp") {
            VariantFormat::Webp
        } else {
            VariantFormat::Own
        }
    }
}

/// Signed variant URLs: `/v/{sig}/{id}/{preset}`, `sig` the unpadded base64url of
/// HMAC-SHA256(`URL_SIGNING_KEY`, `"{id}/{preset}"`), `id` the image's hyphenated lower-case
/// UUID. The format an `auto` preset negotiates is not signed: it is the client's to choose.
fn url_mac(key: &[u8], id: Uuid, preset: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length (config checks it is at least 32 bytes).
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(id.hyphenated().to_string().as_bytes());
    mac.update(b"/");
    mac.update(preset.as_bytes());
    mac
}

/// The `sig` path segment for `id` and `preset`.
pub fn url_signature(key: &[u8], id: Uuid, preset: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url_mac(key, id, preset).finalize().into_bytes())
}

/// The path of the signed URL for `id` and `preset`.
pub fn signed_path(key: &[u8], id: Uuid, preset: &str) -> String {
    format!(
        "/v/{}/{}/{preset}",
        url_signature(key, id, preset),
        id.hyphenated()
    )
}

/// Whether `sig` signs `id` and `preset`. The comparison is constant-time (`Mac::verify_slice`);
/// what may take less time is a `sig` that is not base64url or not 32 bytes long, which tells an
/// attacker nothing about the right one.
pub fn verify_url_signature(key: &[u8], id: Uuid, preset: &str, sig: &str) -> bool {
    let Ok(given) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    url_mac(key, id, preset).verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["thumb", "hero-2x", "a", "card_small", &"x".repeat(64)] {
            assert!(PresetName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Thumb",
            "..",
            "a/b",
            "a\0b",
            "a:b",
            "é",
            " thumb",
            &"x".repeat(65),
        ] {
            let err = PresetName::parse(bad).unwrap_err();
            assert!(err.contains("preset name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn auto_format_is_taken_out_before_the_pipeline_is_checked() {
        let p = PresetPipeline::from_json(&serde_json::json!({"width": 200, "format": "auto"})).unwrap();
        assert!(p.auto_format);
        assert_eq!(p.pipeline.format, None);
        assert_eq!(p.for_variant(VariantFormat::Avif).format, Some(Format::Avif));
        assert!(p.for_variant(VariantFormat::Own).universal_format);
        let fixed = PresetPipeline::from_json(&serde_json::json!({"width": 200, "format": "png"})).unwrap();
        assert!(!fixed.auto_format);
        assert_eq!(fixed.pipeline.format, Some(Format::Png));
        assert!(!fixed.for_variant(VariantFormat::Own).universal_format);
        let err = PresetPipeline::from_json(&serde_json::json!({"width": 0})).unwrap_err();
        assert_eq!(err.param, "width");
        for bad in ["bogus", "heic", "AUTO", "jxl"] {
            for body in [
                serde_json::json!({"format": bad}),
                serde_json::json!({"width": 9, "format": bad}),
            ] {
                let err = PresetPipeline::from_json(&body).unwrap_err();
                assert_eq!(err.param, "format", "{body}");
                assert!(err.message.contains("auto"), "{body}: {}", err.message);
            }
        }
    }

    #[test]
    fn the_stored_form_reads_back_to_the_same_pipeline() {
        for given in [
            serde_json::json!({"width": 200, "format": "auto"}),
            serde_json::json!({"width": 200, "height": 100, "fit": "cover", "grayscale": true, "format": "webp"}),
            serde_json::json!({"steps": [{"op": "blur", "sigma": 2.0}], "quality": 70}),
            serde_json::json!({"format": "auto"}),
            serde_json::json!({}),
        ] {
            let parsed = PresetPipeline::from_json(&given).unwrap();
            let stored = parsed.to_json().unwrap();
            assert_eq!(
                stored.get("format").and_then(|f| f.as_str()) == Some("auto"),
                parsed.auto_format
            );
            assert_eq!(
                PresetPipeline::from_json(&stored).unwrap(),
                parsed,
                "{given} -> {stored}"
            );
        }
    }

    #[test]
    fn accept_is_negotiated_from_explicit_types_only() {
        use VariantFormat::*;
        let cases = [
            (None, Own),
            (Some("*/*"), Own),
            (Some("image/*"), Own),
            (Some("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"), Avif),
            (Some("image/webp,*/*"), Webp),
            (Some("image/avif;q=0, image/webp"), Webp),
            (Some("IMAGE/AVIF"), Avif),
            (Some("text/html"), Own),
        ];
        for (accept, want) in cases {
            assert_eq!(VariantFormat::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn signatures_verify_and_anything_else_is_refused() {
        let key = b"0123456789abcdef0123456789abcdef";
        let id: Uuid = "6f1c1a4e-2b0a-4c52-9c1e-3f7d2a8b9c01".parse().unwrap();
        let sig = url_signature(key, id, "thumb");
        // What the README's shell recipe gives (OpenSSL 3.0 and coreutils, run by hand):
        // printf '%s' "$id/thumb" | openssl dgst -sha256 -hmac "$key" -binary | basenc --base64url | tr -d =
        // and its JavaScript one (Node's crypto, `digest('base64url')`).
        assert_eq!(sig, "R1zBLYc7ZbHwNO1gc_Hw878J2OWW--ukxWHbh8bfdJI");
        assert!(verify_url_signature(key, id, "thumb", &sig));
        assert_eq!(signed_path(key, id, "thumb"), format!("/v/{sig}/{id}/thumb"));
        assert!(!verify_url_signature(key, id, "hero", &sig));
        assert!(!verify_url_signature(
            b"another key of thirty-two bytes!",
            id,
            "thumb",
            &sig
        ));
        assert!(!verify_url_signature(key, Uuid::nil(), "thumb", &sig));
        for bad in [
            "",
            "!!!",
            &sig[..42],
            &format!("{sig}A"),
            &format!("{sig}="),
            "AAAA",
        ] {
            assert!(!verify_url_signature(key, id, "thumb", bad), "{bad:?}");
        }
    }
}
