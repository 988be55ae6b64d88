//! Arbitrary type + arbitrary flat values + arbitrary memory → the reference's `lift_flat`
//! returns a value or a guest-visible trap; never a panic, never a broken spec assertion.
//! The body is `witness_fuzz::reference_lift` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| witness_fuzz::reference_lift(data));
