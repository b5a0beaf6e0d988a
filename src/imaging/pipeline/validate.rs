//! The allowed range of every pipeline value; errors name the flat parameter.

use super::{Pipeline, PipelineError, Step, BLUR_RANGE, MAX_DIMENSION, SHARPEN_RANGE};

impl Pipeline {
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
