//! The processing pipeline: parsed from flat fields or the JSON `steps` form, stored as JSONB.
//!
//! Both forms produce the same [`Pipeline`]; the flat form always applies its operations in the
//! fixed SPEC order, the JSON form in the order given (and may repeat an operation).

use serde::{Deserialize, Serialize};

use crate::imaging::codecs::format::Format;

/// The flat field names that configure a pipeline, in their fixed application order. The HTTP
/// layer uses this list to pick operation fields out of query strings and multipart forms.
pub const FIELD_NAMES: &[&str] = &[
    "auto_orient",
    "crop",
    "rotate",
    "flip",
    "width",
    "height",
    "fit",
    "upscale",
    "grayscale",
    "brightness",
    "contrast",
    "blur",
    "sharpen",
    "format",
    "quality",
];

/// Largest width or height a resize may ask for (the pixel limit still applies on top).
pub const MAX_DIMENSION: u32 = 20_000;
/// Gaussian blur sigma range, in output pixels.
pub const BLUR_RANGE: (f32, f32) = (0.1, 100.0);
/// Unsharp-mask strength range.
pub const SHARPEN_RANGE: (f32, f32) = (0.1, 10.0);

/// How a resize fits the image into its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Keep the aspect ratio, fit inside the box.
    #[default]
    Contain,
    /// Keep the aspect ratio, fill the box and centre-crop what overflows.
    Cover,
    /// Stretch to exactly the box.
    Fill,
}

/// A mirror axis: `h` mirrors left↔right, `v` mirrors top↔bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flip {
    #[serde(rename = "h", alias = "horizontal")]
    Horizontal,
    #[serde(rename = "v", alias = "vertical")]
    Vertical,
}

/// One operation. The JSON form is `{"op": "resize", "width": 800, ...}`; single-value
/// operations also accept the flat field name or `value` as the key (`{"op": "blur", "blur": 2}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Cut out the rectangle at `x,y` of `width×height`; it must lie inside the image.
    Crop { x: u32, y: u32, width: u32, height: u32 },
    /// Rotate clockwise by 90, 180 or 270 degrees.
    Rotate {
        #[serde(alias = "rotate", alias = "value", alias = "angle")]
        degrees: u16,
    },
    /// Mirror along an axis.
    Flip {
        #[serde(alias = "flip", alias = "value", alias = "axis")]
        direction: Flip,
    },
    /// Scale into a box; one side alone keeps the aspect ratio.
    Resize {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<u32>,
        #[serde(default)]
        fit: Fit,
        /// Allow the result to be larger than the input (off by default).
        #[serde(default)]
        upscale: bool,
    },
    /// Drop colour (alpha is kept).
    Grayscale,
    /// Add `value` percent of full scale to every channel (−100 black … 100 white).
    Brightness {
        #[serde(alias = "brightness", alias = "amount")]
        value: i32,
    },
    /// Stretch (positive) or flatten (negative) around mid-grey; −100 is flat grey.
    Contrast {
        #[serde(alias = "contrast", alias = "amount")]
        value: i32,
    },
    /// Gaussian blur with standard deviation `sigma` pixels.
    Blur {
        #[serde(alias = "blur", alias = "value")]
        sigma: f32,
    },
    /// Unsharp mask of strength `amount` (1.0 doubles the local contrast of fine detail).
    Sharpen {
        #[serde(alias = "sharpen", alias = "value")]
        amount: f32,
    },
}

/// A validated pipeline: steps in order plus output settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Apply the EXIF orientation before anything else (on by default).
    #[serde(default = "default_true")]
    pub auto_orient: bool,
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Output format; `None` keeps the input's when it can be written, else PNG
    /// (`Format::default_output`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Encoder quality 1–100 for lossy formats (JPEG, WebP, AVIF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
}

fn default_true() -> bool {
    true
}

