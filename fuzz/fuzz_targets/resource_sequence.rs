//! One of the campaign's first worlds (compiled once a process) and resource steps from the
//! bytes → the reference and every default runtime; an unexplained difference or a harness
//! failure is a crash. The body is `witness_fuzz::resource_sequence` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::resource_sequence(data);
});
