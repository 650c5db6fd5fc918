//! `MemorySlots`: the WebAssembly half of the package's `MemoryCache`.
//!
//! The JavaScript class (`pkg-template/memory-cache.js`) keeps the keys (a `Map` from key to
//! slot) and the values (an array by slot), so that a read never copies a key into linear memory
//! nor a value through the externref table. Everything else is decided here, by a
//! [`Core`]: LRU order, TTL and the expiry index, bounds and eviction, sweeping (amortized,
//! and by the cleanup timer), Redis-exact pattern matching, request keys, statistics.
//!
//! # The shared block
//!
//! JavaScript reads and writes one block of linear memory as 32-bit words, at the address
//! `MemorySlots.header()` returns, through views it re-creates whenever memory grows:
//!
//! | word | meaning |
//! |---|---|
//! | 0 | reads logged by JavaScript since the last call (`TOUCHES` at most) |
//! | 1 | entries of the removal log of the last call, not yet dropped by JavaScript |
//! | 2 | address of that log: `LOG_STRIDE` words per entry, the slot then the cause |
//! | 3 | address of the slot array: `ENTRY_WORDS` `f64` words per slot, the first its expiry time in milliseconds (`+Infinity`: never; `-Infinity`: free) |
//! | 4-11 | the 32 hex digits of the last request key's MD5 (bytes) |
//! | 12.. | the logged reads: slot numbers, oldest first |
//!
//! `MemorySlots.layout()` gives these word offsets and sizes by name; the JavaScript class
//! checks its own copies against them once, when the module loads, and refuses to run on a
//! mismatch. Removal kinds cross as the exported `Removal` object, never as bare numbers.
//!
//! - **Reads.** JavaScript finds the slot in its map, compares the slot's expiry time with its
//!   clock reading; when the entry is live it appends the slot to the read log and returns the
//!   value, with no call at all. Every call here first replays the log into the LRU list (in
//!   order, so recency is exactly as if each read had called in), counting each as a hit,
//!   before anything that depends on recency or frees a slot. When the log is full, or the
//!   entry looks expired, JavaScript calls [`MemorySlots::read`] instead.
//! - **Removals.** Every slot that a call frees (evicted, expired, deleted, matched, swept by
//!   the timer) is listed at words 1-2, and its expiry time reads 0. JavaScript drops the
//!   key and value of each listed slot right after the call returns (the timer calls
//!   `onRemoved` after its sweep), then writes 0 to word 1, before it installs anything in a
//!   slot the call returned. So a value is never returned after its slot was freed here.
//! - **Time** comes from JavaScript (`Date.now()`, passed as `now`); the timer reads its own.
//! - **Request keys.** JavaScript writes the UTF-8 of `JSON.stringify(data)` into the input
//!   buffer (`keyInput`), names the namespace when it changes (`keyNamespace`), and calls
//!   `keyDigest`, which canonicalises, hashes and leaves the digest's hex at words 4-11;
//!   JavaScript prefixes `"{version}:{namespace}:"`. No string is allocated on either side.

use std::cell::{Cell, RefCell};
use std::mem::{offset_of, size_of};
use std::rc::Rc;

use js_sys::{Function, Object};
use wasm_bindgen::prelude::*;

use super::args::{exclusive, function_arg, generator_failed, removal_arg, shared, text};
use super::error::{js, to_js, JsResult};
use super::value::{
    cache_options, call_options, check_value, json_failure, key_format, put, set_options,
    size_of_failure, stats_object, GET_OR_SET_OPTIONS, SET_OPTIONS,
};
use crate::cache::{self, Core, Removed};
use crate::error::{Error, Result};
use crate::key::validate_key_len;
use crate::memory::ENTRY_BYTES;
use crate::options::Options;
use crate::platform::{cleanup_timer, Interval};

/// Reads JavaScript may log between two calls.
const TOUCHES: usize = 1024;

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Request-key input buffers larger than this are not kept between calls (bytes).
const RETAINED_INPUT: usize = 64 * 1024;

/// What a hot method returns when it failed (see `takeError`).
const FAILED: u32 = u32::MAX;

/// The block JavaScript reads and writes directly (see the module docs for the word layout).
#[repr(C)]
struct Shared {
    touch_len: Cell<u32>,
    removed_len: Cell<u32>,
    removed_ptr: Cell<u32>,
    expiry_ptr: Cell<u32>,
    hex: [Cell<u8>; 32],
    touches: [Cell<u32>; TOUCHES],
}

