//! See `domain::fuzzing::api_key` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| domain::fuzzing::api_key(data));
