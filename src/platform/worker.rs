//! Cloudflare Workers in Rust (feature `worker`): the shared tier's [`Transport`] over
//! `worker::Fetch`, with an `AbortController` timeout and `worker::Delay` for backoff, and the
//! Upstash settings read from a Worker's `Env`.
//!
//! This file and `crate::worker` are the only places that name the `worker` crate.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use ::worker::{AbortController, AbortSignal, Delay, Env, Fetch, Headers, Method, RequestInit};
use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::error::{Error, Result};
use crate::options::UpstashOptions;
use crate::upstash::{HttpRequest, HttpResponse, LocalFuture, Transport, TransportError};

/// The secret (or var) holding the Upstash REST URL.
pub const URL_VAR: &str = "UPSTASH_REDIS_REST_URL";
/// The secret (or var) holding the Upstash REST token.
pub const TOKEN_VAR: &str = "UPSTASH_REDIS_REST_TOKEN";

/// `worker::Fetch`, as a [`Transport`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerTransport;

/// A readable account of a `worker::Error` (the JS error's name and message where there is one).
fn describe(e: ::worker::Error) -> String {
    match e {
        ::worker::Error::Internal(v) => match v.dyn_ref::<js_sys::Error>() {
            Some(err) => format!(
                "{}: {}",
                String::from(err.name()),
                String::from(err.message())
            ),
            None => v.as_string().unwrap_or_else(|| "fetch failed".to_owned()),
        },
        other => other.to_string(),
    }
}

/// One request and its whole body, aborted through `signal`.
async fn exchange(
    request: &HttpRequest,
    signal: &AbortSignal,
) -> std::result::Result<HttpResponse, String> {
    let headers = Headers::new();
    headers
        .set("Content-Type", "application/json")
        .map_err(describe)?;
    for (name, value) in &request.headers {
        headers.set(name, value).map_err(describe)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&request.body)));
    let req = ::worker::Request::new_with_init(&request.url, &init).map_err(describe)?;
    let mut response = Fetch::Request(req)
        .send_with_signal(signal)
        .await
        .map_err(describe)?;
    let sync_token = response.headers().get("upstash-sync-token").ok().flatten();
    let body = response.text().await.map_err(describe)?;
    Ok(HttpResponse {
        status: response.status_code(),
        body,
        sync_token,
    })
}

/// Sends `request`, giving up (and aborting the fetch) after `request.timeout_ms`, body included.
async fn send(request: HttpRequest) -> std::result::Result<HttpResponse, TransportError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let outcome = {
        let mut exchange = pin!(exchange(&request, &signal));
        // Dropping the delay clears its timer, so a quick answer leaves no timer behind.
        let mut deadline = pin!(Delay::from(Duration::from_millis(u64::from(
            request.timeout_ms
        ))));
        std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = exchange.as_mut().poll(cx) {
                return Poll::Ready(Some(r));
            }
            deadline.as_mut().poll(cx).map(|()| None)
        })
        .await
    };
    match outcome {
        Some(r) => r.map_err(TransportError::Failed),
        None => {
            controller.abort();
            Err(TransportError::Timeout)
        }
    }
}

impl Transport for WorkerTransport {
    fn send(
        &self,
        request: HttpRequest,
    ) -> LocalFuture<'_, std::result::Result<HttpResponse, TransportError>> {
        Box::pin(send(request))
    }

    fn sleep(&self, ms: u32) -> LocalFuture<'_, ()> {
        Box::pin(Delay::from(Duration::from_millis(u64::from(ms))))
    }
}

/// A string binding (a secret or a plain-text var: both reach the Worker as strings), if set
/// and not blank.
fn env_string(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .filter(|s| !s.trim().is_empty())
}

/// Upstash settings from `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN` (secrets or
/// vars), with the default timeout and retries. [`Error::InvalidOptions`] names what is missing
/// (never the token's value).
pub fn upstash_from_env(env: &Env) -> Result<UpstashOptions> {
    let url = env_string(env, URL_VAR);
    let token = env_string(env, TOKEN_VAR);
    let missing: Vec<&str> = [(URL_VAR, url.is_none()), (TOKEN_VAR, token.is_none())]
        .into_iter()
        .filter_map(|(name, absent)| absent.then_some(name))
        .collect();
    match (url, token) {
        (Some(url), Some(token)) => {
            let options = UpstashOptions::new(url, token);
            options.validate()?;
            Ok(options)
        }
        _ => Err(Error::InvalidOptions(format!(
            "the Worker's env lacks {} (set them with `wrangler secret put` or as vars)",
            missing.join(" and ")
        ))),
    }
}

/// A one-shot signal that tasks of other requests can wait for.
///
/// workerd cancels a request whose code waits on nothing it can see ("your Worker's code had
/// hung"): a Rust `Waker` woken by another request is invisible to it, a JS promise is not. So a
/// wait that crosses requests (single-flight) awaits a promise, as in the npm package.
#[derive(Debug)]
pub struct Signal {
    promise: Promise,
    resolve: Option<Function>,
}

impl Default for Signal {
    fn default() -> Self {
        let mut resolve = None;
        // The executor runs at once, inside the constructor.
        let promise = Promise::new(&mut |res, _| resolve = Some(res));
        Signal { promise, resolve }
    }
}

impl Signal {
    /// Wakes every waiter, now and later.
    pub fn notify(&self) {
        if let Some(resolve) = &self.resolve {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }

    /// Resolves once [`Signal::notify`] was called.
    pub async fn wait(&self) {
        let _ = JsFuture::from(self.promise.clone()).await;
    }
}
