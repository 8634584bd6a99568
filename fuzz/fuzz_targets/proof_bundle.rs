//! See `domain::fuzzing::proof_bundle` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| domain::fuzzing::proof_bundle(data));
