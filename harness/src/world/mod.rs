//! WIT worlds and values: loading WIT (text file, directory with deps/, or a wasm-encoded
//! package), turning wit-parser types into the reference's types, printing types as WIT,
//! arbitrary types and values, and values in WAVE.

pub mod arbitrary;
pub mod generate;
pub mod print;
pub mod typexpr;
pub mod wave;
pub mod wit;
