//! An arbitrary type and text → a WAVE value of the type or an error, never a panic; a value
//! prints back and parses to an equal value. The body is `witness_fuzz::wave_value`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::wave_value(data);
});
