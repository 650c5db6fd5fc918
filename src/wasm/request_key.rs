//! `requestKey`: the key function on its own.

use wasm_bindgen::prelude::*;

use super::error::{js, JsResult};
use super::state::segment_arg;
use super::value::{data_json, key_format};

/// `requestKey(version, namespace, data, keyFormat = "jcs")`: `"{version}:{namespace}:{md5}"` of
/// the canonical JSON of `data`.
#[wasm_bindgen(js_name = requestKey, unchecked_return_type = "string")]
pub fn request_key(
    #[wasm_bindgen(unchecked_param_type = "string")] version: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] namespace: JsValue,
    #[wasm_bindgen(unchecked_param_type = "unknown")] data: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "KeyFormat")] key_format_name: JsValue,
) -> JsResult<String> {
    let version = segment_arg(&version, "version")?;
    let namespace = segment_arg(&namespace, "namespace")?;
    let format = key_format(&key_format_name)?;
    let text = data_json(&data)?;
    js(crate::key::request_key(&version, &namespace, &text, format))
}
