#!/usr/bin/env bash
# Why this script: the 16 KB page-size check must be shown to fail on a 4 KB-aligned library and to
# pass on the library as the Android build links it, on a machine without the Android NDK. It
# cross-builds jobseal-ffi (debug) for aarch64-unknown-linux-gnu with Debian's cross compiler, the
# same target and target directory as scripts/test-arm.sh, twice through bindings/build.rs's
# JOBSEAL_MAX_PAGE_SIZE (the value the Android build gets by default is 16384):
#   4096  -> check-page-size.sh must FAIL (what NDK r27 and older produce without the flag),
#   16384 -> check-page-size.sh must PASS.
# Only jobseal-ffi itself is recompiled between the two (its build script output changes); the
# dependencies are built once and shared with test-arm.sh (same packages and features). Cost on 2
# cores: about 5 minutes cold (the aarch64 dependency build; none when test-arm.sh ran first),
# seconds to a minute warm. Installs gcc-aarch64-linux-gnu and the rustup target when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
target=aarch64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "== page size: installing gcc-aarch64-linux-gnu"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi
rustup target add "$target" >/dev/null 2>&1
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
passed=0 failed=0
for page in 4096 16384; do
    echo "== page size: jobseal-ffi for $target linked with max-page-size=$page"
    # --tests with both packages: the same dependency features as test-arm.sh's
    # `cargo test -p jobseal -p jobseal-ffi`, so that the two share every dependency build.
    JOBSEAL_MAX_PAGE_SIZE=$page cargo build -q --locked -p jobseal -p jobseal-ffi --features jobseal-ffi/test-support \
        --lib --tests --target "$target"
    mkdir -p "$out/$page"
    cp "$target_dir/$target/debug/libjobseal_ffi.so" "$out/$page/"
    if bash bindings/android/check-page-size.sh "$out/$page/libjobseal_ffi.so"; then verdict=pass; else verdict=fail; fi
    case "$page:$verdict" in
        4096:fail | 16384:pass) echo "   as expected ($verdict)"; passed=$((passed + 1)) ;;
        *) echo "   UNEXPECTED: the check said $verdict at $page"; failed=$((failed + 1)) ;;
    esac
done
echo "page-size: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
