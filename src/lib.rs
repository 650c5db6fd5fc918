#![doc = include_str!("../README.md")]

pub mod cache;
pub mod canonical;
pub mod clock;
pub mod error;
// Entry points for the fuzz targets in fuzz/; not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod key;
mod md5;
pub mod memory;
pub mod options;
#[cfg(target_arch = "wasm32")]
pub mod platform;
pub mod stats;
pub mod upstash;
// A Rust Worker has its own JS surface (workers-rs): the npm package's is left out of its module.
#[cfg(all(target_arch = "wasm32", not(feature = "worker")))]
mod wasm;
#[cfg(all(feature = "worker", target_arch = "wasm32"))]
pub mod worker;

pub use canonical::KeyFormat;
pub use error::{Error, Result};
pub use key::request_key;
