#!/usr/bin/env bash
# The core's tests and the power-loss suite under AddressSanitizer (nightly toolchain).
#
# Every `unsafe` block of ours is a call into C: `clock_gettime` (core/src/clock.rs), SQLite's file
# control and xSync for the WAL (core/src/store/mod.rs), and the power-loss VFS that SQLite calls
# back into (testkit/src/powerloss/vfs.rs). Miri cannot execute foreign calls, so this is the
# check for them: Rust code built with -Zsanitizer=address (the standard library too, -Zbuild-std),
# and the bundled SQLite's C compiled with -fsanitize=address so that an out-of-bounds access on
# either side of the VFS is caught. Not part of the test command (it rebuilds everything twice
# over, instrumented); run it after touching unsafe code. docs/security.md has the last run.
#
#   bash scripts/asan.sh            # core (unit and integration) + the power-loss suite
#   bash scripts/asan.sh --quick    # the power-loss suite only
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
rustup component add rust-src --toolchain nightly >/dev/null

export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="-Zsanitizer=address"
# cc-rs reads the target-specific variable: the bundled SQLite is instrumented too (GCC's ASan
# calls are served by the runtime rustc links in).
export CFLAGS_x86_64_unknown_linux_gnu="-fsanitize=address -fno-omit-frame-pointer"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/asan}"
cargo_asan() { cargo +nightly test -Zbuild-std --target "$target" --locked "$@"; }

echo "== AddressSanitizer: power-loss suite (the VFS and the WAL sync)"
cargo_asan -p jobseal-e2e --test power_loss
if [ "${1:-}" != "--quick" ]; then
    echo "== AddressSanitizer: the core's unit and integration tests"
    cargo_asan -p jobseal --lib --tests
fi
echo "== AddressSanitizer: clean"
