//! Arbitrary text as a suite file → the reference runs it alone: the file is refused with an
//! error, or each case becomes a row; never a panic. The body is `witness_fuzz::suite_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    witness_fuzz::suite_file(data);
});
