//! Arbitrary sequences of the async built-ins (streams, futures, waitable sets, cancellation,
//! task.return, backpressure, context) in one instance, under arbitrary scheduling choices →
//! each call returns or traps with a guest-visible class; never a panic, never a broken spec
//! assertion. The body is `witness_fuzz::async_reference` (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::async_reference(data);
});
