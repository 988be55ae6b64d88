//! Arbitrary world + one arbitrary plan (a call or resource steps) → the reference and every
//! default runtime (`witness::engine::Selection::defaults`, compositions aside); a difference the expectations files do not
//! explain, or a harness failure, is a crash. The body is `witness_fuzz::differential` (also
//! run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::differential(data);
});
