//! See `domain::fuzzing::memo_decode` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| domain::fuzzing::memo_decode(data));
