//! One of `witness smith`'s first worlds and a wasm-smith core module shaped to it from the
//! bytes → componentized and run on Wasmtime and on wasmi with the reference host, compared by
//! outcome; an unexplained mismatch or a failure past wasm-smith is a crash. The body is
//! `witness_fuzz::smith_guest` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::smith_guest(data);
});
