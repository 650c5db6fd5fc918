//! Arguments from JavaScript, checked the same way for every class: strings without lone
//! surrogates, functions, removal arguments; generator failures; and the re-entrancy guard.

use std::cell::{Ref, RefCell, RefMut};

use js_sys::{Function, JsString};
use wasm_bindgen::prelude::*;

use super::error::{make, to_js, JsResult};
use crate::cache::Removal;
use crate::error::Error;

/// The error for a cache re-entered while one of its calls holds it.
pub(crate) fn busy() -> JsValue {
    make("INVALID_OPTIONS", "the cache was re-entered while busy")
}

/// Borrows a cache's state mutably, or fails with [`busy`] when it is re-entered.
pub(crate) fn exclusive<T>(cell: &RefCell<T>) -> JsResult<RefMut<'_, T>> {
    cell.try_borrow_mut().map_err(|_| busy())
}

/// Borrows a cache's state, or fails with [`busy`] when it is re-entered.
pub(crate) fn shared<T>(cell: &RefCell<T>) -> JsResult<Ref<'_, T>> {
    cell.try_borrow().map_err(|_| busy())
}

/// A string argument. Anything else, or a string with lone surrogates (which UTF-8, and so
/// Redis, cannot hold: they would silently turn into U+FFFD and collide), is refused with the
/// error `err` makes.
pub(crate) fn text(v: &JsValue, what: &str, err: fn(String) -> Error) -> JsResult<String> {
    let Some(s) = v.as_string() else {
        return Err(to_js(&err(format!("{what} must be a string"))));
    };
    if s.contains('\u{FFFD}') && !v.unchecked_ref::<JsString>().is_well_formed() {
        return Err(to_js(&err(format!(
            "{what} contains a lone surrogate, which has no UTF-8 form"
        ))));
    }
    Ok(s)
}

#[cfg(feature = "shared")]
/// A key argument (`INVALID_KEY` otherwise).
pub(crate) fn key_arg(v: &JsValue) -> JsResult<String> {
    text(v, "key", Error::InvalidKey)
}

/// A namespace or version argument (`INVALID_KEY` otherwise).
pub(crate) fn segment_arg(v: &JsValue, what: &str) -> JsResult<String> {
    text(v, what, Error::InvalidKey)
}

/// A pattern argument (`INVALID_PATTERN` otherwise).
pub(crate) fn pattern_arg(v: &JsValue) -> JsResult<String> {
    text(v, "pattern", Error::InvalidPattern)
}

/// A generator argument.
pub(crate) fn function_arg(v: &JsValue, what: &str) -> JsResult<Function> {
    v.dyn_ref::<Function>()
        .cloned()
        .ok_or_else(|| to_js(&Error::InvalidOptions(format!("{what} must be a function"))))
}

/// Wraps a generator failure as `GENERATOR_FAILED`, keeping the original as `cause`.
pub(crate) fn generator_failed(thrown: &JsValue) -> JsValue {
    let msg = format!("generator failed: {}", super::error::describe(thrown));
    super::error::with_cause(&Error::GeneratorFailed(msg), thrown)
}

/// The argument of a [`Removal`]: a pattern (`INVALID_PATTERN` otherwise), a namespace or a
/// version (`INVALID_KEY` otherwise).
pub(crate) fn removal_arg(kind: Removal, v: &JsValue) -> JsResult<String> {
    match kind {
        Removal::Pattern => pattern_arg(v),
        Removal::Namespace => segment_arg(v, "namespace"),
        Removal::Version | Removal::SwitchVersion => segment_arg(v, "version"),
    }
}
