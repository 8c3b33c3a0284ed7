#!/usr/bin/env bash
# Runs every test suite of the repository. This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Rust: clippy with -D warnings (library and binaries: every workspace lint; all targets: tests may unwrap)"
cargo clippy --workspace --lib --bins --locked -- -D warnings
cargo clippy --workspace --all-targets --locked -- -D warnings \
    -A clippy::unwrap_used -A clippy::expect_used -A clippy::cast_possible_truncation

echo "== Rust: unit, integration and end-to-end suites (debug build)"
cargo test --workspace --locked
bash bindings/kotlin/run-tests.sh
bash android-demo/run-jvm-tests.sh
echo "== Android library: its Kotlin against the Android framework and WorkManager; logic and the forUnitTests jar on the JVM"
bash bindings/android/run-jvm-tests.sh

echo "== Dispatch: the dispatch suite again on PostgreSQL (a throwaway cluster on loopback), with the tests that need it:"
echo "   several instances on one database, PostgreSQL going away mid-run"
bash scripts/with-postgres.sh cargo test -p jobseal-dispatch --test dispatch --locked -- --include-ignored

echo "== Dispatch: schemathesis against the running server, from docs/openapi.json (no 5xx, only documented statuses and shapes)"
bash dispatch/contract/run-schemathesis.sh
echo "== Dispatch: the privacy officer's console in headless Chromium after a demo day"
bash dispatch/console-test/run.sh

echo "== Mobile libraries: what the release build leaves out (test-only entry points, ureq)"
bash scripts/check-release-surface.sh
echo "== Mobile libraries: the core and the bindings on ARM under qemu; Android type-check"
bash scripts/test-arm.sh
echo "== Android library: the 16 KB page-size check fails at 4 KB and passes at 16 KB (aarch64 build shared with test-arm.sh)"
bash bindings/android/test-page-size.sh
echo "== Swift release: the plain-shell parts (nothing Swift compiles here)"
bash bindings/swift/test-release.sh
echo "== Hosted CI lanes: workflows linted (actionlint + shellcheck)"
bash scripts/lint-workflows.sh