/// serde's `deny_unknown_fields` does not reach the unit variants of an internally tagged enum,
/// so `{"op": "grayscale", "anything": 1}` would pass silently; refuse it like every other step.
fn refuse_keys_on_unit_steps(value: &serde_json::Value) -> Result<(), PipelineError> {
    let steps = value.get("steps").and_then(|s| s.as_array());
    for step in steps.into_iter().flatten().filter_map(|s| s.as_object()) {
        if step.get("op").and_then(|o| o.as_str()) == Some("grayscale") {
            if let Some(extra) = step.keys().find(|k| k.as_str() != "op") {
                return Err(PipelineError::new(
                    "pipeline",
                    format!("unknown field `{extra}`: grayscale takes no parameters"),
                ));
            }
        }
    }
    Ok(())
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
    /// Parses the JSON form and validates every value. An object without `steps` that uses the
    /// flat field names (`{"width": 800, "format": "webp"}`) is read like the flat form.
    pub fn from_json(value: &serde_json::Value) -> Result<Pipeline, PipelineError> {
        if let Some(obj) = value.as_object() {
            let flat = !obj.contains_key("steps")
                && obj.keys().any(|k| {
                    FIELD_NAMES.contains(&k.as_str())
                        && !matches!(k.as_str(), "auto_orient" | "format" | "quality")
                });
            if flat {
                return Self::from_json_flat(obj);
            }
        }
        refuse_keys_on_unit_steps(value)?;
        let p: Pipeline = serde_json::from_value(value.clone())
            .map_err(|e| PipelineError::new("pipeline", e.to_string()))?;
        p.validate()?;
        Ok(p)
    }

    fn from_json_flat(obj: &serde_json::Map<String, serde_json::Value>) -> Result<Pipeline, PipelineError> {
        let mut pairs = Vec::with_capacity(obj.len());
        for (key, v) in obj {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(PipelineError::new(key, "expected a string, number or boolean")),
            };
            pairs.push((key.as_str(), text));
        }
        let p = Self::from_fields(pairs.iter().map(|(k, v)| (*k, v.as_str())))?;
        Ok(p.unwrap_or_default())
    }

    /// Parses the flat-field form (query string or multipart fields). Returns `None` when no
    /// operation field is present, so the caller can fall back to the default pipeline.
    /// Operations apply in the fixed order of [`FIELD_NAMES`], whatever order the fields came in.
    pub fn from_fields<'a>(
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Pipeline>, PipelineError> {
        let mut f = FlatFields::default();
        let mut any = false;
        for (key, value) in fields {
            any = true;
            f.set(key, value)?;
        }
        if !any {
            return Ok(None);
        }
        let p = f.into_pipeline()?;
        p.validate()?;
        Ok(Some(p))
    }

    /// Range-checks every value; errors name the flat parameter and its allowed range.
    pub fn validate(&self) -> Result<(), PipelineError> {
        if let Some(q) = self.quality {
            if !(1..=100).contains(&q) {
                return Err(PipelineError::new("quality", "must be between 1 and 100"));
            }
        }
        for step in &self.steps {
            validate_step(step)?;
        }
        Ok(())
    }
}

fn validate_step(step: &Step) -> Result<(), PipelineError> {
    match *step {
        Step::Crop { width, height, .. } => {
            if width == 0 || height == 0 {
                return Err(PipelineError::new("crop", "width and height must be at least 1"));
            }
        }
        Step::Rotate { degrees } => {
            if !matches!(degrees, 90 | 180 | 270) {
                return Err(PipelineError::new("rotate", "must be 90, 180 or 270"));
            }
        }
        Step::Flip { .. } | Step::Grayscale => {}
        Step::Resize { width, height, .. } => {
            for (name, v) in [("width", width), ("height", height)] {
                if let Some(v) = v {
                    if !(1..=MAX_DIMENSION).contains(&v) {
                        return Err(PipelineError::new(
                            name,
                            format!("must be between 1 and {MAX_DIMENSION}"),
                        ));
                    }
                }
            }
            if width.is_none() && height.is_none() {
                return Err(PipelineError::new("width", "resize needs width or height"));
            }
        }
        Step::Brightness { value } => check_percent("brightness", value)?,
        Step::Contrast { value } => check_percent("contrast", value)?,
        Step::Blur { sigma } => check_float("blur", sigma, BLUR_RANGE)?,
        Step::Sharpen { amount } => check_float("sharpen", amount, SHARPEN_RANGE)?,
    }
    Ok(())
}

fn check_percent(name: &str, v: i32) -> Result<(), PipelineError> {
    if !(-100..=100).contains(&v) {
        return Err(PipelineError::new(name, "must be between -100 and 100"));
    }
    Ok(())
}

fn check_float(name: &str, v: f32, (lo, hi): (f32, f32)) -> Result<(), PipelineError> {
    // `contains` is false for NaN, so NaN is refused too.
    if !(lo..=hi).contains(&v) {
        return Err(PipelineError::new(name, format!("must be between {lo} and {hi}")));
    }
    Ok(())
}

/// The flat fields as given, before they are arranged into steps.
#[derive(Default)]
struct FlatFields {
    auto_orient: Option<bool>,
    crop: Option<Step>,
    rotate: Option<u16>,
    flip: Option<Flip>,
    width: Option<u32>,
    height: Option<u32>,
    fit: Option<Fit>,
    upscale: Option<bool>,
    grayscale: bool,
    brightness: Option<i32>,
    contrast: Option<i32>,
    blur: Option<f32>,
    sharpen: Option<f32>,
    format: Option<Format>,
    quality: Option<u8>,
}

