//! Encoding a WIT world as a plain core wasm module (the "simple component" of
//! BuildTargets.md): which core import/export names such a module uses, so a
//! core-only host and `wit-component` both know how to bind it.

pub mod component;
pub mod compose;
pub mod guest;
pub mod names;
pub mod protocol;
pub mod script;
pub mod signature;
