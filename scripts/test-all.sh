#!/usr/bin/env bash
# Runs every test suite of the repository. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: unit, integration and end-to-end suites (debug build)"
cargo test --workspace --locked
bash bindings/kotlin/run-tests.sh
bash android-demo/run-jvm-tests.sh
