//! One of the differential campaign's first worlds (`witness::fuzz::POOL_WORLDS`), compiled
//! once a process, and one arbitrary plan → the reference and every default runtime; a
//! difference the expectations files do not explain, or a harness failure, is a crash. The
//! body is `witness_fuzz::differential_cached` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::differential_cached(data);
});
