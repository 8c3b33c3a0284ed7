#!/usr/bin/env bash
# Proves what the release libraries (AAR, XCFramework) leave out, on a host build of jobseal-ffi
# made the way bindings/scripts/build-android.sh and bindings/swift/release.sh make theirs
# (`cargo build -p jobseal-ffi`, no Cargo features; the release script also checks its own
# generated Swift and header for the gated names, on macOS):
#   1. no test-only or dispatch-side entry point: the software keystore, plaintext ingest, dispatch
#      key generation and sheet sealing are absent from its exported symbols (and present in the
#      test-support build, so the check is known to look at the right names);
#   2. no HTTP client: ureq is not in its dependency tree for any Android or Apple target (apps
#      bring their own TLS stack through PlatformTransport / PlatformAsyncTransport).
#
#   bash scripts/check-release-surface.sh
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

gated=(open_with_software_keystore ingest_sheet_json dispatch_keygen seal_job_sheet)
count_gated() {  # count_gated LIB: how many of the gated entry points LIB exports (UniFFI's fn_ symbols)
    local n=0 name symbols
    # Into a variable first: a failing nm must fail the script, not read as "none exported".
    symbols="$(nm -D --defined-only "$1")"
    symbols="$(awk '{ print $NF }' <<<"$symbols" | grep '^uniffi_jobseal_ffi_fn_')" \
        || { echo "no UniFFI entry point in $1: not a jobseal-ffi library?" >&2; exit 1; }
    for name in "${gated[@]}"; do
        if grep -qx "uniffi_jobseal_ffi_fn_.*_${name}" <<<"$symbols"; then n=$((n + 1)); fi
    done
    echo "$n"
}

echo "== Release surface: jobseal-ffi with the test-support feature (the test suites' build)"
cargo build -q --locked -p jobseal-ffi --features test-support
cp "$target_dir/debug/libjobseal_ffi.so" "$target_dir/debug/libjobseal_ffi-test-support.so"
with="$(count_gated "$target_dir/debug/libjobseal_ffi-test-support.so")"
[[ "$with" == "${#gated[@]}" ]] || { echo "the test-support build exports $with of ${#gated[@]} gated entry points: the check looks for the wrong names" >&2; exit 1; }

echo "== Release surface: jobseal-ffi as released (no features)"
cargo build -q --locked -p jobseal-ffi
without="$(count_gated "$target_dir/debug/libjobseal_ffi.so")"
if [[ "$without" != 0 ]]; then
    echo "the production library exports $without test-only or dispatch-side entry points" >&2
    exit 1
fi
for t in aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android \
         aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
    # The tree is kept whole before grep looks: `grep -q` stopping early would kill cargo with
    # SIGPIPE, and under pipefail a found ureq would read as absent.
    tree="$(cargo tree -q --locked -p jobseal-ffi -e normal --target "$t" --prefix none)"
    if grep -q '^ureq ' <<<"$tree"; then
        echo "ureq is in the mobile library's dependency tree for $t" >&2
        exit 1
    fi
done
echo "== Release surface: ${#gated[@]} gated entry points exported only with test-support; no ureq for 7 mobile targets"
