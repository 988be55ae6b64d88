//! Arbitrary text as an expectations file → it loads or is refused with an error; never a
//! panic. The body is `witness_fuzz::expectations_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::expectations_file(data);
});
