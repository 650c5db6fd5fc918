//! Cloudflare Workers in Rust (feature `worker`): the shared tier's [`Transport`] over
//! `worker::Fetch`, with an `AbortController` timeout and `worker::Delay` for backoff, the
//! Upstash settings read from a Worker's `Env`, and the runtime pieces `crate::worker`'s
//! generations run on: [`Signal`], [`spawn`], [`sleep`], [`Abort`], [`hand_to`].
//!
//! This file and `crate::worker` are the only places that name the `worker` crate.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use ::worker::{
    AbortController, AbortSignal, Context, Delay, Env, Fetch, Headers, Method, RequestInit,
};
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};

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
    fn random(&self) -> u64 {
        super::random_u64()
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

/// Runs `task` to its end on the isolate's event loop, apart from the future of any caller.
pub fn spawn(task: impl Future<Output = ()> + 'static) {
    spawn_local(task);
}

/// The longest delay `setTimeout` honours, in milliseconds (about 24.8 days); longer ones fire
/// at once.
const MAX_DELAY_MS: u64 = i32::MAX as u64;

/// Resolves after `ms` milliseconds (at most about 24.8 days, `setTimeout`'s limit); dropping
/// it clears the timer.
pub fn sleep(ms: u64) -> Delay {
    Delay::from(Duration::from_millis(ms.min(MAX_DELAY_MS)))
}

/// A JS `Error` for `e`, with its `code` (what an abort signal carries as its reason).
fn js_error(e: &Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("CacheError");
    let _ = Reflect::set(
        &err,
        &JsValue::from_str("code"),
        &JsValue::from_str(e.code()),
    );
    err.into()
}

/// The `AbortController` of one generation: its signal goes to the generator; it is aborted
/// with a cachette [`Error`] as the reason (a JS `Error` named `CacheError` with its `code`).
#[derive(Debug)]
pub struct Abort(web_sys::AbortController);

impl Abort {
    /// A controller not aborted yet.
    pub fn new() -> Result<Abort> {
        web_sys::AbortController::new().map(Abort).map_err(|e| {
            Error::GeneratorFailed(format!(
                "no AbortController: {}",
                describe(::worker::Error::Internal(e))
            ))
        })
    }

    /// The signal.
    pub fn signal(&self) -> AbortSignal {
        AbortSignal::from(self.0.signal())
    }

    /// Aborts the signal with `why` as its reason.
    pub fn abort(&self, why: &Error) {
        self.0.abort_with_reason(&js_error(why));
    }
}

/// A function handing a task to the Worker's `ctx.waitUntil` (so that the request's context
/// lives until the task ends). A `waitUntil` that throws (the request's context is over) is
/// ignored: the task still runs as far as the runtime lets it.
pub fn hand_to(ctx: &Context) -> impl Fn(Pin<Box<dyn Future<Output = ()>>>) + 'static {
    let ctx: &::worker::worker_sys::Context = ctx.as_ref();
    let ctx: JsValue = ctx.unchecked_ref::<JsValue>().clone();
    move |task| {
        let promise = future_to_promise(async move {
            task.await;
            Ok(JsValue::UNDEFINED)
        });
        let _ = ctx
            .unchecked_ref::<::worker::worker_sys::Context>()
            .wait_until(&promise);
    }
}
