//! hopscope: where each packet went inside one Linux machine, hop by hop.
//!
//! Layers, from the kernel up: [`bpf`] (programs, ABI, reader thread),
//! [`event`] (domain types and decoding), [`correlate`] (packets, visits,
//! flows, roles, copies), [`output`] (text and JSON lines), [`trace`] (the
//! `hopscope trace` driver), [`cgroup`] (following one command's tree) and
//! [`lab`] (the demo topology).
//!
//! No `unsafe` outside [`bpf::abi`] (kernel bytes as structs) and the
//! generated skeleton ([`bpf::skel`]): both say so with `allow(unsafe_code)`.
#![deny(unsafe_code)]

pub mod app;
pub mod bpf;
pub mod cgroup;
pub mod cli;
pub mod correlate;
pub mod event;
pub mod filter;
pub mod fuzzing;
pub mod input;
pub mod lab;
pub mod logging;
pub mod model;
pub mod outfile;
pub mod output;
pub mod safe_text;
pub mod symbols;
pub mod topology;
pub mod trace;
pub mod tui;
pub mod ui;

/// Bad input from the user (a flag, a name, a file): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
