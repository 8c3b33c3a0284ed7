#!/usr/bin/env bash
# Builds build/JobsealFFI.xcframework for the Swift package: the Rust library as static libraries
# for iOS devices (arm64), the iOS simulator (arm64 + x86_64) and macOS (arm64 + x86_64, for
# `swift test`), with the generated C header and module map; and generates
# Sources/Jobseal/Jobseal.swift.
#
#   bash bindings/swift/build-xcframework.sh [debug|release]     (default: release)
#
# Needs macOS with Xcode (xcodebuild, lipo) and the Rust targets:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios \
#                     aarch64-apple-darwin x86_64-apple-darwin
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

profile="${1:-release}"
case "$profile" in
    release) cargo_flags=(--release) ;;
    debug) cargo_flags=() ;;
    *) echo "usage: $0 [debug|release]" >&2; exit 2 ;;
esac
if [[ "$(uname -s)" != Darwin ]]; then
    echo "build-xcframework.sh needs macOS with Xcode" >&2
    exit 1
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0

for t in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin; do
    cargo build "${cargo_flags[@]}" -p jobseal-ffi --target "$t"
done

# Swift source and headers, generated from the host library of the same commit.
bash "$root/bindings/scripts/generate-swift.sh" "$here"

out="$here/build"
lib=libjobseal_ffi.a
rm -rf "$out/JobsealFFI.xcframework" "$out/ios" "$out/ios-sim" "$out/macos"
mkdir -p "$out/ios" "$out/ios-sim" "$out/macos"
cp "$target_dir/aarch64-apple-ios/$profile/$lib" "$out/ios/$lib"
lipo -create "$target_dir/aarch64-apple-ios-sim/$profile/$lib" "$target_dir/x86_64-apple-ios/$profile/$lib" \
    -output "$out/ios-sim/$lib"
lipo -create "$target_dir/aarch64-apple-darwin/$profile/$lib" "$target_dir/x86_64-apple-darwin/$profile/$lib" \
    -output "$out/macos/$lib"

xcodebuild -create-xcframework \
    -library "$out/ios/$lib" -headers "$out/headers" \
    -library "$out/ios-sim/$lib" -headers "$out/headers" \
    -library "$out/macos/$lib" -headers "$out/headers" \
    -output "$out/JobsealFFI.xcframework"
echo "built $out/JobsealFFI.xcframework; run the tests with: cd bindings/swift && swift test"
