//! The processing pipeline: parsed from flat fields or the JSON `steps` form, stored as JSONB.
//!
//! Both forms produce the same [`Pipeline`]; the flat form always applies its operations in the
//! fixed SPEC order, the JSON form in the order given (and may repeat an operation).
//!
//! Here: the pipeline and its steps with their serde (stored) form. `values`: the parameter
//! types that are more than a number (colours, kernels, gravity, focus points); `parse`:
//! reading both forms; `validate`: the range of every value, checked after parsing and again
//! before a stored pipeline runs.

use serde::{Deserialize, Serialize};

use crate::imaging::codecs::format::Format;

mod parse;
mod validate;
mod values;

pub use values::{Colour, Focus, Gravity, Kernel, KernelName};

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
    "gravity",
    "focus",
    "background",
    "upscale",
    "grayscale",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "gamma",
    "sepia",
    "invert",
    "tint",
    "equalize",
    "blur",
    "sharpen",
    "kernel",
    "pixelate",
    "watermark",
    "watermark_gravity",
    "watermark_opacity",
    "watermark_scale",
    "format",
    "quality",
    "frames",
];

/// Largest width or height a resize may ask for (the pixel limit still applies on top).
pub const MAX_DIMENSION: u32 = 20_000;
/// Gaussian blur sigma range, in output pixels.
pub const BLUR_RANGE: (f32, f32) = (0.1, 100.0);
/// Unsharp-mask strength range.
pub const SHARPEN_RANGE: (f32, f32) = (0.1, 10.0);
/// Gamma range (`out = in^(1/gamma)`).
pub const GAMMA_RANGE: (f32, f32) = (0.1, 10.0);
/// Pixelation block size range, in output pixels.
pub const PIXELATE_RANGE: (u32, u32) = (2, 200);
/// Largest magnitude of a custom kernel weight.
pub const MAX_KERNEL_WEIGHT: f32 = 1000.0;

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
    /// Keep the aspect ratio inside the box, then pad to exactly the box with `background`
    /// (transparent when none is given; a format without alpha then flattens it onto white).
    Pad,
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
        /// Which part `cover` keeps, or where `pad` places the image (default centre).
        #[serde(default, skip_serializing_if = "Gravity::is_centre")]
        gravity: Gravity,
        /// A point `cover` keeps as close to the centre as it can (wins over `gravity`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        focus: Option<Focus>,
        /// The padding colour of `pad`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        background: Option<Colour>,
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
    /// Scale chroma by `1 + value/100` in linear light: −100 grey, 100 doubles it.
    Saturation {
        #[serde(alias = "saturation", alias = "amount")]
        value: i32,
    },
    /// Turn the hue by `degrees` (−180..180), keeping luminance.
    Hue {
        #[serde(alias = "hue", alias = "value", alias = "angle")]
        degrees: i32,
    },
    /// Power curve `out = in^(1/gamma)` on every channel (above 1 lightens the mid-tones).
    Gamma {
        #[serde(alias = "gamma")]
        value: f32,
    },
    /// Sepia tone of strength `value` percent.
    Sepia {
        #[serde(alias = "sepia", alias = "amount")]
        value: i32,
    },
    /// Negative of every colour channel (alpha kept).
    Invert,
    /// Duotone: luminance mapped from black to `color`.
    Tint {
        #[serde(alias = "tint", alias = "value", alias = "colour")]
        color: Colour,
    },
    /// Histogram equalisation of luma.
    Equalize,
    /// 3×3 or 5×5 convolution, normalised by the weights' sum when it is not 0.
    Kernel {
        #[serde(alias = "value", alias = "weights")]
        kernel: Kernel,
    },
    /// Square blocks of `size` pixels, each the average of its pixels.
    Pixelate {
        #[serde(alias = "pixelate", alias = "value")]
        size: u32,
    },
    /// Overlay another completed image's output: `scale` percent of this image's width, placed
    /// at `gravity` (a compass point or the centre), drawn at `opacity` percent.
    Watermark {
        #[serde(alias = "watermark", alias = "id", alias = "value")]
        image: uuid::Uuid,
        #[serde(default = "default_watermark_gravity")]
        gravity: Gravity,
        #[serde(default = "default_watermark_opacity")]
        opacity: u8,
        #[serde(default = "default_watermark_scale")]
        scale: u8,
    },
}

/// The watermark defaults: bottom right, half transparent, a fifth of the width.
pub const WATERMARK_DEFAULTS: (Gravity, u8, u8) = (Gravity::Southeast, 50, 20);

fn default_watermark_gravity() -> Gravity {
    WATERMARK_DEFAULTS.0
}

fn default_watermark_opacity() -> u8 {
    WATERMARK_DEFAULTS.1
}

fn default_watermark_scale() -> u8 {
    WATERMARK_DEFAULTS.2
}

impl Step {
    /// The operation's name, as in `{"op": …}` and the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Crop { .. } => "crop",
            Step::Rotate { .. } => "rotate",
            Step::Flip { .. } => "flip",
            Step::Resize { .. } => "resize",
            Step::Grayscale => "grayscale",
            Step::Brightness { .. } => "brightness",
            Step::Contrast { .. } => "contrast",
            Step::Blur { .. } => "blur",
            Step::Sharpen { .. } => "sharpen",
            Step::Saturation { .. } => "saturation",
            Step::Hue { .. } => "hue",
            Step::Gamma { .. } => "gamma",
            Step::Sepia { .. } => "sepia",
            Step::Invert => "invert",
            Step::Tint { .. } => "tint",
            Step::Equalize => "equalize",
            Step::Kernel { .. } => "kernel",
            Step::Pixelate { .. } => "pixelate",
            Step::Watermark { .. } => "watermark",
        }
    }
}

impl Pipeline {
    /// The images this pipeline draws as watermarks, each once, in order of first use.
    pub fn watermark_ids(&self) -> Vec<uuid::Uuid> {
        let mut ids = Vec::new();
        for step in &self.steps {
            if let Step::Watermark { image, .. } = step {
                if !ids.contains(image) {
                    ids.push(*image);
                }
            }
        }
        ids
    }
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
    /// Flatten any transparency onto this colour, whatever the output format. Unset: only
    /// formats without alpha (JPEG) flatten, onto white.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<Colour>,
    /// Which frames of an animation to keep; `None` (and `all`): every frame when the output
    /// format can animate (GIF, WebP), else the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Frames>,
    /// With `format` unset: JPEG, or PNG for a result with alpha, rather than the input's own
    /// format. What an `auto` preset's variant gets for a client that named neither AVIF nor
    /// WebP (`presets::VariantFormat::Own`). Not part of the JSON form.
    #[serde(skip)]
    pub universal_format: bool,
}

/// `frames=all|first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frames {
    /// Every frame, with its delay and the loop count, when the output can animate.
    All,
    /// Only the first frame: a still image.
    First,
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
                gravity: Gravity::Centre,
                focus: None,
                background: None,
            }],
            format: None,
            quality: None,
            background: None,
            frames: None,
            universal_format: false,
        }
    }
}
