//! Fuzz target: [`hopscope::fuzzing::recording`] on each input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hopscope::fuzzing::recording(data));
