//! Presets and variants, the parts every layer shares: a preset's name, its pipeline (which
//! may ask for `"format": "auto"`), and the output format a variant row stands for.
//!
//! A variant is keyed `(image_id, preset, format)` (`sql/0015_presets_variants.sql`): `format`
//! is [`VariantFormat::Own`] (`''`) for a preset with a fixed or kept format, and for an `auto`
//! preset the format negotiated from the request's `Accept`.

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
            VariantFormat::Own => {}
            VariantFormat::Avif => p.format = Some(Format::Avif),
            VariantFormat::Webp => p.format = Some(Format::Webp),
            // JPEG, or PNG when the result has alpha: decided after the operations.
            VariantFormat::Jpeg => {
                p.format = None;
                p.universal_format = true;
            }
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
    /// `''`: the preset's own format (fixed, or the input's kept).
    Own,
    Avif,
    Webp,
    /// JPEG, or PNG for an image with alpha: what every client takes.
    Jpeg,
}

impl VariantFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantFormat::Own => "",
            VariantFormat::Avif => "avif",
            VariantFormat::Webp => "webp",
            VariantFormat::Jpeg => "jpeg",
        }
    }

    pub fn parse(text: &str) -> Option<VariantFormat> {
        Some(match text {
            "" => VariantFormat::Own,
            "avif" => VariantFormat::Avif,
            "webp" => VariantFormat::Webp,
            "jpeg" => VariantFormat::Jpeg,
            _ => return None,
        })
    }

    /// The best format an `Accept` header names for an `auto` preset: AVIF, else WebP, else
    /// JPEG/PNG. Only explicit `image/avif` and `image/webp` count: `*/*` and `image/*` are
    /// what every client sends (curl, old browsers) whether or not it decodes AVIF, so they
    /// get the format everyone reads. A `q=0` refuses the type.
    pub fn negotiate(accept: Option<&str>) -> VariantFormat {
        let Some(accept) = accept else {
            return VariantFormat::Jpeg;
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
            VariantFormat::Jpeg
        }
    }
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
        let fixed = PresetPipeline::from_json(&serde_json::json!({"width": 200, "format": "png"})).unwrap();
        assert!(!fixed.auto_format);
        assert_eq!(fixed.pipeline.format, Some(Format::Png));
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
            (None, Jpeg),
            (Some("*/*"), Jpeg),
            (Some("image/*"), Jpeg),
            (Some("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"), Avif),
            (Some("image/webp,*/*"), Webp),
            (Some("image/avif;q=0, image/webp"), Webp),
            (Some("IMAGE/AVIF"), Avif),
            (Some("text/html"), Jpeg),
        ];
        for (accept, want) in cases {
            assert_eq!(VariantFormat::negotiate(accept), want, "{accept:?}");
        }
    }
}
