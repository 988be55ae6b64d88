//! One of the campaign's first worlds composed (caller and callee guests, compiled once a
//! process) and one fused case from the bytes → the reference and `wasmtime-fused`; an
//! unexplained difference or a harness failure is a crash. The body is `witness_fuzz::composition` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::composition(data);
});
