//! hopscope: where each packet went inside one Linux machine, hop by hop.
//!
//! One pipeline ([`pipeline`]) serves every mode:
//!
//! ```text
//! source (kernel | recording) → decode → correlate → facts → sink (text | JSON | model) + recorder
//! ```
//!
//! `hopscope trace`, the explorer and `hopscope replay` differ only in their
//! source and sink.
//!
//! Layers, lowest first; a module imports only from its own layer or lower
//! ones (`tests/layers.rs` checks it), and sinks, like runners, never import
//! one another:
//!
//! 1. base: [`safe_text`], [`clock`], [`symbols`], [`cgroup`], [`cli`],
//!    [`input`], [`filter`], [`lab`], [`logging`], [`outfile`], and
//!    [`topology`]'s lookups (names, links);
//! 2. kernel ABI: [`bpf`] (programs, ABI, checks);
//! 3. [`event`]: domain types, decoding, recordings;
//! 4. kernel source: [`bpf::reader`] (the thread that owns the BPF object);
//! 5. [`correlate`]: packets, visits, flows, roles, copies (pure: it calls
//!    a sink);
//! 6. facts and views: [`facts`] (what sinks are told), [`select`] (what
//!    they show), [`topology::resolver`], [`topology::graph`],
//!    [`topology::dot`];
//! 7. sinks: [`output`] (text and JSON lines), [`model`] (the explorer's);
//! 8. [`pipeline`]: sources, the facts edge service (the only place names,
//!    links and symbols are looked up), the driver;
//! 9. explorer screens: [`app`], [`ui`];
//! 10. runners: [`trace`], [`tui`] (explorer and replay), [`fuzzing`].
//!
//! No `unsafe` outside [`bpf::abi`] (kernel bytes as structs) and the
//! generated skeleton ([`bpf::skel`]): both say so with `allow(unsafe_code)`.
#![deny(unsafe_code)]

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
