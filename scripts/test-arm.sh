#!/usr/bin/env bash
# The phone's CPUs in the test command: the core's and the bindings' test suites cross-built for
# 64-bit ARM (aarch64, every current phone) and 32-bit ARM (armv7, older Android devices) and run
# under qemu-user; and jobseal-ffi type-checked for the three Android ABIs that have a Rust target
# here (aarch64, armv7, x86_64).
#
# Installs what it needs: Debian's cross compilers and qemu-user (apt-get), the rustup targets.
# What it cannot do here: link for Android (that needs the NDK, which this machine does not have).
# The Android check therefore compiles everything, bundled SQLite's C included (with the Debian
# cross compiler of the same CPU standing in for the NDK's clang), without linking.
#
#   bash scripts/test-arm.sh            # both ARM suites and the Android check
#   bash scripts/test-arm.sh aarch64    # one target's suites only
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v arm-linux-gnueabihf-gcc >/dev/null || need+=(gcc-arm-linux-gnueabihf libc6-dev-armhf-cross)
command -v qemu-aarch64 >/dev/null && command -v qemu-arm >/dev/null || need+=(qemu-user)
if [ "${#need[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "== ARM: installing ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
rustup target add aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf \
    aarch64-linux-android armv7-linux-androideabi x86_64-linux-android >/dev/null

# Linux on ARM: Debian's cross toolchains link; qemu-user runs the test binaries.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="qemu-arm -L /usr/arm-linux-gnueabihf"
export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar

only="${1:-}"
for target in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    case "$target" in "$only"*) ;; *) [ -z "$only" ] || continue ;; esac
    echo "== ARM: the core's and the bindings' tests on $target (qemu-user)"
    # test-support: the bindings' own tests open vaults on software keys.
    cargo test --locked --target "$target" -p jobseal -p jobseal-ffi --features jobseal-ffi/test-support
done

if [ -z "$only" ]; then
    # Android: the NDK's clang is absent; the Debian compiler of the same CPU builds SQLite's C
    # for the type-check (nothing is linked, so its libc never matters).
    export CC_aarch64_linux_android=aarch64-linux-gnu-gcc AR_aarch64_linux_android=aarch64-linux-gnu-ar
    export CC_armv7_linux_androideabi=arm-linux-gnueabihf-gcc AR_armv7_linux_androideabi=arm-linux-gnueabihf-ar
    # Android's armv7 ABI passes floats soft (softfp); Debian's armhf headers only exist for the
    # hard-float ABI. The object is never linked, so compile it hard-float.
    export CFLAGS_armv7_linux_androideabi="-mfloat-abi=hard"
    export CC_x86_64_linux_android=gcc AR_x86_64_linux_android=ar
    echo "== Android: jobseal-ffi type-checks for aarch64, armv7 and x86_64 Android (not linked: no NDK here)"
    # One cargo run for the three targets, so their crates compile side by side on every core.
    cargo check --locked -p jobseal-ffi --lib \
        --target aarch64-linux-android --target armv7-linux-androideabi --target x86_64-linux-android
fi
