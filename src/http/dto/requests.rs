//! The request schemas that exist only to document what uploads take (form fields, raw
//! bodies): the upload extractor parses the fields itself, through `imaging::Pipeline`.

use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The raw bytes of a one-file upload; an empty body is refused. (Written by hand: the derive
/// cannot put `minLength` on a binary string.)
pub struct UploadBytes;

impl utoipa::PartialSchema for UploadBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .min_length(Some(1))
            .description(Some("the image bytes (not empty)"))
            .into()
    }
}

impl ToSchema for UploadBytes {}

/// Output format. HEIC/HEIF and JPEG XL are read, not written: by default they come out as JPEG
/// (PNG with alpha); every other input keeps its format.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatParam {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
    Tiff,
    Avif,
}

/// Which frames of an animation to keep.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FramesParam {
    /// Every frame, with its delay and the loop count, when the output can animate (GIF, WebP).
    All,
    /// Only the first frame: a still image.
    First,
}

/// How `width`/`height` fit the image.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FitParam {
    /// Keep the aspect ratio inside the box.
    Contain,
    /// Fill the box and centre-crop.
    Cover,
    /// Stretch to the box.
    Fill,
    /// Keep the aspect ratio inside the box, then pad to exactly the box with `background`.
    Pad,
}

/// Where a watermark sits.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WatermarkGravityParam {
    Center,
    North,
    South,
    East,
    West,
    Northeast,
    Northwest,
    Southeast,
    Southwest,
}

/// Which part `fit=cover` keeps, or where `fit=pad` places the image.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GravityParam {
    Center,
    North,
    South,
    East,
    West,
    Northeast,
    Northwest,
    Southeast,
    Southwest,
    /// The most salient region (detail, skin, saturation); `fit=cover` only.
    Smart,
}

/// Mirror axis.
#[derive(Deserialize, ToSchema)]
pub enum FlipParam {
    #[serde(rename = "h")]
    H,
    #[serde(rename = "v")]
    V,
}

