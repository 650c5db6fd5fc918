//! The shared tier's transport over the global `fetch` (browsers, Node.js 18+, workerd alike),
//! with an `AbortController` timeout and `setTimeout` for backoff.
//!
//! The Fetch API's types (`RequestInit`, `Headers`, `Response`, `AbortController`,
//! `AbortSignal`) are web-sys's. The global functions are bound here as plain globals, as
//! reqwest's wasm client binds `fetch`: web-sys has them only as methods of `Window` or
//! `WorkerGlobalScope`, and Node.js's `globalThis` is neither (nor is there a `window` in Node.js
//! or workerd).

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, RequestInit, Response};

use crate::upstash::{HttpRequest, HttpResponse, LocalFuture, Transport, TransportError};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    fn fetch_with_str_and_init(input: &str, init: &RequestInit) -> Result<Promise, JsValue>;

    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(f: &Function, ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// `fetch`, as a [`Transport`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchTransport;

fn describe(e: &JsValue) -> String {
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        let name = String::from(err.name());
        let message = String::from(err.message());
        // undici puts the useful part ("ECONNREFUSED", "other side closed") in `cause`.
        let cause = Reflect::get(err, &JsValue::from_str("cause"))
            .ok()
            .and_then(|c| c.dyn_into::<js_sys::Error>().ok())
            .map(|c| format!(" ({})", String::from(c.message())))
            .unwrap_or_default();
        return format!("{name}: {message}{cause}");
    }
    e.as_string().unwrap_or_else(|| "fetch failed".to_owned())
}

/// The request's headers, `Content-Type: application/json` first.
fn headers(request: &HttpRequest) -> Result<Headers, JsValue> {
    let headers = Headers::new()?;
    headers.set("Content-Type", "application/json")?;
    for (name, value) in &request.headers {
        headers.set(name, value)?;
    }
    Ok(headers)
}

async fn send(request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let headers = headers(&request).map_err(|e| TransportError::Failed(describe(&e)))?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(&request.body));

    // The timeout aborts the request; `timed_out` tells an abort by us from other failures.
    let timed_out = std::rc::Rc::new(std::cell::Cell::new(false));
    let controller = AbortController::new().ok();
    let mut timer = None;
    let mut _on_timeout = None;
    if let Some(c) = controller {
        init.set_signal(Some(&c.signal()));
        let flag = timed_out.clone();
        let cb = Closure::once(move || {
            flag.set(true);
            c.abort();
        });
        timer = set_timeout(cb.as_ref().unchecked_ref(), f64::from(request.timeout_ms)).ok();
        _on_timeout = Some(cb);
    }
    let outcome = async {
        let pending = fetch_with_str_and_init(&request.url, &init).map_err(|e| describe(&e))?;
        let response: Response = JsFuture::from(pending)
            .await
            .map_err(|e| describe(&e))?
            .unchecked_into();
        let text = response.text().map_err(|e| describe(&e))?;
        let body = JsFuture::from(text)
            .await
            .map_err(|e| describe(&e))?
            .as_string()
            .unwrap_or_default();
        let sync_token = response.headers().get("upstash-sync-token").ok().flatten();
        Ok::<_, String>(HttpResponse {
            status: response.status(),
            body,
            sync_token,
        })
    }
    .await;
    if let Some(id) = &timer {
        clear_timeout(id);
    }
    outcome.map_err(|why| {
        if timed_out.get() {
            TransportError::Timeout
        } else {
            TransportError::Failed(why)
        }
    })
}

async fn sleep(ms: u32) {
    let p = Promise::new(&mut |resolve, _| {
        if set_timeout(&resolve, f64::from(ms)).is_err() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(p).await;
}

impl Transport for FetchTransport {
    fn send(&self, request: HttpRequest) -> LocalFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(send(request))
    }

    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()> {
        Box::pin(sleep(ms))
    }
    fn random(&self) -> u64 {
        super::random_u64()
    }
}