/// Word offsets in the shared block, and the sizes JavaScript relies on, by name.
const LAYOUT: [(&str, usize); 9] = [
    ("TOUCH_LEN", offset_of!(Shared, touch_len) / 4),
    ("REMOVED_LEN", offset_of!(Shared, removed_len) / 4),
    ("REMOVED_PTR", offset_of!(Shared, removed_ptr) / 4),
    ("EXPIRY_PTR", offset_of!(Shared, expiry_ptr) / 4),
    ("ENTRY_WORDS", ENTRY_BYTES / 8),
    ("HEX", offset_of!(Shared, hex) / 4),
    ("TOUCHES", offset_of!(Shared, touches) / 4),
    ("TOUCH_CAPACITY", TOUCHES),
    ("LOG_STRIDE", size_of::<Removed>() / 4),
];

/// The kinds of removal by pattern, as JavaScript names them (`Removal.Pattern`, ...). Not part
/// of the public API: the package's `MemoryCache` uses it.
#[wasm_bindgen(skip_typescript)]
#[derive(Clone, Copy, Debug)]
pub enum Removal {
    /// `deletePattern(pattern)`.
    Pattern = 0,
    /// `invalidateNamespace(namespace)`.
    Namespace = 1,
    /// `invalidateVersion(version)`.
    Version = 2,
    /// `updateVersion(version)`.
    SwitchVersion = 3,
}

impl From<Removal> for cache::Removal {
    fn from(kind: Removal) -> Self {
        match kind {
            Removal::Pattern => cache::Removal::Pattern,
            Removal::Namespace => cache::Removal::Namespace,
            Removal::Version => cache::Removal::Version,
            Removal::SwitchVersion => cache::Removal::SwitchVersion,
        }
    }
}

struct Inner {
    core: Core,
    shared: Box<Shared>,
    /// Request-key input: JavaScript writes the JSON text here, between calls.
    input: Box<[u8]>,
    /// The namespace of the next request keys.
    namespace: String,
}

fn address<T>(p: *const T) -> u32 {
    p as usize as u32
}

impl Inner {
    /// Starts a call: forgets the removals JavaScript has dropped and replays its read log.
    fn begin(&mut self) {
        if self.shared.removed_len.get() == 0 {
            self.core.clear_removed();
        }
        let n = (self.shared.touch_len.replace(0) as usize).min(TOUCHES);
        for i in 0..n {
            self.core.touch(self.shared.touches[i].get());
        }
    }

    /// Ends a call: publishes the removal log and where the slot array is (freed slots read
    /// as expired there).
    fn end(&mut self) {
        let removed = self.core.removed();
        self.shared.removed_len.set(removed.len() as u32);
        self.shared.removed_ptr.set(address(removed.as_ptr()));
        self.shared
            .expiry_ptr
            .set(self.core.tier().entries_address() as u32);
    }
}

/// `Date.now()` as the core's clock (0 for nonsense).
fn ms(now: f64) -> u64 {
    if now.is_finite() && now > 0.0 {
        now as u64
    } else {
        0
    }
}

/// The slot-addressed memory tier behind the package's `MemoryCache`. Not part of the public
/// API: the package exports the JavaScript class, which owns one of these.
#[wasm_bindgen(skip_typescript)]
pub struct MemorySlots {
    inner: Rc<RefCell<Inner>>,
    timer: RefCell<Option<Interval>>,
    size_of: Option<Function>,
    error: RefCell<Option<JsValue>>,
    /// The constructor's options, the defaults of per-call options.
    defaults: Options,
    on_remove: Option<Function>,
    wait_until: Option<Function>,
}

impl MemorySlots {
    /// Runs one call: replays the read log, runs `f`, publishes the removals (also on error).
    fn run<T>(&self, f: impl FnOnce(&mut Inner) -> Result<T>) -> JsResult<T> {
        let mut inner = exclusive(&self.inner)?;
        inner.begin();
        let r = f(&mut inner);
        inner.end();
        js(r)
    }