/// The flat operation fields, as query parameters or multipart fields, applied in this order.
/// No field at all: `DEFAULT_PIPELINE` (fit within 800×800, keep the format). `fit`, `upscale`,
/// `gravity` and `focus` need `width` or `height`; `fit=pad` needs both; `gravity` applies to
/// `fit=cover` and `fit=pad` (`smart` to `cover` only), `focus` to `fit=cover`; a `pipeline`
/// part excludes every field here but `priority`, `not_before`, `dedupe`, `callback_url` and
/// `variants`; `watermark_gravity`, `watermark_opacity` and
/// `watermark_scale` need `watermark`. Unknown fields are refused.
#[derive(Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct Operations {
    /// Apply the EXIF orientation and strip metadata (default true).
    auto_orient: Option<bool>,
    /// `x,y,w,h` in pixels (decimal, no signs or spaces; `w` and `h` at least 1); must lie
    /// inside the image.
    #[schema(pattern = r"^(0|[1-9][0-9]{0,8}),(0|[1-9][0-9]{0,8}),[1-9][0-9]{0,8},[1-9][0-9]{0,8}$")]
    #[param(pattern = r"^(0|[1-9][0-9]{0,8}),(0|[1-9][0-9]{0,8}),[1-9][0-9]{0,8},[1-9][0-9]{0,8}$")]
    crop: Option<String>,
    /// Clockwise degrees: 90, 180 or 270.
    #[schema(minimum = 90, maximum = 270, multiple_of = 90)]
    #[param(minimum = 90, maximum = 270, multiple_of = 90)]
    rotate: Option<u16>,
    #[param(inline)]
    flip: Option<FlipParam>,
    /// Box width in pixels.
    #[schema(minimum = 1, maximum = 20000)]
    #[param(minimum = 1, maximum = 20000)]
    width: Option<u32>,
    /// Box height in pixels.
    #[schema(minimum = 1, maximum = 20000)]
    #[param(minimum = 1, maximum = 20000)]
    height: Option<u32>,
    #[param(inline)]
    fit: Option<FitParam>,
    #[param(inline)]
    gravity: Option<GravityParam>,
    /// `fx,fy`: a point (fractions of width and height, 0 to 1, up to 6 decimals) that
    /// `fit=cover` keeps as close to the centre as it can; wins over `gravity`.
    #[schema(pattern = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?),(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$")]
    #[param(pattern = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?),(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$")]
    focus: Option<String>,
    /// `RRGGBB` or `RRGGBBAA`: the padding of `fit=pad`, and what any transparency is
    /// flattened onto, whatever the output format (unset: only formats without alpha flatten,
    /// onto white; `pad` pads with transparency).
    #[schema(pattern = r"^#?[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")]
    #[param(pattern = r"^#?[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")]
    background: Option<String>,
    /// Allow a result larger than the input (default false).
    upscale: Option<bool>,
    /// Drop colour.
    grayscale: Option<bool>,
    /// −100 (black) … 100 (white).
    #[schema(minimum = -100, maximum = 100)]
    #[param(minimum = -100, maximum = 100)]
    brightness: Option<i32>,
    /// −100 (flat grey) … 100.
    #[schema(minimum = -100, maximum = 100)]
    #[param(minimum = -100, maximum = 100)]
    contrast: Option<i32>,
    /// Scale chroma (linear light): −100 grey … 100 doubles it.
    #[schema(minimum = -100, maximum = 100)]
    #[param(minimum = -100, maximum = 100)]
    saturation: Option<i32>,
    /// Turn the hue by degrees, keeping luminance.
    #[schema(minimum = -180, maximum = 180)]
    #[param(minimum = -180, maximum = 180)]
    hue: Option<i32>,
    /// Power curve `out = in^(1/gamma)` on each channel: above 1 lightens the mid-tones.
    #[schema(minimum = 0.1, maximum = 10)]
    #[param(minimum = 0.1, maximum = 10)]
    gamma: Option<f32>,
    /// Strength of a sepia tone, percent.
    #[schema(minimum = 0, maximum = 100)]
    #[param(minimum = 0, maximum = 100)]
    sepia: Option<i32>,
    /// Negative (alpha kept).
    invert: Option<bool>,
    /// Duotone: luminance mapped from black to this `RRGGBB` colour.
    #[schema(pattern = r"^#?[0-9A-Fa-f]{6}$")]
    #[param(pattern = r"^#?[0-9A-Fa-f]{6}$")]
    tint: Option<String>,
    /// Histogram equalisation of luma.
    equalize: Option<bool>,
    /// Gaussian blur sigma in pixels.
    #[schema(minimum = 0.1, maximum = 100)]
    #[param(minimum = 0.1, maximum = 100)]
    blur: Option<f32>,
    /// Unsharp-mask strength.
    #[schema(minimum = 0.1, maximum = 10)]
    #[param(minimum = 0.1, maximum = 10)]
    sharpen: Option<f32>,
    /// Convolution: `edge`, `sobel`, `emboss`, `outline`, `sharpen`, `box`, `gaussian`, or 9
    /// (3×3) or 25 (5×5) comma-separated weights (decimals, −1000 to 1000, no spaces),
    /// normalised by their sum when it is not 0.
    #[schema(
        pattern = r"^(edge|sobel|emboss|outline|sharpen|box|gaussian|-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)(,-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)){8}|-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)(,-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)){24})$"
    )]
    #[param(
        pattern = r"^(edge|sobel|emboss|outline|sharpen|box|gaussian|-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)(,-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)){8}|-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)(,-?(1000(\.0{1,6})?|[0-9]{1,3}(\.[0-9]{1,6})?)){24})$"
    )]
    kernel: Option<String>,
    /// Pixelate with square blocks of this many output pixels.
    #[schema(minimum = 2, maximum = 200)]
    #[param(minimum = 2, maximum = 200)]
    pixelate: Option<u32>,
    /// The id of a completed image whose output is drawn over this one (`400` naming
    /// `watermark` when it is unknown or not completed).
    watermark: Option<uuid::Uuid>,
    /// Where the watermark sits (default `southeast`), 2 % of the shorter side from the edges.
    #[param(inline)]
    watermark_gravity: Option<WatermarkGravityParam>,
    /// Watermark opacity, percent (default 50).
    #[schema(minimum = 0, maximum = 100)]
    #[param(minimum = 0, maximum = 100)]
    watermark_opacity: Option<u8>,
    /// Watermark width as a percentage of the output's width (default 20).
    #[schema(minimum = 1, maximum = 100)]
    #[param(minimum = 1, maximum = 100)]
    watermark_scale: Option<u8>,
    #[param(inline)]
    format: Option<FormatParam>,
    /// Encoder quality for JPEG, WebP and AVIF.
    #[schema(minimum = 1, maximum = 100)]
    #[param(minimum = 1, maximum = 100)]
    quality: Option<u8>,
    /// An animated GIF, WebP or APNG keeps every frame (`all`, the default) when the output
    /// format can animate (GIF, WebP; other outputs take the first frame), or only its first
    /// (`first`). Every operation applies to every frame.
    #[param(inline)]
    frames: Option<FramesParam>,
    /// Not an operation but the job's place in the queue: −100..100 (default 0), higher is
    /// claimed first; among equals, the row runnable longest. Allowed beside `pipeline`.
    #[schema(minimum = -100, maximum = 100)]
    #[param(minimum = -100, maximum = 100)]
    priority: Option<i16>,
    /// Not an operation but when the job may run: an RFC 3339 time (at most 366 days ahead);
    /// the image stays `pending` until then. Allowed beside `pipeline`.
    not_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Not an operation: `true` answers `200` with an earlier image of the same bytes
    /// (`original.sha256`) and the same effective pipeline that has not failed or been
    /// cancelled, instead of queueing a new one. Allowed beside `pipeline`.
    dedupe: Option<bool>,
    /// Not an operation but who to tell: an absolute http(s) URL (at most 2048 bytes) that gets
    /// a signed `POST` when the image completes or fails (see the README's "Webhooks").
    /// Allowed beside `pipeline`.
    #[schema(max_length = 2048, pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")]
    #[param(max_length = 2048, pattern = r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")]
    callback_url: Option<String>,
    /// Not an operation: comma-separated preset names (each `[a-z0-9_-]{1,64}`, at most 16)
    /// whose variants are queued with the image; a name no preset has is a `400` naming
    /// `variants`. Allowed beside `pipeline`.
    #[schema(pattern = r"^[ ,]*([a-z0-9_-]{1,64} *,[ ,]*){0,15}([a-z0-9_-]{1,64} *)?$")]
    #[param(pattern = r"^[ ,]*([a-z0-9_-]{1,64} *,[ ,]*){0,15}([a-z0-9_-]{1,64} *)?$")]
    variants: Option<String>,
}

