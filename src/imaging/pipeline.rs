//! The processing pipeline: parsed from flat fields or the JSON `steps` form, stored as JSONB.

use image::DynamicImage;
use serde::{Deserialize, Serialize};

use super::{Format, ImagingError};

/// How a resize fits the image into its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    #[default]
    Contain,
    Cover,
    Fill,
}

/// One operation. The JSON form is `{"op": "resize", "width": 800, ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    Resize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[serde(default)]
        fit: Fit,
        #[serde(default)]
        upscale: bool,
    },
}

/// A validated pipeline: steps in order plus output settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default = "default_true")]
    pub auto_orient: bool,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

fn default_true() -> bool {
    true
}

/// A parameter that failed validation; `param` names it for the `400` answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{param}`: {message}")]
pub struct PipelineError {
    pub param: String,
    pub message: String,
}

impl PipelineError {
    fn new(param: &str, message: impl Into<String>) -> Self {
        PipelineError {
            param: param.to_string(),
            message: message.into(),
        }
    }
}

impl Default for Pipeline {
    /// Fit within 800×800, keep the input's format.
    fn default() -> Self {
        Pipeline {
            auto_orient: true,
            steps: vec![Step::Resize {
                width: Some(800),
                height: Some(800),
                fit: Fit::Contain,
                upscale: false,
            }],
            format: None,
            quality: None,
        }
    }
}

impl Pipeline {
    /// Parses the JSON form and validates every value.
    pub fn from_json(value: &serde_json::Value) -> Result<Pipeline, PipelineError> {
        let p: Pipeline = serde_json::from_value(value.clone())
            .map_err(|e| PipelineError::new("pipeline", e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    /// Parses the flat-field form (query string or multipart fields). Returns `None` when no
    /// operation field is present, so the caller can fall back to the default pipeline.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Pipeline>, PipelineError> {
        let mut p = Pipeline {
            auto_orient: true,
            steps: Vec::new(),
            format: None,
            quality: None,
        };
        let (mut width, mut height, mut fit, mut upscale) = (None, None, Fit::Contain, false);
        let mut any = false;
        for (key, value) in fields {
            any = true;
            match key {
                "width" => width = Some(parse_num::<u32>(key, value)?),
                "height" => height = Some(parse_num::<u32>(key, value)?),
                "fit" => {
                    fit = match value {
                        "contain" => Fit::Contain,
                        "cover" => Fit::Cover,
                        "fill" => Fit::Fill,
                        _ => return Err(PipelineError::new(key, "expected contain, cover or fill")),
                    }
                }
                "upscale" => upscale = parse_bool(key, value)?,
                "auto_orient" => p.auto_orient = parse_bool(key, value)?,
                "format" => {
                    p.format = Some(
                        Format::from_name(value).ok_or_else(|| PipelineError::new(key, "unknown format"))?,
                    )
                }
                "quality" => p.quality = Some(parse_num::<u8>(key, value)?),
                _ => return Err(PipelineError::new(key, "unknown parameter")),
            }
        }
        if !any {
            return Ok(None);
        }
        if width.is_some() || height.is_some() {
            p.steps.push(Step::Resize {
                width,
                height,
                fit,
                upscale,
            });
        }
        p.validate()?;
        Ok(Some(p))
    }

    /// Range-checks every value.
    pub fn validate(&self) -> Result<(), PipelineError> {
        if let Some(q) = self.quality {
            if !(1..=100).contains(&q) {
                return Err(PipelineError::new("quality", "must be between 1 and 100"));
            }
        }
        if let Some(f) = self.format {
            if !f.can_write() {
                return Err(PipelineError::new(
                    "format",
                    format!("{f} output is not supported"),
                ));
            }
        }
        for step in &self.steps {
            match step {
                Step::Resize { width, height, .. } => {
                    for (name, v) in [("width", width), ("height", height)] {
                        if let Some(v) = v {
                            if !(1..=20_000).contains(v) {
                                return Err(PipelineError::new(name, "must be between 1 and 20000"));
                            }
                        }
                    }
                    if width.is_none() && height.is_none() {
                        return Err(PipelineError::new("width", "resize needs width or height"));
                    }
                }
            }
        }
        Ok(())
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, PipelineError> {
    value
        .trim()
        .parse()
        .map_err(|_| PipelineError::new(key, format!("`{value}` is not a valid number")))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, PipelineError> {
    match value {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(PipelineError::new(key, "expected true or false")),
    }
}

/// Applies one step.
pub(super) fn apply(step: &Step, img: DynamicImage) -> Result<DynamicImage, ImagingError> {
    match *step {
        Step::Resize {
            width,
            height,
            fit,
            upscale,
        } => {
            let (w, h) = (img.width(), img.height());
            let (bw, bh) = (width.unwrap_or(u32::MAX), height.unwrap_or(u32::MAX));
            let (bw, bh) = if upscale { (bw, bh) } else { (bw.min(w), bh.min(h)) };
            Ok(match fit {
                Fit::Contain => {
                    if !upscale && w <= bw && h <= bh {
                        img
                    } else {
                        img.resize(bw, bh, image::imageops::FilterType::Lanczos3)
                    }
                }
                Fit::Cover => img.resize_to_fill(
                    bw.min(20_000),
                    bh.min(20_000),
                    image::imageops::FilterType::Lanczos3,
                ),
                Fit::Fill => img.resize_exact(
                    bw.min(20_000),
                    bh.min(20_000),
                    image::imageops::FilterType::Lanczos3,
                ),
            })
        }
    }
}
