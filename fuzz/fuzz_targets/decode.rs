//! Fuzz target: [`hopscope::fuzzing::decode`] on each input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hopscope::fuzzing::decode(data));
