//! Entry points for the cargo-fuzz targets in `fuzz/` (the `fuzzing` feature): thin wrappers
//! around decoders that are otherwise private. Not part of the API; no stability promised.

use crate::error::Result;
use crate::upstash::Reply;

/// Decodes the body of an HTTP 200 answer to one Upstash command, as `Client::command` does.
pub fn upstash_command_reply(body: &str) -> Result<Reply> {
    crate::upstash::decode_command_body(body)
}

/// Decodes the body of an HTTP 200 answer to a batch of `count` Upstash commands (`/pipeline`,
/// `/multi-exec`), as `Client::pipeline` does: one result per command.
pub fn upstash_batch_replies(body: &str, count: usize) -> Result<Vec<Result<Reply>>> {
    crate::upstash::decode_batch_body(body, count)
}
