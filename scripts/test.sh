#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests and the privileged
# end-to-end tests on real namespaces (root required; they never skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
# A deadline for the whole run: a test that hangs fails the job, not stalls it.
timeout --kill-after=30 1500 cargo test
echo "== fuzz: each target for 20 s from its kept corpus (scripts/fuzz.sh)"
FUZZ_PROFILE=ci bash scripts/fuzz.sh ci 20
