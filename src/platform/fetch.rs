//! The shared tier's transport over the global `fetch` (browsers, Node.js 18+, workerd alike),
//! with an `AbortController` timeout and `setTimeout` for backoff.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::upstash::{HttpRequest, HttpResponse, LocalFuture, Transport, TransportError};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(url: &str, init: &Object) -> Result<Promise, JsValue>;

    type Response;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Response) -> u16;
    #[wasm_bindgen(method, getter)]
    fn headers(this: &Response) -> Headers;
    #[wasm_bindgen(method, catch)]
    fn text(this: &Response) -> Result<Promise, JsValue>;

    type Headers;
    #[wasm_bindgen(method, catch, js_name = get)]
    fn get_header(this: &Headers, name: &str) -> Result<Option<String>, JsValue>;

    type AbortController;
    #[wasm_bindgen(constructor, catch)]
    fn new() -> Result<AbortController, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn signal(this: &AbortController) -> JsValue;
    #[wasm_bindgen(method)]
    fn abort(this: &AbortController);

    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn set_timeout(f: &Function, ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// `fetch`, as a [`Transport`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchTransport;

fn set(obj: &Object, name: &str, v: &JsValue) {
    let _ = Reflect::set(obj, &JsValue::from_str(name), v);
}

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

async fn send(request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let init = Object::new();
    set(&init, "method", &JsValue::from_str("POST"));
    let headers = Object::new();
    set(
        &headers,
        "Content-Type",
        &JsValue::from_str("application/json"),
    );
    for (name, value) in &request.headers {
        set(&headers, name, &JsValue::from_str(value));
    }
    set(&init, "headers", &headers);
    set(&init, "body", &JsValue::from_str(&request.body));

    // The timeout aborts the request; `timed_out` tells an abort by us from other failures.
    let timed_out = std::rc::Rc::new(std::cell::Cell::new(false));
    let controller = AbortController::new().ok();
    let mut timer = None;
    let mut _on_timeout = None;
    if let Some(c) = controller {
        set(&init, "signal", &c.signal());
        let flag = timed_out.clone();
        let cb = Closure::once(move || {
            flag.set(true);
            c.abort();
        });
        timer = set_timeout(cb.as_ref().unchecked_ref(), f64::from(request.timeout_ms)).ok();
        _on_timeout = Some(cb);
    }
    let outcome = async {
        let pending = global_fetch(&request.url, &init).map_err(|e| describe(&e))?;
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
        let sync_token = response
            .headers()
            .get_header("upstash-sync-token")
            .ok()
            .flatten();
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
}
