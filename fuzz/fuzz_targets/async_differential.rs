//! 🔀 One of the async campaign's first worlds (`witness::fuzz::ASYNC_POOL_WORLDS`), compiled
//! once a process, and one arbitrary plan → the reference and every default runtime that runs
//! async worlds; a difference the expectations files do not explain, or a harness failure, is
//! a crash. The body is `witness_fuzz::async_differential` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::async_differential(data);
});
