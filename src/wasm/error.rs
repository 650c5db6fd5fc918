//! Errors into JavaScript: every failure becomes a `CacheError` (a real `Error` subclass with a
//! stable `code`), never a string and never a panic.

use std::cell::RefCell;

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::prelude::*;

use crate::error::Error;

thread_local! {
    static ERROR_CLASS: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Registers the package's `CacheError` class; the package entries call this once after the
/// module is initialised. Not part of the public API.
#[wasm_bindgen(js_name = "__registerErrorClass")]
pub fn register_error_class(ctor: Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(ctor));
}

/// The JavaScript error for `e`.
pub(crate) fn to_js(e: &Error) -> JsValue {
    make(e.code(), &e.to_string())
}

/// A `CacheError` with `code` and `message`.
pub(crate) fn make(code: &str, message: &str) -> JsValue {
    let code = JsValue::from_str(code);
    let class = ERROR_CLASS.with(|c| c.borrow().clone());
    if let Some(class) = class {
        let args = Array::of2(&code, &JsValue::from_str(message));
        if let Ok(err) = Reflect::construct(&class, &args) {
            return err;
        }
    }
    let err = js_sys::Error::new(message);
    err.set_name("CacheError");
    let _ = Reflect::set(&err, &JsValue::from_str("code"), &code);
    err.into()
}

/// A `CacheError` for `e` that keeps the original JavaScript exception as `cause`.
pub(crate) fn with_cause(e: &Error, cause: &JsValue) -> JsValue {
    let err = to_js(e);
    let _ = Reflect::set(&err, &JsValue::from_str("cause"), cause);
    err
}

/// A readable description of any thrown JavaScript value.
pub(crate) fn describe(thrown: &JsValue) -> String {
    if let Some(err) = thrown.dyn_ref::<js_sys::Error>() {
        return String::from(err.message());
    }
    if let Some(s) = thrown.as_string() {
        return s;
    }
    js_sys::JSON::stringify(thrown)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| "a value that is not an Error".to_owned())
}

/// `Result` into JavaScript.
pub(crate) type JsResult<T> = Result<T, JsValue>;

/// Maps a core result into JavaScript.
pub(crate) fn js<T>(r: crate::Result<T>) -> JsResult<T> {
    r.map_err(|e| to_js(&e))
}
