#!/usr/bin/env bash
# Why this script: an app's local unit tests run the AAR's Kotlin on a desktop JVM, where the AAR's
# Android libraries cannot load. This builds the jar that fills that gap (published as
# io.jobseal:jobseal-android-forUnitTests, like Mozilla application-services' forUnitTests jars):
# the host's libjobseal_ffi in JNA's resource layout, e.g. linux-x86-64/libjobseal_ffi.so, which
# JNA finds on the class path without any system property.
#
#   bash bindings/android/build-unit-test-jar.sh [--release] [OUT_JAR]
#
# Builds jobseal-ffi for the host WITHOUT features (the same API as the release AAR), debug unless
# --release. OUT_JAR defaults to bindings/android/build/outputs/forUnitTests/jobseal-android-forUnitTests.jar.
# One host per run: to cover Linux and macOS, run it on each and merge the jars' directories.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

profile=debug
cargo_flags=()
if [[ "${1:-}" == "--release" ]]; then
    profile=release
    cargo_flags=(--release)
    shift
fi
jar_out="${1:-$root/bindings/android/build/outputs/forUnitTests/jobseal-android-forUnitTests.jar}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# JNA's Platform.RESOURCE_PREFIX for this host, and the library's file name there.
case "$(uname -s):$(uname -m)" in
    Linux:x86_64) prefix=linux-x86-64 lib=libjobseal_ffi.so ;;
    Linux:aarch64 | Linux:arm64) prefix=linux-aarch64 lib=libjobseal_ffi.so ;;
    Darwin:arm64) prefix=darwin-aarch64 lib=libjobseal_ffi.dylib ;;
    Darwin:x86_64) prefix=darwin-x86-64 lib=libjobseal_ffi.dylib ;;
    *) echo "unsupported host $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac

# No --features: the jar must match the release AAR's API. Copy at once: other scripts build the
# same file with test-support.
cargo build -q --locked "${cargo_flags[@]}" -p jobseal-ffi --lib
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$prefix" "$(dirname "$jar_out")"
cp "$target_dir/$profile/$lib" "$stage/$prefix/$lib"
rm -f "$jar_out"
jar --create --file "$jar_out" -C "$stage" "$prefix"
echo "forUnitTests jar: $jar_out ($prefix/$lib, $profile, $(du -h "$jar_out" | cut -f1))"
