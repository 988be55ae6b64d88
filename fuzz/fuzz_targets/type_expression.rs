//! Arbitrary text → a validated WIT type expression or an error, never a panic; a type has a
//! layout and a flattening. The body is `witness_fuzz::type_expression`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| witness_fuzz::type_expression(data));
