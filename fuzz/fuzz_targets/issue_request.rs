//! See `issuer_api::fuzzing::request_parsers` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| issuer_api::fuzzing::request_parsers(data));
