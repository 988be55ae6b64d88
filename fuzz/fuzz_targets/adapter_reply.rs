//! Arbitrary adapter output → witness's protocol client runs its conversation or refuses a
//! line with an error; never a panic, never a hang. The body is `witness_fuzz::adapter_reply`
//! (also run by the smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::adapter_reply(data);
});
