//! Fuzz target: [`hopscope::fuzzing::filter`] on each input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hopscope::fuzzing::filter(data));
