#![doc = include_str!("../README.md")]

pub mod cache;
pub mod clock;
pub mod error;
pub mod glob;
pub mod key;
pub mod md5;
pub mod memory;
pub mod options;
#[cfg(target_arch = "wasm32")]
pub mod platform;
pub mod stats;
pub mod upstash;
#[cfg(target_arch = "wasm32")]
mod wasm;

pub use error::{Error, Result};
pub use key::{request_key, KeyFormat};
