//! hopscope: where each packet went inside one Linux machine, hop by hop.
//!
//! Layers, from the kernel up: [`bpf`] (programs, ABI, reader thread),
//! [`event`] (domain types and decoding), [`correlate`] (packets, visits,
//! flows, roles, copies), [`output`] (text and JSON lines), [`trace`] (the
//! `hopscope trace` driver), [`cgroup`] (following one command's tree) and
//! [`lab`] (the demo topology).

pub mod app;
pub mod bpf;
pub mod cgroup;
pub mod cli;
pub mod clock;
pub mod correlate;
pub mod event;
pub mod facts;
pub mod filter;
pub mod fuzzing;
pub mod input;
pub mod lab;
pub mod logging;
pub mod model;
pub mod outfile;
pub mod output;
pub mod pipeline;
pub mod safe_text;
pub mod select;
pub mod symbols;
pub mod topology;
pub mod trace;
pub mod tui;
pub mod ui;

/// Bad input from the user (a flag, a name, a file): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
