//! Reading a pipeline from its two forms: JSON (`steps`, or flat names in an object) and flat
//! fields (query strings and multipart forms).

use super::{
    Colour, Fit, Flip, Focus, Frames, Gravity, Kernel, Pipeline, PipelineError, Step, FIELD_NAMES,
    MAX_DIMENSION,
};
use crate::imaging::codecs::format::Format;

impl Pipeline {
    /// Parses the JSON form and validates every value. An object without `steps` that uses the
    /// flat field names (`{"width": 800, "format": "webp"}`) is read like the flat form.
    pub fn from_json(value: &serde_json::Value) -> Result<Pipeline, PipelineError> {
        if let Some(obj) = value.as_object() {
            let flat = !obj.contains_key("steps")
                && obj.keys().any(|k| {
                    FIELD_NAMES.contains(&k.as_str())
                        && !matches!(k.as_str(), "auto_orient" | "format" | "quality" | "frames")
                });
            if flat {
                return Self::from_json_flat(obj);
            }
        }
        refuse_keys_on_unit_steps(value)?;
        // The path of the value serde refused (`steps[0].width`) names it in the error.
        let p: Pipeline = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let param = if path.is_empty() || path == "." {
                "pipeline"
            } else {
                &path
            };
            PipelineError::new(param, e.inner().to_string())
        })?;
        for (i, step) in p.steps.iter().enumerate() {
            step.validate().map_err(|e| at_step(i, step, e))?;
        }
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
}

/// serde's `deny_unknown_fields` does not reach the unit variants of an internally tagged enum,
/// so `{"op": "grayscale", "anything": 1}` would pass silently; refuse it like every other step.
fn refuse_keys_on_unit_steps(value: &serde_json::Value) -> Result<(), PipelineError> {
    let steps = value.get("steps").and_then(|s| s.as_array());
    for step in steps.into_iter().flatten().filter_map(|s| s.as_object()) {
        let Some(op) = step.get("op").and_then(|o| o.as_str()) else {
            continue;
        };
        if UNIT_STEPS.contains(&op) {
            if let Some(extra) = step.keys().find(|k| k.as_str() != "op") {
                return Err(PipelineError::new(
                    "pipeline",
                    format!("unknown field `{extra}`: {op} takes no parameters"),
                ));
            }
        }
    }
    Ok(())
}