impl FlatFields {
    fn set(&mut self, key: &str, value: &str) -> Result<(), PipelineError> {
        let value = value.trim();
        match key {
            "auto_orient" => self.auto_orient = Some(parse_bool(key, value)?),
            "crop" => self.crop = Some(parse_crop(value)?),
            "rotate" => self.rotate = Some(parse_num(key, value, "90, 180 or 270")?),
            "flip" => {
                self.flip = Some(match value {
                    "h" | "horizontal" => Flip::Horizontal,
                    "v" | "vertical" => Flip::Vertical,
                    _ => return Err(PipelineError::new(key, "must be h or v")),
                })
            }
            "width" => self.width = Some(parse_num(key, value, &format!("1 to {MAX_DIMENSION}"))?),
            "height" => self.height = Some(parse_num(key, value, &format!("1 to {MAX_DIMENSION}"))?),
            "fit" => {
                self.fit = Some(match value {
                    "contain" => Fit::Contain,
                    "cover" => Fit::Cover,
                    "fill" => Fit::Fill,
                    _ => return Err(PipelineError::new(key, "must be contain, cover or fill")),
                })
            }
            "upscale" => self.upscale = Some(parse_bool(key, value)?),
            "grayscale" => self.grayscale = parse_bool(key, value)?,
            "brightness" => self.brightness = Some(parse_num(key, value, "-100 to 100")?),
            "contrast" => self.contrast = Some(parse_num(key, value, "-100 to 100")?),
            "blur" => self.blur = Some(parse_num(key, value, "0.1 to 100")?),
            "sharpen" => self.sharpen = Some(parse_num(key, value, "0.1 to 10")?),
            "format" => {
                self.format = Some(Format::from_name(value).ok_or_else(|| {
                    PipelineError::new(key, "must be one of jpeg, png, webp, gif, bmp, tiff, avif")
                })?)
            }
            "quality" => self.quality = Some(parse_num(key, value, "1 to 100")?),
            _ => return Err(PipelineError::new(key, "unknown parameter")),
        }
        Ok(())
    }

    fn into_pipeline(self) -> Result<Pipeline, PipelineError> {
        let mut steps = Vec::new();
        steps.extend(self.crop);
        steps.extend(self.rotate.map(|degrees| Step::Rotate { degrees }));
        steps.extend(self.flip.map(|direction| Step::Flip { direction }));
        if self.width.is_some() || self.height.is_some() {
            steps.push(Step::Resize {
                width: self.width,
                height: self.height,
                fit: self.fit.unwrap_or_default(),
                upscale: self.upscale.unwrap_or(false),
            });
        } else if self.fit.is_some() {
            return Err(PipelineError::new("fit", "needs width or height"));
        } else if self.upscale == Some(true) {
            return Err(PipelineError::new("upscale", "needs width or height"));
        }
        if self.grayscale {
            steps.push(Step::Grayscale);
        }
        steps.extend(self.brightness.map(|value| Step::Brightness { value }));
        steps.extend(self.contrast.map(|value| Step::Contrast { value }));
        steps.extend(self.blur.map(|sigma| Step::Blur { sigma }));
        steps.extend(self.sharpen.map(|amount| Step::Sharpen { amount }));
        Ok(Pipeline {
            auto_orient: self.auto_orient.unwrap_or(true),
            steps,
            format: self.format,
            quality: self.quality,
        })
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, value: &str, range: &str) -> Result<T, PipelineError> {
    value
        .parse()
        .map_err(|_| PipelineError::new(key, format!("`{value}` is not a number in {range}")))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, PipelineError> {
    match value {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(PipelineError::new(key, "must be true or false")),
    }
}

/// `x,y,w,h` exactly as the OpenAPI document's pattern says: plain decimal (no sign, spaces or
/// leading zeros), at most 9 digits each.
fn parse_crop(value: &str) -> Result<Step, PipelineError> {
    let number = |p: &str| -> Option<u32> {
        let canonical = p == "0" || (!p.starts_with('0') && (1..=9).contains(&p.len()));
        (canonical && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let nums: Option<Vec<u32>> = value.split(',').map(number).collect();
    match nums.as_deref() {
        Some(&[x, y, width, height]) => Ok(Step::Crop { x, y, width, height }),
        _ => Err(PipelineError::new(
            "crop",
            "must be x,y,w,h: four non-negative integers, w and h at least 1",
        )),
    }
}
