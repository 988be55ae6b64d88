//! WIT worlds and values: loading WIT (text file, directory with deps/, or a wasm-encoded
//! package), turning wit-parser types into the reference's types, and values in WAVE.

pub mod typexpr;
pub mod wave;
pub mod wit;