/// Most files one upload request may carry.
pub const MAX_FILES: usize = 20;

/// A multipart upload: one or more `file` parts (at most 20), plus either the operation fields
/// or a `pipeline` part, and nothing else. Written by hand from [`Operations`]'s own schema: the
/// derive cannot close a flattened object or bound the number of `file` parts.
pub struct UploadForm;

impl utoipa::PartialSchema for UploadForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
        };
        use utoipa::openapi::{RefOr, Schema};
        let mut form = match Operations::schema() {
            RefOr::T(Schema::Object(o)) => o,
            // Operations is a plain struct: always an object schema (a unit test checks it).
            _ => ObjectBuilder::new().build(),
        };
        let file = ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary))),
            )
            .min_items(Some(1))
            .max_items(Some(MAX_FILES))
            .description(Some("the image(s); repeat the part for several"));
        let pipeline = ObjectBuilder::new().schema_type(Type::String).description(Some(
            "the JSON pipeline form, e.g. `{\"steps\": [{\"op\": \"resize\", \"width\": 800}], \
             \"format\": \"webp\"}`; instead of the operation fields",
        ));
        // Form fields are text: a field is sent or left out, never `null`. The derive made the
        // `Option` fields nullable; say what the wire can carry.
        for property in form.properties.values_mut() {
            *property = not_nullable(std::mem::replace(property, ObjectBuilder::new().into()));
        }
        form.properties.insert("file".into(), file.into());
        form.properties.insert("pipeline".into(), pipeline.into());
        form.required = vec!["file".into()];
        form.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        form.description = Some(
            "one or more `file` parts, plus either operation fields or `pipeline`; unknown fields are refused"
                .into(),
        );
        RefOr::T(Schema::Object(form))
    }
}

