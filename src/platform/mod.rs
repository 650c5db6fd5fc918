//! The seam where JavaScript runtime primitives are chosen: the clock, timers and the HTTP
//! transport. Everything here goes through `globalThis`, so one code path serves browsers,
//! Node.js and workerd. Nothing else in the crate, besides `wasm/`, names `js_sys` or
//! `wasm_bindgen`.

use js_sys::{Function, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::clock::Clock;

#[cfg(feature = "shared")]
mod fetch;
#[cfg(feature = "shared")]
pub use fetch::FetchTransport;
#[cfg(feature = "worker")]
pub mod worker;

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;

    /// `String(x)`: ECMAScript's Number::toString, shortest round-trip digits.
    #[wasm_bindgen(js_name = String)]
    fn js_number_string(x: f64) -> String;

    /// `parseFloat(text)`: correctly rounded decimal to double.
    #[wasm_bindgen(js_name = parseFloat)]
    fn js_parse_float(text: &str) -> f64;

    #[wasm_bindgen(js_namespace = Math, js_name = random)]
    fn math_random() -> f64;

    type Performance;
    #[wasm_bindgen(thread_local_v2, js_namespace = globalThis, js_name = performance)]
    static PERFORMANCE: Option<Performance>;
    #[wasm_bindgen(method, js_name = now)]
    fn now(this: &Performance) -> f64;
}

/// 64 random bits from `Math.random()` (two draws: each has 52 bits at most).
#[cfg(any(feature = "shared", feature = "worker"))]
pub(crate) fn random_u64() -> u64 {
    let draw = || (math_random() * 4_294_967_296.0) as u64;
    (draw() << 32) ^ draw()
}

/// A number as ECMAScript prints it (`String(x)`), used by canonical JSON so that Rust's float
/// formatting stays out of the module.
pub fn number_to_string(x: f64) -> String {
    js_number_string(x)
}

/// The double nearest to a decimal text, by the engine's `parseFloat`.
pub fn parse_float(text: &str) -> f64 {
    js_parse_float(text)
}

/// Wall-clock milliseconds from `Date.now()`.
pub fn now_ms() -> u64 {
    let t = date_now();
    if t.is_finite() && t > 0.0 {
        t as u64
    } else {
        0
    }
}

/// High-resolution milliseconds from `performance.now()` where the runtime has it, else
/// `Date.now()`.
pub fn precise_ms() -> f64 {
    PERFORMANCE.with(|p| match p {
        Some(p) => p.now(),
        None => date_now(),
    })
}

/// The clock of a JavaScript runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn precise_ms(&self) -> f64 {
        precise_ms()
    }
}

/// A repeating timer (`setInterval`), `unref`'d where the runtime has `unref` so it never keeps a
/// Node.js process alive, and cleared when dropped.
pub struct Interval {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl std::fmt::Debug for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interval").finish_non_exhaustive()
    }
}

fn global_fn(name: &str) -> Option<Function> {
    Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .ok()?
        .dyn_into::<Function>()
        .ok()
}

impl Interval {
    /// Starts `callback` every `period_ms` milliseconds. `None` where the runtime has no timers or
    /// refuses them here (Cloudflare Workers refuse timers in global scope): expiry then stays
    /// lazy plus amortized.
    pub fn start(period_ms: f64, callback: impl FnMut() + 'static) -> Option<Interval> {
        let set_interval = global_fn("setInterval")?;
        let callback = Closure::<dyn FnMut()>::new(callback);
        let id = set_interval
            .call2(
                &JsValue::UNDEFINED,
                callback.as_ref(),
                &JsValue::from_f64(period_ms),
            )
            .ok()?;
        if id.is_object() {
            if let Ok(unref) = Reflect::get(&id, &JsValue::from_str("unref")) {
                if let Some(unref) = unref.dyn_ref::<Function>() {
                    let _ = unref.call0(&id);
                }
            }
        }
        Some(Interval {
            id,
            _callback: callback,
        })
    }
}

/// The cleanup timer of a cache: every `interval_secs` seconds (0: never), `sweep(target, now)`
/// runs while `target` is alive. The timer holds `target` weakly, so a dropped cache is
/// collected; `None` where timers are off or refused (see [`Interval::start`]).
pub fn cleanup_timer<S: 'static>(
    target: &std::rc::Rc<S>,
    interval_secs: f64,
    sweep: impl Fn(&S, u64) + 'static,
) -> Option<Interval> {
    if interval_secs.is_nan() || interval_secs <= 0.0 {
        return None;
    }
    let weak = std::rc::Rc::downgrade(target);
    let period = crate::clock::secs_to_ms(interval_secs) as f64;
    Interval::start(period, move || {
        if let Some(target) = weak.upgrade() {
            sweep(&target, now_ms());
        }
    })
}

#[cfg(feature = "shared")]
/// A one-shot timer (`setTimeout`) that resolves its promise to a value of the caller's after a
/// delay; cleared when dropped, so a settled race leaves no timer behind.
pub struct Deadline {
    /// Resolves to the value given to [`Deadline::start`] when the time is up.
    pub promise: js_sys::Promise,
    id: JsValue,
}

#[cfg(feature = "shared")]
impl Deadline {
    /// Starts the timer; `None` where the runtime has no `setTimeout`.
    pub fn start(ms: f64, value: &JsValue) -> Option<Deadline> {
        let set_timeout = global_fn("setTimeout")?;
        let mut resolve = None;
        let promise = js_sys::Promise::new(&mut |res, _| resolve = Some(res));
        let fire = resolve?.bind1(&JsValue::UNDEFINED, value);
        let id = set_timeout
            .call2(&JsValue::UNDEFINED, &fire, &JsValue::from_f64(ms))
            .ok()?;
        Some(Deadline { promise, id })
    }
}

#[cfg(feature = "shared")]
impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(clear) = global_fn("clearTimeout") {
            let _ = clear.call1(&JsValue::UNDEFINED, &self.id);
        }
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        if let Some(clear) = global_fn("clearInterval") {
            let _ = clear.call1(&JsValue::UNDEFINED, &self.id);
        }
    }
}
