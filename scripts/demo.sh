#!/usr/bin/env bash
# Builds hopscope and runs the demo: a lab of namespaces with live traffic,
# explored hop by hop in the terminal UI (q quits); the lab is removed on
# exit. Extra arguments go to `hopscope demo` (e.g. --text --duration 5,
# --json, --record demo.hsrec). Without a terminal it prints text lines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
exec ./target/release/hopscope demo "$@"
