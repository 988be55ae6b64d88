//! witness: a conformance suite and differential fuzzer for the WebAssembly Component Model's
//! Canonical ABI. See ARCHITECTURE.md for where each concern lives.

pub mod adapter;
pub mod cli;
pub mod contain;
pub mod diff;
pub mod encode;
pub mod engine;
pub mod finding;
pub mod fuzz;
pub mod oracle;
pub mod plan;
pub mod reach;
pub mod reference;
pub mod runtime;
pub mod smith;
pub mod suite;
pub mod world;
