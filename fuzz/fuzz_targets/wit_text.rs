//! A WIT file → `witness diff --wit`'s loader: a world (which then builds and compiles on the
//! reference) or an error naming the file, never a panic. The body is `witness_fuzz::wit_text`
//! (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::wit_text(data);
});
