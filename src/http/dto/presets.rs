//! The preset wire types: the preset object, the list, and the schema of the pipeline a
//! `PUT /api/presets/{name}` takes (documented from the upload's [`Operations`], parsed by
//! `presets::PresetPipeline::from_json`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::requests::{not_nullable, FormatParam};
use super::Operations;
use crate::db::presets::PresetRecord;

/// A preset: a named pipeline that variants are made with.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresetObject {
    /// `[a-z0-9_-]{1,64}`.
    #[schema(pattern = "^[a-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub name: String,
    /// The pipeline in its JSON (`steps`) form, as stored: what the API was given, normalised,
    /// with `"format": "auto"` kept. A row written by SQL shows its JSON as written.
    #[schema(value_type = Value)]
    pub pipeline: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// The last `PUT` that replaced it (a SQL `UPDATE` changes it only if it says so).
    pub updated_at: DateTime<Utc>,
}

impl From<PresetRecord> for PresetObject {
    fn from(r: PresetRecord) -> Self {
        PresetObject {
            name: r.name,
            pipeline: r.pipeline,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl PresetObject {
    /// The preset's URL, for `Location` headers.
    pub fn location(name: &str) -> String {
        format!("/api/presets/{name}")
    }
}

/// Every preset, ordered by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresetList {
    pub presets: Vec<PresetObject>,
}

/// The body of `PUT /api/presets/{name}`: a pipeline, in the JSON forms an upload's `pipeline`
/// part takes, plus `"format": "auto"`. Written by hand from [`Operations`]'s own schema (its
/// pipeline fields, not the job fields), which documents the flat form; the `steps` form
/// (`{"steps": [{"op": "resize", "width": 800}], "format": "auto"}`) is taken too.
pub struct PresetPipelineBody;

/// The `format` words of a preset: the upload's, and `auto`.
fn preset_formats() -> Vec<String> {
    use utoipa::PartialSchema;
    let json = serde_json::to_value(FormatParam::schema()).unwrap_or_default();
    let mut words: Vec<String> = json["enum"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    words.push("auto".into());
    words
}

impl utoipa::PartialSchema for PresetPipelineBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        use utoipa::openapi::{RefOr, Schema};
        let mut body = match Operations::schema() {
            RefOr::T(Schema::Object(o)) => o,
            // Operations is a plain struct: always an object schema (a unit test checks it).
            _ => ObjectBuilder::new().build(),
        };
        body.properties
            .retain(|name, _| crate::imaging::FIELD_NAMES.contains(&name.as_str()));
        // A value is given or left out, never `null`.
        for property in body.properties.values_mut() {
            *property = not_nullable(std::mem::replace(property, ObjectBuilder::new().into()));
        }
        let format = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(preset_formats()))
            .description(Some(
                "Output format. `auto`: the best one each request's `Accept` names (AVIF, else \
                 WebP, else JPEG, or PNG for an image with alpha), with `Vary: Accept`; unset: \
                 the input's when it can be written, else PNG.",
            ));
        body.properties.insert("format".into(), format.into());
        body.required = Vec::new();
        body.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        body.description = Some(
            "A pipeline: the flat operation fields (as an upload takes them, values as JSON \
             strings, numbers or booleans), or the `steps` form \
             (`{\"steps\": [{\"op\": \"resize\", \"width\": 800}], \"format\": \"auto\"}`); \
             `format` may be `auto`. Unknown fields are refused."
                .into(),
        );
        RefOr::T(Schema::Object(body))
    }
}

impl PresetPipelineBody {
    /// The JSON type the document gives each field of the body: `boolean`, `integer`, `number`
    /// or `string` (the enums are strings). The handler holds bodies to it, so a value the
    /// document refuses (`"width": "200"`, `"grayscale": 1`, `null`) is refused, naming it.
    pub fn field_types() -> &'static BTreeMap<String, String> {
        static TYPES: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        TYPES.get_or_init(|| {
            use utoipa::PartialSchema;
            let json = serde_json::to_value(PresetPipelineBody::schema()).unwrap_or_default();
            json["properties"]
                .as_object()
                .map(|properties| {
                    properties
                        .iter()
                        .map(|(name, schema)| {
                            let kind = schema["type"].as_str().unwrap_or("string");
                            (name.clone(), kind.to_owned())
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

impl ToSchema for PresetPipelineBody {
    /// The enums the fields refer to (`FitParam`, ...), so their `$ref`s resolve.
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        <Operations as ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn the_body_is_closed_takes_the_pipeline_fields_and_auto() {
        let json = serde_json::to_value(PresetPipelineBody::schema()).expect("schema as JSON");
        assert_eq!(json["additionalProperties"], serde_json::Value::Bool(false));
        let mut documented: Vec<&str> = json["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        documented.sort_unstable();
        let mut fields = crate::imaging::FIELD_NAMES.to_vec();
        fields.sort_unstable();
        assert_eq!(documented, fields);
        let formats = json["properties"]["format"]["enum"].as_array().expect("enum");
        assert!(
            formats.contains(&"auto".into()) && formats.contains(&"avif".into()),
            "{formats:?}"
        );
        assert!(!json.to_string().contains("\"null\""), "{json}");
    }

    #[test]
    fn every_field_has_a_json_type() {
        let types = PresetPipelineBody::field_types();
        assert_eq!(types.len(), crate::imaging::FIELD_NAMES.len());
        assert_eq!(types["width"], "integer");
        assert_eq!(types["blur"], "number");
        assert_eq!(types["grayscale"], "boolean");
        assert_eq!(types["fit"], "string");
        assert_eq!(types["format"], "string");
        for kind in types.values() {
            assert!(
                matches!(kind.as_str(), "boolean" | "integer" | "number" | "string"),
                "{kind}"
            );
        }
    }

    #[test]
    fn every_documented_format_is_one_a_preset_takes() {
        for word in preset_formats() {
            let body = serde_json::json!({ "format": word });
            assert!(crate::presets::PresetPipeline::from_json(&body).is_ok(), "{word}");
        }
    }
}