/// The operations without parameters (in the flat form, switched on with `=true`).
const UNIT_STEPS: [&str; 3] = ["grayscale", "invert", "equalize"];

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
    gravity: Option<Gravity>,
    focus: Option<Focus>,
    background: Option<Colour>,
    upscale: Option<bool>,
    grayscale: bool,
    brightness: Option<i32>,
    contrast: Option<i32>,
    saturation: Option<i32>,
    hue: Option<i32>,
    gamma: Option<f32>,
    sepia: Option<i32>,
    invert: bool,
    tint: Option<Colour>,
    equalize: bool,
    blur: Option<f32>,
    sharpen: Option<f32>,
    kernel: Option<Kernel>,
    pixelate: Option<u32>,
    watermark: Option<uuid::Uuid>,
    watermark_gravity: Option<Gravity>,
    watermark_opacity: Option<u8>,
    watermark_scale: Option<u8>,
    format: Option<Format>,
    quality: Option<u8>,
    frames: Option<Frames>,
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
                    "pad" => Fit::Pad,
                    _ => return Err(PipelineError::new(key, "must be contain, cover, fill or pad")),
                })
            }
            "gravity" => {
                self.gravity = Some(Gravity::parse(value).ok_or_else(|| {
                    PipelineError::new(
                        key,
                        "must be center, north, south, east, west, northeast, northwest, southeast, southwest or smart",
                    )
                })?)
            }
            "focus" => {
                self.focus = Some(Focus::parse(value).ok_or_else(|| {
                    PipelineError::new(key, format!("`{value}` is not fx,fy: two fractions from 0 to 1"))
                })?)
            }
            "background" => {
                self.background = Some(Colour::parse(value).ok_or_else(|| {
                    PipelineError::new(key, format!("`{value}` is not a colour: use RRGGBB or RRGGBBAA hex"))
                })?)
            }
            "upscale" => self.upscale = Some(parse_bool(key, value)?),
            "grayscale" => self.grayscale = parse_bool(key, value)?,
            "brightness" => self.brightness = Some(parse_num(key, value, "-100 to 100")?),
            "contrast" => self.contrast = Some(parse_num(key, value, "-100 to 100")?),
            "saturation" => self.saturation = Some(parse_num(key, value, "-100 to 100")?),
            "hue" => self.hue = Some(parse_num(key, value, "-180 to 180")?),
            "gamma" => self.gamma = Some(parse_num(key, value, "0.1 to 10")?),
            "sepia" => self.sepia = Some(parse_num(key, value, "0 to 100")?),
            "invert" => self.invert = parse_bool(key, value)?,
            "tint" => {
                self.tint = Some(Colour::parse(value).filter(|c| c.a == 255).ok_or_else(|| {
                    PipelineError::new(key, format!("`{value}` is not a colour: use RRGGBB hex"))
                })?)
            }
            "equalize" => self.equalize = parse_bool(key, value)?,
            "blur" => self.blur = Some(parse_num(key, value, "0.1 to 100")?),
            "sharpen" => self.sharpen = Some(parse_num(key, value, "0.1 to 10")?),
            "kernel" => self.kernel = Some(Kernel::parse(value).map_err(|m| PipelineError::new(key, m))?),
            "pixelate" => self.pixelate = Some(parse_num(key, value, "2 to 200")?),
            "watermark" => {
                self.watermark = Some(
                    uuid::Uuid::try_parse(value)
                        .map_err(|_| PipelineError::new(key, format!("`{value}` is not an image id")))?,
                )
            }
            "watermark_gravity" => {
                self.watermark_gravity = Some(Gravity::parse(value).filter(|g| *g != Gravity::Smart).ok_or_else(|| {
                    PipelineError::new(
                        key,
                        "must be center, north, south, east, west, northeast, northwest, southeast or southwest",
                    )
                })?)
            }
            "watermark_opacity" => self.watermark_opacity = Some(parse_num(key, value, "0 to 100")?),
            "watermark_scale" => self.watermark_scale = Some(parse_num(key, value, "1 to 100")?),
            "format" => {
                let writable = Format::from_name(value).filter(|f| f.can_write());
                self.format = Some(writable.ok_or_else(|| {
                    PipelineError::new(key, "must be one of jpeg, png, webp, gif, bmp, tiff, avif")
                })?)
            }
            "quality" => self.quality = Some(parse_num(key, value, "1 to 100")?),
            "frames" => {
                self.frames = Some(match value {
                    "all" => Frames::All,
                    "first" => Frames::First,
                    _ => return Err(PipelineError::new(key, "must be all or first")),
                })
            }
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
            let fit = self.fit.unwrap_or_default();
            steps.push(Step::Resize {
                width: self.width,
                height: self.height,
                fit,
                upscale: self.upscale.unwrap_or(false),
                gravity: self.gravity.unwrap_or_default(),
                focus: self.focus,
                // `background` pads a `pad` box and (below) flattens the output.
                background: if fit == Fit::Pad { self.background } else { None },
            });
        } else {
            for (given, name) in [
                (self.fit.is_some(), "fit"),
                (self.upscale == Some(true), "upscale"),
                (self.gravity.is_some(), "gravity"),
                (self.focus.is_some(), "focus"),
            ] {
                if given {
                    return Err(PipelineError::new(name, "needs width or height"));
                }
            }
        }
        if self.grayscale {
            steps.push(Step::Grayscale);
        }
        steps.extend(self.brightness.map(|value| Step::Brightness { value }));
        steps.extend(self.contrast.map(|value| Step::Contrast { value }));
        steps.extend(self.saturation.map(|value| Step::Saturation { value }));
        steps.extend(self.hue.map(|degrees| Step::Hue { degrees }));
        steps.extend(self.gamma.map(|value| Step::Gamma { value }));
        steps.extend(self.sepia.map(|value| Step::Sepia { value }));
        if self.invert {
            steps.push(Step::Invert);
        }
        steps.extend(self.tint.map(|color| Step::Tint { color }));
        if self.equalize {
            steps.push(Step::Equalize);
        }
        steps.extend(self.blur.map(|sigma| Step::Blur { sigma }));
        steps.extend(self.sharpen.map(|amount| Step::Sharpen { amount }));
        steps.extend(self.kernel.map(|kernel| Step::Kernel { kernel }));
        steps.extend(self.pixelate.map(|size| Step::Pixelate { size }));
        let (gravity, opacity, scale) = super::WATERMARK_DEFAULTS;
        match self.watermark {
            Some(image) => steps.push(Step::Watermark {
                image,
                gravity: self.watermark_gravity.unwrap_or(gravity),
                opacity: self.watermark_opacity.unwrap_or(opacity),
                scale: self.watermark_scale.unwrap_or(scale),
            }),
            None => {
                for (given, name) in [
                    (self.watermark_gravity.is_some(), "watermark_gravity"),
                    (self.watermark_opacity.is_some(), "watermark_opacity"),
                    (self.watermark_scale.is_some(), "watermark_scale"),
                ] {
                    if given {
                        return Err(PipelineError::new(name, "needs watermark (the id of an image)"));
                    }
                }
            }
        }
        Ok(Pipeline {
            auto_orient: self.auto_orient.unwrap_or(true),
            steps,
            format: self.format,
            quality: self.quality,
            background: self.background,
            frames: self.frames,
            universal_format: false,
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

/// Names a step's range error by its place in the JSON form (`steps[2].sigma`): the field the
/// flat parameter stands for when the step has it, its only field when it has one (`blur`'s
/// `sigma`), else the step itself. The flat name stays in the message.
fn at_step(index: usize, step: &super::Step, e: PipelineError) -> PipelineError {
    let fields: Vec<String> = match serde_json::to_value(step) {
        Ok(serde_json::Value::Object(obj)) => obj.keys().filter(|k| k.as_str() != "op").cloned().collect(),
        _ => Vec::new(),
    };
    let field = if fields.contains(&e.param) {
        Some(e.param.clone())
    } else if fields.len() == 1 {
        fields.first().cloned()
    } else {
        None
    };
    let param = match field {
        Some(field) => format!("steps[{index}].{field}"),
        None => format!("steps[{index}]"),
    };
    PipelineError {
        message: format!("{}: {}", e.param, e.message),
        param,
    }
}
