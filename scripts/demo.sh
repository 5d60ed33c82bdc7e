#!/usr/bin/env bash
# Builds hopscope and runs the demo: a lab of namespaces with live traffic,
# traced hop by hop; the lab is removed on exit. Extra arguments go to
# `hopscope demo` (e.g. --duration 30, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
exec ./target/release/hopscope demo "$@"
