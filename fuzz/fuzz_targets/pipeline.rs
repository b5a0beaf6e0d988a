//! The pipeline parser on arbitrary input, in both forms.
//!
//! The first byte picks the form: even → the bytes are a JSON document for
//! `Pipeline::from_json`; odd → they are a query string (`k=v&k=v`) for
//! `Pipeline::from_fields`. Beyond "never panics", every pipeline that parses must
//! validate, and survive its stored form: serialised to JSON (what goes in the `pipeline`
//! column) and parsed back it must be the same pipeline, or the worker would run something
//! other than what the upload was answered with.
#![no_main]

use image_processor::imaging::Pipeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let parsed = if mode % 2 == 0 {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) else {
            return;
        };
        Pipeline::from_json(&value)
    } else {
        let text = String::from_utf8_lossy(rest);
        let pairs: Vec<(String, String)> = form_pairs(&text);
        Pipeline::from_fields(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(Option::unwrap_or_default)
    };
    let Ok(pipeline) = parsed else {
        return;
    };
    pipeline
        .validate()
        .expect("a parsed pipeline must pass validate()");
    let stored = serde_json::to_value(&pipeline).expect("a pipeline serialises");
    let reread = Pipeline::from_json(&stored)
        .unwrap_or_else(|e| panic!("stored form {stored} does not parse back: {e}"));
    assert_eq!(reread, pipeline, "stored form {stored} changed the pipeline");
});

/// `a=1&b=2` split without percent-decoding (the fuzzer can produce any text directly).
fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split(['&', '\n'])
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}
