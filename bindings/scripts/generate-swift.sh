#!/usr/bin/env bash
# Builds the jobseal-ffi library for the host and generates the Swift bindings from it
# (UniFFI library mode), laid out for the Swift package in bindings/swift:
#
#   Sources/Jobseal/Jobseal.swift           the Swift API (module Jobseal)
#   build/headers/JobsealFFI/JobsealFFI.h       the C header of the FFI (module JobsealFFI)
#   build/headers/JobsealFFI/module.modulemap   its module map, for the XCFramework (in a folder
#                                               of its own so that it cannot clash with another
#                                               XCFramework's module map in the app's build)
#
#   bash bindings/scripts/generate-swift.sh [--release] [SWIFT_PACKAGE_DIR]
#
# The generated files are build products (gitignored). Generation runs on Linux too; compiling
# the Swift package needs a Swift toolchain (macOS with Xcode for iOS); build-xcframework.sh
# calls this script, then packs the headers with the static libraries.
set -euo pipefail
cd "$(dirname "$0")/../.."

source bindings/scripts/host-library.sh
pkg="${args[0]:-bindings/swift}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cargo run -q -p uniffi-bindgen -- generate "$lib" --language swift --out-dir "$tmp" --no-format

rm -rf "$pkg/build/headers"
mkdir -p "$pkg/Sources/Jobseal" "$pkg/build/headers/JobsealFFI"
cp "$tmp/Jobseal.swift" "$pkg/Sources/Jobseal/Jobseal.swift"
cp "$tmp/JobsealFFI.h" "$pkg/build/headers/JobsealFFI/JobsealFFI.h"
cp "$tmp/JobsealFFI.modulemap" "$pkg/build/headers/JobsealFFI/module.modulemap"
echo "generated Swift bindings in $pkg/Sources from $lib"
