//! The allowed range of every pipeline value; errors name the flat parameter.

use super::{
    Fit, Focus, Gravity, Kernel, Pipeline, PipelineError, Step, BLUR_RANGE, GAMMA_RANGE, MAX_DIMENSION,
    MAX_KERNEL_WEIGHT, PIXELATE_RANGE, SHARPEN_RANGE,
};

impl Pipeline {
    /// Range-checks every value; errors name the flat parameter and its allowed range.
    pub fn validate(&self) -> Result<(), PipelineError> {
        if let Some(q) = self.quality {
            if !(1..=100).contains(&q) {
                return Err(PipelineError::new("quality", "must be between 1 and 100"));
            }
        }
        if self.steps.len() > MAX_STEPS {
            return Err(PipelineError::new(
                "pipeline",
                format!("at most {MAX_STEPS} steps"),
            ));
        }
        for step in &self.steps {
            step.validate()?;
        }
        let marks = self
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Watermark { .. }))
            .count();
        if marks > MAX_WATERMARKS {
            return Err(PipelineError::new(
                "watermark",
                format!("at most {MAX_WATERMARKS} watermark steps per pipeline"),
            ));
        }
        Ok(())
    }
}

impl Step {
    /// Range-checks this step's values.
    pub fn validate(&self) -> Result<(), PipelineError> {
        validate_step(self)
    }
}

fn validate_step(step: &Step) -> Result<(), PipelineError> {
    match step {
        &Step::Crop { width, height, .. } => {
            if width == 0 || height == 0 {
                return Err(PipelineError::new("crop", "width and height must be at least 1"));
            }
        }
        Step::Rotate { degrees } => {
            if !matches!(*degrees, 90 | 180 | 270) {
                return Err(PipelineError::new("rotate", "must be 90, 180 or 270"));
            }
        }
        Step::Flip { .. } | Step::Grayscale | Step::Invert | Step::Equalize => {}
        &Step::Resize {
            width,
            height,
            fit,
            gravity,
            focus,
            background,
            ..
        } => {
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
            if fit == Fit::Pad && (width.is_none() || height.is_none()) {
                return Err(PipelineError::new("fit", "pad needs both width and height"));
            }
            let cover = fit == Fit::Cover;
            let gravity_applies = match fit {
                Fit::Cover => true,
                Fit::Pad => gravity != Gravity::Smart,
                Fit::Contain | Fit::Fill => gravity == Gravity::Centre,
            };
            if !gravity_applies {
                return Err(PipelineError::new(
                    "gravity",
                    "applies to fit=cover (smart too) and fit=pad (compass points only)",
                ));
            }
            if let Some(Focus { x, y }) = focus {
                if !cover {
                    return Err(PipelineError::new("focus", "applies to fit=cover only"));
                }
                if !((0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y)) {
                    return Err(PipelineError::new("focus", "must be two fractions from 0 to 1"));
                }
            }
            if background.is_some() && fit != Fit::Pad {
                return Err(PipelineError::new(
                    "background",
                    "pads fit=pad only here; to flatten transparency, set it beside format",
                ));
            }
        }
        &Step::Brightness { value } => check_percent("brightness", value)?,
        &Step::Contrast { value } => check_percent("contrast", value)?,
        &Step::Blur { sigma } => check_float("blur", sigma, BLUR_RANGE)?,
        &Step::Sharpen { amount } => check_float("sharpen", amount, SHARPEN_RANGE)?,
        &Step::Saturation { value } => check_percent("saturation", value)?,
        &Step::Hue { degrees } => check_int("hue", i64::from(degrees), (-180, 180))?,
        &Step::Gamma { value } => check_float("gamma", value, GAMMA_RANGE)?,
        &Step::Sepia { value } => check_int("sepia", i64::from(value), (0, 100))?,
        Step::Tint { color } => {
            if color.a != 255 {
                return Err(PipelineError::new("tint", "must be an opaque RRGGBB colour"));
            }
        }
        Step::Kernel { kernel } => {
            if let Kernel::Custom(weights) = kernel {
                if !matches!(weights.len(), 9 | 25) {
                    return Err(PipelineError::new(
                        "kernel",
                        format!("needs 9 (3×3) or 25 (5×5) weights, not {}", weights.len()),
                    ));
                }
                if !weights
                    .iter()
                    .all(|w| (-MAX_KERNEL_WEIGHT..=MAX_KERNEL_WEIGHT).contains(w))
                {
                    return Err(PipelineError::new(
                        "kernel",
                        format!("every weight must be between -{MAX_KERNEL_WEIGHT} and {MAX_KERNEL_WEIGHT}"),
                    ));
                }
            }
        }
        &Step::Watermark {
            gravity,
            opacity,
            scale,
            ..
        } => {
            if gravity == Gravity::Smart {
                return Err(PipelineError::new(
                    "watermark_gravity",
                    "must be the centre or a compass point, not smart",
                ));
            }
            check_int("watermark_opacity", i64::from(opacity), (0, 100))?;
            check_int("watermark_scale", i64::from(scale), (1, 100))?;
        }
        &Step::Pixelate { size } => {
            let (lo, hi) = PIXELATE_RANGE;
            check_int("pixelate", i64::from(size), (i64::from(lo), i64::from(hi)))?
        }
    }
    Ok(())
}

/// Each watermark step decodes its image for the job: a bound on them bounds its memory and
/// time.
pub const MAX_WATERMARKS: usize = 4;

/// Steps in one pipeline: far more than any real one needs, and a bound on what one job costs
/// (each step may touch every pixel).
pub const MAX_STEPS: usize = 32;

fn check_int(name: &str, v: i64, (lo, hi): (i64, i64)) -> Result<(), PipelineError> {
    if !(lo..=hi).contains(&v) {
        return Err(PipelineError::new(name, format!("must be between {lo} and {hi}")));
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
