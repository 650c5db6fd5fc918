//! Option bags from JavaScript into their serde structs (`Options` and `UpstashOptions` in
//! src/options.rs, `SetOptions` and `WarmOptions` in value.rs): each bag is defined once, by its
//! `#[derive(Deserialize)]` struct, and read here by a small serde `Deserializer` over `JsValue`.
//!
//! Not serde-wasm-bindgen's `Deserializer` (the results go out through its `Serializer`):
//! - it asks an object only for the fields the struct declares, so an unknown name is never
//!   seen (`deny_unknown_fields` cannot refuse it), and `{ ttl: undefined }` reaches the field
//!   instead of leaving it at its default; its errors carry no path (`upstash.url`);
//! - it takes an array or any iterable where a struct or a list is expected, and a BigInt
//!   where a whole number is;
//! - its error messages format floats and strings with Rust's `fmt` (serde's `Unexpected`),
//!   which brings float-to-decimal and Unicode-escape code into the module. Measured with
//!   `./run build && node bench/sizes.mjs`, reading the bags through it shipped 76,381 B gzip
//!   for `cachette/memory` and 130,559 B for `cachette` (hand-written reader: 54,283 and
//!   105,560); through this file, 64,014 and 117,422.
//!
//! What a bag refuses, with `INVALID_OPTIONS` naming the field:
//! - anything but a plain object (an array, a function, a string, ...) where a bag is expected;
//!   `undefined` and `null` as a whole bag mean the defaults;
//! - an unknown name (an own enumerable key the struct does not declare);
//! - a value of the wrong type (`null` included: only `undefined` means "not given"), a BigInt
//!   where a number is expected, a number that is not a whole number where one is expected.

use std::fmt;

use js_sys::{Array, Object, Reflect};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use wasm_bindgen::{JsCast, JsValue};

/// Why a bag was refused: where (`upstash.url`; empty for the bag itself) and what.
#[derive(Debug)]
pub(crate) struct BagError {
    path: String,
    /// The rest of the message, from its separator on: `": invalid type: ..."` (serde's words)
    /// or `" must be an object"` (ours, which read on from the field's name).
    msg: String,
}

impl BagError {
    fn ours(msg: String) -> Self {
        BagError {
            path: String::new(),
            msg: format!(" {msg}"),
        }
    }

    /// The error a field's reader gave, one level further out: under `key`.
    fn at(mut self, key: &str) -> Self {
        self.path = if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{key}.{}", self.path)
        };
        self
    }

    /// The message, for the bag called `what` (`"Cache options"`).
    pub(crate) fn message(&self, what: &str) -> String {
        if self.path.is_empty() {
            format!("{what}{}", self.msg)
        } else {
            format!("{what}.{}{}", self.path, self.msg)
        }
    }
}

impl fmt::Display for BagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message("options"))
    }
}

impl std::error::Error for BagError {}

/// What serde calls Rust's primitive types, in a JavaScript reader's words.
fn expected(exp: &dyn de::Expected) -> String {
    let exp = exp.to_string();
    match exp.as_str() {
        "f64" => "a number".to_owned(),
        "u32" | "usize" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" => "a whole number from 0 to 9007199254740991".to_owned(),
        "a sequence" => "an array".to_owned(),
        _ => exp,
    }
}

/// What was found instead, without Rust's float and string formatting (a few KB of code that
/// the module otherwise does without: numbers are printed by JavaScript).
fn unexpected(unexp: de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match unexp {
        U::Bool(b) => b.to_string(),
        U::Unsigned(n) => n.to_string(),
        U::Signed(n) => n.to_string(),
        U::Float(n) => js_number(n),
        U::Str(s) => format!("\"{s}\""),
        U::Unit => "null".to_owned(),
        U::Other(what) => what.to_owned(),
        _ => "a value of another kind".to_owned(),
    }
}

/// A number as JavaScript prints it.
pub(crate) fn js_number(n: f64) -> String {
    js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map(String::from)
        .unwrap_or_default()
}

impl de::Error for BagError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        BagError {
            path: String::new(),
            msg: format!(": {msg}"),
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::invalid_value(unexp, exp)
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        BagError::ours(format!(
            "must be {}, got {}",
            expected(exp),
            unexpected(unexp)
        ))
    }
}

/// Names a bag accepts beyond its struct's fields, and names it refuses among them.
#[derive(Clone, Copy, Default)]
pub(crate) struct Names {
    /// Read by the caller, outside serde (JavaScript functions: `sizeOf`): skipped here.
    pub(crate) extra: &'static [&'static str],
    /// Fields of the struct that this bag does not have (`MemoryCache` has no `upstash`).
    pub(crate) refused: &'static [&'static str],
}

/// `v` as a plain object: not an array, not a function.
pub(crate) fn plain_object(v: &JsValue) -> Option<&Object> {
    v.dyn_ref::<Object>()
        .filter(|_| !v.is_function() && !Array::is_array(v))
}

/// Reads the bag `v` into `T` (`undefined` and `null`: `T::default()`).
pub(crate) fn read<T: DeserializeOwned + Default>(
    v: &JsValue,
    names: Names,
) -> Result<T, BagError> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    T::deserialize(Value {
        v: v.clone(),
        names,
    })
}