    /// [`MemorySlots::run`] for the hot paths: a plain `u32` comes back (a `Result` would make
    /// the engine allocate an array for every call), `FAILED` on error, kept for `takeError()`.
    fn hot(&self, f: impl FnOnce(&mut Inner) -> Result<u32>) -> u32 {
        match self.run(f) {
            Ok(v) => v,
            Err(e) => {
                if let Ok(mut slot) = self.error.try_borrow_mut() {
                    *slot = Some(e);
                }
                FAILED
            }
        }
    }
}

#[wasm_bindgen]
impl MemorySlots {
    /// `new MemorySlots(options, onRemoved)`: validates `options` (as `MemoryCache` options)
    /// and starts the cleanup timer, which calls `onRemoved()` after a sweep that removed
    /// anything.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, on_removed: Function) -> JsResult<MemorySlots> {
        let opts = cache_options(&options, "MemoryCache options", false)?;
        let core = js(Core::new(&opts.core))?;
        let shared = Box::new(Shared {
            touch_len: Cell::new(0),
            removed_len: Cell::new(0),
            removed_ptr: Cell::new(0),
            expiry_ptr: Cell::new(0),
            hex: std::array::from_fn(|_| Cell::new(0)),
            touches: std::array::from_fn(|_| Cell::new(0)),
        });
        let inner = Inner {
            core,
            shared,
            input: Box::default(),
            namespace: String::new(),
        };
        inner
            .shared
            .expiry_ptr
            .set(inner.core.tier().entries_address() as u32);
        let inner = Rc::new(RefCell::new(inner));
        let timer = cleanup_timer(
            &inner,
            opts.core.cleanup_interval,
            move |inner: &RefCell<Inner>, now| {
                let removed = match inner.try_borrow_mut() {
                    Ok(mut i) => {
                        i.begin();
                        i.core.sweep_all(now);
                        i.end();
                        !i.core.removed().is_empty()
                    }
                    Err(_) => false,
                };
                if removed {
                    let _ = on_removed.call0(&JsValue::UNDEFINED);
                }
            },
        );
        Ok(MemorySlots {
            inner,
            timer: RefCell::new(timer),
            size_of: opts.size_of,
            error: RefCell::new(None),
            defaults: opts.core,
            on_remove: opts.on_remove,
            wait_until: opts.wait_until,
        })
    }

    /// The address of the shared block.
    pub fn header(&self) -> JsResult<u32> {
        Ok(address(&*shared(&self.inner)?.shared))
    }

    /// The shared block's layout: `[name, value, name, value, ...]` (see the module docs).
    pub fn layout() -> js_sys::Array {
        let out = js_sys::Array::new();
        for (name, value) in LAYOUT {
            out.push(&JsValue::from_str(name));
            out.push(&JsValue::from_f64(value as f64));
        }
        out
    }

    /// onRemove's name of each removal cause of the log, indexed by its number
    /// (`memory::RemovalCause`); an explicit removal reads `"deleted"` (the operation that
    /// removed may name it otherwise: `"invalidated"`, `"cleared"`).
    pub fn causes() -> js_sys::Array {
        use crate::cache::RemoveCause;
        use crate::memory::RemovalCause as C;
        let out = js_sys::Array::new();
        for cause in [C::Expired, C::Explicit, C::Replaced, C::Evicted] {
            let name = RemoveCause::of(cause, RemoveCause::Deleted).as_str();
            out.set(cause as u32, JsValue::from_str(name));
        }
        out
    }

    /// The module's memory, for the views over the shared block.
    pub fn memory() -> JsValue {
        wasm_bindgen::memory()
    }

    /// The `sizeOf` option, or `undefined`.
    #[wasm_bindgen(js_name = sizeOf)]
    pub fn size_of(&self) -> Option<Function> {
        self.size_of.clone()
    }

    /// The `onRemove` option.
    #[wasm_bindgen(js_name = onRemove)]
    pub fn on_remove(&self) -> Option<Function> {
        self.on_remove.clone()
    }

    /// Per-call options (`get_or_set`: those of `getOrSet`, else those of `set`) over the
    /// constructor's, as `{ ttl, ttlMs, keep, grace, staleWhileRevalidate, staleIfError,
    /// timeout, signal, waitUntil }`: `ttl` in seconds as given (`undefined`: the default),
    /// `ttlMs` the TTL that applies (`Infinity`: never), `keep` how long past it the entry is
    /// kept, the windows and `timeout` in milliseconds (0: none). Throws `INVALID_OPTIONS`.
    #[wasm_bindgen(js_name = callOptions)]
    pub fn call_options(&self, options: JsValue, get_or_set: bool) -> JsResult<Object> {
        let known = if get_or_set {
            GET_OR_SET_OPTIONS
        } else {
            SET_OPTIONS
        };
        let c = call_options(&options, known, &self.defaults, self.wait_until.as_ref())?;
        let p = c.policy;
        let out = Object::new();
        put(&out, "ttl", c.ttl.map_or(JsValue::UNDEFINED, JsValue::from));
        put(&out, "ttlMs", p.ttl_ms.map_or(f64::INFINITY, |t| t as f64));
        put(&out, "keep", p.keep_ms() as f64);
        put(&out, "grace", p.grace_ms as f64);
        put(
            &out,
            "staleWhileRevalidate",
            p.stale_while_revalidate_ms as f64,
        );
        put(&out, "staleIfError", p.stale_if_error_ms as f64);
        put(&out, "timeout", p.timeout_ms as f64);
        put(&out, "signal", c.signal.unwrap_or(JsValue::UNDEFINED));
        put(
            &out,
            "waitUntil",
            c.wait_until.map_or(JsValue::UNDEFINED, JsValue::from),
        );
        Ok(out)
    }

    /// Slots reserved up front (JavaScript reserves as many for its keys and values).
    pub fn reserved(&self) -> JsResult<u32> {
        Ok(shared(&self.inner)?.core.tier().reserved() as u32)
    }

    /// Whether values must be sized (`maxBytes` is set).
    #[wasm_bindgen(js_name = needsSizes)]
    pub fn needs_sizes(&self) -> JsResult<bool> {
        Ok(shared(&self.inner)?.core.needs_sizes())
    }

    /// Stores an entry for a key of `key_len` UTF-8 bytes (in `slot` if that is the key's
    /// current slot, else -1) whose value weighs `size`, for `ttl` seconds (`undefined`: the
    /// default); returns its slot, or `FAILED` (nothing changed: a bad TTL, a key over 32 KiB,
    /// a value too large, or shut down).
    pub fn insert(&self, slot: i32, key_len: u32, size: f64, ttl: Option<f64>, now: f64) -> u32 {
        self.hot(|i| {
            let slot = u32::try_from(slot).ok();
            let slot = i
                .core
                .insert(slot, key_len as usize, size as u64, ttl, ms(now))?;
            Ok(slot)
        })
    }

    /// 0 when an entry for a key of `key_len` bytes weighing `size` bytes could be stored (the key
    /// is not over 32 KiB, the entry not over the byte bound), else `FAILED`. Changes nothing.
    #[wasm_bindgen(js_name = checkCharge)]
    pub fn check_charge(&self, key_len: u32, size: f64) -> u32 {
        self.hot(|i| i.core.charge(key_len as usize, size as u64).map(|_| 0))
    }

    /// A read JavaScript could not answer alone (the log is full, or the entry looks expired):
    /// 1, with recency refreshed, when `slot` is live, else 0 (an expired entry is removed).
    pub fn read(&self, slot: u32, now: f64) -> u32 {
        self.hot(|i| {
            let live = i.core.read(slot, ms(now));
            i.core.count_read(live);
            Ok(u32::from(live))
        })
    }

    /// 1 when `slot` is live (recency untouched), else 0 (an expired entry is removed).
    pub fn contains(&self, slot: u32, now: f64) -> u32 {
        self.hot(|i| Ok(u32::from(i.core.contains(slot, ms(now)))))
    }

    /// Deletes `slot`: 1 when it was live, else 0; `FAILED` once shut down.
    pub fn delete(&self, slot: u32, now: f64) -> u32 {
        self.hot(|i| Ok(u32::from(i.core.delete(slot, ms(now))?)))
    }

    /// The error of the last call that returned `FAILED`.
    #[wasm_bindgen(js_name = takeError)]
    pub fn take_error(&self) -> JsValue {
        self.error
            .try_borrow_mut()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(super::args::busy)
    }

    /// Removes every key that `kind` selects among the candidates (the keys JavaScript holds,
    /// concatenated in `joined`, with their lengths in UTF-16 units and their slots). Returns how
    /// many live keys went.
    #[wasm_bindgen(js_name = deleteMatching)]
    pub fn delete_matching(
        &self,
        kind: Removal,
        arg: JsValue,
        joined: &str,
        lens: &[u32],
        slots: &[u32],
        now: f64,
    ) -> JsResult<u32> {
        let kind = cache::Removal::from(kind);
        let arg = removal_arg(kind, &arg)?;
        let mut candidates = Vec::with_capacity(slots.len());
        let mut rest = joined;
        for (&units, &slot) in lens.iter().zip(slots) {
            let mut counted = 0;
            let mut bytes = 0;
            for ch in rest.chars() {
                if counted >= units as usize {
                    break;
                }
                counted += ch.len_utf16();
                bytes += ch.len_utf8();
            }
            let (key, tail) = rest.split_at(bytes);
            candidates.push((slot, key.as_bytes()));
            rest = tail;
        }
        let now = ms(now);
        self.run(|i| Ok(i.core.remove_by(kind, &arg, candidates, now)? as u32))
    }

    /// Removes every entry; slot numbers start again from 0.
    pub fn clear(&self) -> JsResult<()> {
        self.run(|i| i.core.clear().map(drop))
    }

    /// Live entries (expired ones are swept first).
    pub fn len(&self, now: f64) -> JsResult<u32> {
        self.run(|i| Ok(i.core.len(ms(now)) as u32))
    }

    /// Live slots, most recently used first (every expired entry is swept first, logged).
    pub fn recency(&self, now: f64) -> JsResult<Vec<u32>> {
        self.run(|i| {
            let now = ms(now);
            i.core.sweep_all(now);
            Ok(i.core.tier().recency(now).collect())
        })
    }

    /// The current version prefix.
    pub fn version(&self) -> JsResult<String> {
        Ok(shared(&self.inner)?.core.version().to_owned())
    }

    /// The address of the request-key input buffer, at least `len` bytes long (exactly `len`
    /// when it had to grow, or 256 at least). A buffer over `RETAINED_INPUT` bytes is dropped
    /// again by the next `keyDigest`, and JavaScript then asks for a new one.
    #[wasm_bindgen(js_name = keyInput)]
    pub fn key_input(&self, len: u32) -> JsResult<u32> {
        let mut inner = exclusive(&self.inner)?;
        let len = len as usize;
        if inner.input.len() < len {
            inner.input = vec![0; len.max(256)].into_boxed_slice();
        }
        Ok(address(inner.input.as_ptr()))
    }

    /// Switches the version of the next `keyDigest` calls (`INVALID_KEY`, changing nothing, for
    /// a bad one).
    #[wasm_bindgen(js_name = keyVersion)]
    pub fn key_version(&self, version: &str) -> JsResult<()> {
        js(exclusive(&self.inner)?.core.set_version(version))
    }

    /// The error for a key format that is neither `"jcs"` nor `"python"`.
    #[wasm_bindgen(js_name = keyFormatError)]
    pub fn key_format_error(format: JsValue) -> JsValue {
        key_format(&format).err().unwrap_or(JsValue::UNDEFINED)
    }

    /// Sets the namespace of the next `keyDigest` calls.
    #[wasm_bindgen(js_name = keyNamespace)]
    pub fn key_namespace(&self, namespace: &str) -> JsResult<()> {
        let mut inner = exclusive(&self.inner)?;
        inner.namespace.clear();
        inner.namespace.push_str(namespace);
        Ok(())
    }

    /// Makes the request key of the namespace and of the JSON text in the first `len` bytes of
    /// the input buffer (which JavaScript wrote between calls), and leaves the hex of its
    /// digest in the shared block: the key is `"{version}:{namespace}:{hex}"`. 0, or `FAILED`.
    #[wasm_bindgen(js_name = keyDigest)]
    pub fn key_digest(&self, len: u32) -> u32 {
        self.hot(|i| {
            let Inner {
                core,
                shared,
                input,
                namespace,
                ..
            } = i;
            let bytes = input.get(..len as usize).unwrap_or_default();
            let digest = match std::str::from_utf8(bytes) {
                Ok(text) => core.request_digest(namespace, text),
                Err(_) => Err(Error::Unserializable(
                    "request data is not valid UTF-8".to_owned(),
                )),
            };
            if input.len() > RETAINED_INPUT {
                *input = Box::default();
            }
            for (pair, byte) in shared.hex.chunks_exact(2).zip(digest?) {
                pair[0].set(HEX_DIGITS[usize::from(byte >> 4)]);
                pair[1].set(HEX_DIGITS[usize::from(byte & 0x0f)]);
            }
            Ok(0)
        })
    }

    /// The statistics object, after counting the misses JavaScript answered since the last call
    /// (keys it does not hold; the hits it answered are counted from the read log).
    pub fn stats(&self, now: f64, misses: f64) -> JsResult<Object> {
        let timer = self.timer.try_borrow().is_ok_and(|t| t.is_some());
        self.run(|i| {
            i.core.add_reads(0, misses as u64);
            Ok(stats_object(&i.core.snapshot(
                ms(now),
                "memory",
                timer,
                false,
                None,
            )))
        })
    }

    /// Records the duration of one operation, in milliseconds.
    #[wasm_bindgen(js_name = recordLatency)]
    pub fn record_latency(&self, ms: f64) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            inner.core.record_latency(ms);
        }
    }

    /// Stops the timer and drops every entry; later operations fail with `SHUT_DOWN`.
    pub fn shutdown(&self) -> JsResult<()> {
        if let Ok(mut t) = self.timer.try_borrow_mut() {
            t.take();
        }
        self.run(|i| {
            i.core.shutdown();
            Ok(())
        })
    }

    // ---- errors, made here so that their codes and messages are the crate's --------------
    // Static, so that no instance is borrowed while they run (describing a thrown value may
    // run user code).

    /// The error for a key, namespace, version or pattern argument (`what`) that is not a
    /// string or holds a lone surrogate; `undefined` when it is fine.
    #[wasm_bindgen(js_name = argError)]
    pub fn arg_error(value: JsValue, what: &str) -> JsValue {
        let err = if what == "pattern" {
            Error::InvalidPattern
        } else {
            Error::InvalidKey
        };
        text(&value, what, err).err().unwrap_or(JsValue::UNDEFINED)
    }

    /// `INVALID_OPTIONS` for what `load(entries)` cannot read: `problem` says what and where.
    #[wasm_bindgen(js_name = loadError)]
    pub fn load_error(problem: &str) -> JsValue {
        to_js(&Error::InvalidOptions(format!(
            "load(entries) takes what dump() returns, an array of {{ key, value, ttl? }}: {problem}"
        )))
    }

    /// `SHUT_DOWN`.
    #[wasm_bindgen(js_name = shutDownError)]
    pub fn shut_down_error() -> JsValue {
        to_js(&Error::ShutDown)
    }

    /// The error for a key of `len` UTF-8 bytes (over 32 KiB); `undefined` when it is fine.
    #[wasm_bindgen(js_name = keyLengthError)]
    pub fn key_length_error(len: f64) -> JsValue {
        js(validate_key_len(len as usize))
            .err()
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// The `ttl` of per-call options (`undefined`: the default); throws `INVALID_OPTIONS`.
    #[wasm_bindgen(js_name = ttlOption)]
    pub fn ttl_option(options: JsValue) -> JsResult<Option<f64>> {
        set_options(&options)
    }

    /// The error for storing `undefined`.
    #[wasm_bindgen(js_name = undefinedValueError)]
    pub fn undefined_value_error() -> JsValue {
        check_value(&JsValue::UNDEFINED)
            .err()
            .unwrap_or(JsValue::UNDEFINED)
    }

    /// The error for data or a value that `JSON.stringify` refused (`threw`: it threw `thrown`)
    /// or turned into `undefined`.
    #[wasm_bindgen(js_name = jsonError)]
    pub fn json_error(data: JsValue, thrown: JsValue, threw: bool) -> JsValue {
        json_failure(&data, threw.then_some(&thrown))
    }

    /// The error for a `sizeOf` that threw `thrown` (`threw`) or returned no size.
    #[wasm_bindgen(js_name = sizeOfError)]
    pub fn size_of_error(thrown: JsValue, threw: bool) -> JsValue {
        size_of_failure(threw.then_some(&thrown))
    }

    /// The error of `getOrSet` for a generator that is not a function (`kind` 0), or that threw
    /// or rejected with `thrown` (any other `kind`).
    #[wasm_bindgen(js_name = generatorError)]
    pub fn generator_error(kind: u32, thrown: JsValue) -> JsValue {
        match kind {
            0 => function_arg(&thrown, "generator")
                .err()
                .unwrap_or(JsValue::UNDEFINED),
            _ => generator_failed(&thrown),
        }
    }
}
