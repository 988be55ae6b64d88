//! The adapter protocol (adapters/PROTOCOL.md): how witness drives a runtime it does not embed,
//! through JSON lines over a child process's stdin and stdout. `json` encodes types and values,
//! `process` runs an adapter (spawn, greeting, requests, replies, timeouts), `client` is
//! witness's side as a runtime, `server` an adapter's side served from any embedded runtime
//! (`witness adapter`).

pub mod client;
pub mod json;
pub mod process;
pub mod server;

/// The protocol version this witness speaks (2: each request has an `id` that its final reply
/// names, so a reply can never be taken for another request's).
pub const PROTOCOL_VERSION: u64 = 2;