/// A JavaScript value read as a serde value.
struct Value {
    v: JsValue,
    names: Names,
}

impl Value {
    /// The error for a value of the wrong kind.
    fn invalid(&self, exp: &dyn de::Expected) -> BagError {
        let got = if let Some(b) = self.v.as_bool() {
            de::Unexpected::Bool(b)
        } else if let Some(n) = self.v.as_f64() {
            de::Unexpected::Float(n)
        } else if self.v.is_null() {
            de::Unexpected::Unit
        } else {
            de::Unexpected::Other(if self.v.is_string() {
                "a string"
            } else if Array::is_array(&self.v) {
                "an array"
            } else if self.v.is_function() {
                "a function"
            } else if self.v.is_bigint() {
                "a bigint"
            } else if self.v.is_object() {
                "an object"
            } else {
                "a value of another kind"
            })
        };
        de::Error::invalid_type(got, exp)
    }

    /// A whole number from 0 to 2^53 - 1 (a BigInt is refused).
    fn whole<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
        match self.v.as_f64() {
            Some(n) if n.fract() == 0.0 && (0.0..=MAX_SAFE).contains(&n) => {
                visitor.visit_u64(n as u64)
            }
            Some(n) => Err(BagError::ours(format!(
                "must be {}, got {}",
                expected(&visitor),
                js_number(n)
            ))),
            None => Err(self.invalid(&visitor)),
        }
    }
}

impl<'de> de::Deserializer<'de> for Value {
    type Error = BagError;

    /// Only the kinds below are read; no bag field takes anything else.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        Err(self.invalid(&visitor))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        match self.v.as_bool() {
            Some(b) => visitor.visit_bool(b),
            None => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        match self.v.as_f64() {
            Some(n) => visitor.visit_f64(n),
            None => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.whole(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.whole(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.whole(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.whole(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        match self.v.as_string() {
            Some(s) => visitor.visit_string(s),
            None => Err(self.invalid(&visitor)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        self.deserialize_string(visitor)
    }

    /// `undefined` is `None`; `null` is a value (of the wrong type, for every bag field).
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        if self.v.is_undefined() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, BagError> {
        visitor.visit_newtype_struct(self)
    }

    /// Arrays only.
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, BagError> {
        match self.v.dyn_ref::<Array>() {
            Some(items) => visitor.visit_seq(Items {
                items: items.clone(),
                next: 0,
            }),
            None => Err(BagError::ours("must be an array".to_owned())),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, BagError> {
        let obj = plain_object(&self.v)
            .ok_or_else(|| BagError::ours("must be an object".to_owned()))?
            .clone();
        visitor.visit_map(Entries {
            keys: Object::keys(&obj),
            obj,
            next: 0,
            value: None,
            key: String::new(),
            fields,
            names: self.names,
        })
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u128 char bytes byte_buf unit unit_struct tuple tuple_struct map
        enum ignored_any
    }
}

/// An array's items.
struct Items {
    items: Array,
    next: u32,
}

impl<'de> de::SeqAccess<'de> for Items {
    type Error = BagError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, BagError> {
        if self.next >= self.items.length() {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let v = Value {
            v: self.items.get(i),
            names: Names::default(),
        };
        seed.deserialize(v)
            .map(Some)
            .map_err(|e| e.at(&i.to_string()))
    }
}

/// A plain object's own enumerable keys and their values, `undefined` ones left out.
struct Entries {
    obj: Object,
    keys: Array,
    next: u32,
    /// The value of the key just read, and that key (for the path of an error).
    value: Option<JsValue>,
    key: String,
    fields: &'static [&'static str],
    names: Names,
}

impl Entries {
    /// `has an unknown option "foo"; known: ...`.
    fn unknown(&self, key: &str) -> BagError {
        let known: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| !self.names.refused.contains(f))
            .chain(self.names.extra)
            .copied()
            .collect();
        BagError::ours(format!(
            "has an unknown option \"{key}\"; known: {}",
            known.join(", ")
        ))
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = BagError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, BagError> {
        while self.next < self.keys.length() {
            let k = self.keys.get(self.next);
            self.next += 1;
            let key = k.as_string().unwrap_or_default();
            if self.names.extra.contains(&key.as_str()) {
                continue;
            }
            if !self.fields.contains(&key.as_str()) || self.names.refused.contains(&key.as_str()) {
                return Err(self.unknown(&key));
            }
            let value = Reflect::get(&self.obj, &k).map_err(|e| {
                BagError::ours(format!("could not be read: {}", super::error::describe(&e)))
                    .at(&key)
            })?;
            if value.is_undefined() {
                continue;
            }
            self.value = Some(value);
            self.key = key;
            return seed
                .deserialize(self.key.as_str().into_deserializer())
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, BagError> {
        let v = self.value.take().unwrap_or(JsValue::UNDEFINED);
        seed.deserialize(Value {
            v,
            names: Names::default(),
        })
        .map_err(|e| e.at(&self.key))
    }
}

/// The field names of the struct `T` (serde's list of them, in order).
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut names));
    names
}

/// A deserializer that only notes the fields it is asked for.
struct Probe<'a>(&'a mut &'static [&'static str]);

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = BagError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, BagError> {
        Err(BagError::ours(String::new()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, BagError> {
        *self.0 = fields;
        Err(BagError::ours(String::new()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