/// The same schema without `null` among its types (`["boolean", "null"]` → `"boolean"`,
/// `oneOf: [null, X]` → `X`).
pub(super) fn not_nullable(
    schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>,
) -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    let Ok(mut json) = serde_json::to_value(&schema) else {
        return schema;
    };
    if let Some(serde_json::Value::Array(types)) = json.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            json["type"] = only;
        }
    }
    if let Some(serde_json::Value::Array(one_of)) = json.get("oneOf").cloned() {
        let rest: Vec<_> = one_of
            .into_iter()
            .filter(|s| s.get("type") != Some(&"null".into()))
            .collect();
        if rest.len() == 1 {
            if let (Some(obj), Some(serde_json::Value::Object(inner))) = (json.as_object_mut(), rest.first())
            {
                obj.remove("oneOf");
                for (k, v) in inner {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
    }
    serde_json::from_value(json).unwrap_or(schema)
}

impl ToSchema for UploadForm {
    /// The enums the operation fields refer to (`FitParam`, ...), so their `$ref`s resolve.
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <Operations as ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{BLUR_RANGE, FIELD_NAMES, MAX_DIMENSION, SHARPEN_RANGE};
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::PartialSchema;

    fn operation_properties() -> std::collections::BTreeMap<String, RefOr<Schema>> {
        match Operations::schema() {
            RefOr::T(Schema::Object(o)) => o.properties,
            _ => panic!("Operations is not an object schema"),
        }
    }

    #[test]
    fn the_upload_form_is_closed_and_needs_a_file() {
        let json = serde_json::to_value(UploadForm::schema()).expect("schema as JSON");
        assert_eq!(json["additionalProperties"], serde_json::Value::Bool(false));
        assert_eq!(json["required"], serde_json::json!(["file"]));
        assert_eq!(json["properties"]["file"]["minItems"], 1);
        assert!(json["properties"]["crop"].is_object(), "{json}");
        // Form fields are never `null`.
        assert_eq!(json["properties"]["upscale"]["type"], "boolean", "{json}");
        assert!(json["properties"]["fit"]["$ref"].is_string(), "{json}");
        assert!(!json.to_string().contains("\"null\""), "{json}");
    }

    #[test]
    fn operation_fields_match_the_pipeline_parser() {
        let documented: Vec<String> = operation_properties().into_keys().collect();
        // The pipeline's fields, plus the job fields the upload handler takes first.
        let mut parsed: Vec<String> = FIELD_NAMES
            .iter()
            .chain(&["priority", "not_before", "dedupe", "callback_url", "variants"])
            .map(|s| s.to_string())
            .collect();
        parsed.sort_unstable();
        assert_eq!(documented, parsed);
    }

    /// The gravity words are listed twice for the document (imaging stays free of utoipa):
    /// they must be the parser's.
    #[test]
    fn documented_gravities_are_the_parsers() {
        let words = |schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>| -> Vec<String> {
            let json = serde_json::to_value(schema).expect("schema as JSON");
            let values = json["enum"].as_array().cloned().unwrap_or_default();
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        };
        let parser: Vec<String> = crate::imaging::Gravity::ALL
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let mut documented = words(GravityParam::schema());
        let mut sorted_parser = parser.clone();
        documented.sort_unstable();
        sorted_parser.sort_unstable();
        assert_eq!(documented, sorted_parser);
        let mut watermark = words(WatermarkGravityParam::schema());
        watermark.push("smart".into());
        watermark.sort_unstable();
        assert_eq!(
            watermark, sorted_parser,
            "watermarks take every gravity but smart"
        );
    }

    /// The bounds in the attributes above are literals (attributes cannot name constants):
    /// they must say what the parser enforces.
    #[test]
    fn documented_bounds_are_the_parsers_bounds() {
        let props = operation_properties();
        let bounds = |name: &str| -> (Option<f64>, Option<f64>) {
            let json = serde_json::to_value(&props[name]).expect("schema as JSON");
            (json["minimum"].as_f64(), json["maximum"].as_f64())
        };
        assert_eq!(bounds("width"), (Some(1.0), Some(f64::from(MAX_DIMENSION))));
        assert_eq!(bounds("height"), (Some(1.0), Some(f64::from(MAX_DIMENSION))));
        let close = |(lo, hi): (Option<f64>, Option<f64>), (elo, ehi): (f32, f32)| {
            lo.is_some_and(|v| (v - f64::from(elo)).abs() < 1e-6)
                && hi.is_some_and(|v| (v - f64::from(ehi)).abs() < 1e-6)
        };
        assert!(close(bounds("blur"), BLUR_RANGE), "{:?}", bounds("blur"));
        assert!(close(bounds("sharpen"), SHARPEN_RANGE), "{:?}", bounds("sharpen"));
    }
}
