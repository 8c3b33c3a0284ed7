#!/usr/bin/env bash
# Builds build/JobsealFFI.xcframework for the Swift package: the Rust library as static libraries
# for iOS devices (arm64), the iOS simulator (arm64 + x86_64) and macOS (arm64 + x86_64, for
# `swift test`), with the generated C header and module map; and generates
# Sources/Jobseal/Jobseal.swift from the same build, so that the Swift API always matches the
# library it is packed with (with or without the test-support entry points).
#
#   bash bindings/swift/build-xcframework.sh [debug|release] [--test-support]   (default: release)
#
#   --test-support   builds jobseal-ffi with the Cargo feature `test-support`, which adds
#                    JobVault.openWithSoftwareKeystore, ingestSheetJson, dispatchKeygen and
#                    sealJobSheet: for the test lane only (`swift test`, the demo's UI tests).
#                    Production libraries never have it; release.sh refuses a build that does.
#
# Writes build/BUILD-INFO (profile and features) so that release.sh and humans can tell which
# flavour a build directory holds.
#
# Needs macOS with Xcode (xcodebuild, lipo) and the Rust targets:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios \
#                     aarch64-apple-darwin x86_64-apple-darwin
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

usage() { echo "usage: $0 [debug|release] [--test-support]" >&2; exit 2; }

profile=release
test_support=0
profile_set=0
for arg in ${@+"$@"}; do   # ${@+...}: no arguments under `set -u` in bash 3.2
    case "$arg" in
        debug|release)
            [[ $profile_set == 0 ]] || usage
            profile="$arg"; profile_set=1 ;;
        --test-support) test_support=1 ;;
        -h|--help) usage ;;
        *) usage ;;
    esac
done

cargo_flags=()
[[ $profile == release ]] && cargo_flags+=(--release)
features="none"
if [[ $test_support == 1 ]]; then
    cargo_flags+=(--features test-support)
    features="test-support"
fi

if [[ "$(uname -s)" != Darwin ]]; then
    echo "build-xcframework.sh needs macOS with Xcode" >&2
    exit 1
fi
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
for t in "${targets[@]}"; do
    # ${a[@]+"${a[@]}"}: an empty array under `set -u` in macOS's bash 3.2.
    cargo build ${cargo_flags[@]+"${cargo_flags[@]}"} -p jobseal-ffi --target "$t"
done

# Swift source and headers, generated (UniFFI library mode) from the macOS dylib of this very
# build, so that the API matches the features built. Same layout as
# bindings/scripts/generate-swift.sh (which builds the host library without features).
out="$here/build"
case "$(uname -m)" in
    arm64) host_target=aarch64-apple-darwin ;;
    *) host_target=x86_64-apple-darwin ;;
esac
host_lib="$target_dir/$host_target/$profile/libjobseal_ffi.dylib"
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
cargo run -q -p uniffi-bindgen -- generate "$host_lib" --language swift --out-dir "$gen" --no-format
rm -rf "$out/headers"
mkdir -p "$here/Sources/Jobseal" "$out/headers/JobsealFFI"
cp "$gen/Jobseal.swift" "$here/Sources/Jobseal/Jobseal.swift"
cp "$gen/JobsealFFI.h" "$out/headers/JobsealFFI/JobsealFFI.h"
cp "$gen/JobsealFFI.modulemap" "$out/headers/JobsealFFI/module.modulemap"

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

{
    echo "profile=$profile"
    echo "features=$features"
    echo "commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
} > "$out/BUILD-INFO"
echo "built $out/JobsealFFI.xcframework ($profile, features: $features)"
echo "run the tests with: cd bindings/swift && swift test   (the tests need --test-support)"
