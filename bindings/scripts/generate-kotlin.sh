#!/usr/bin/env bash
# Builds the jobseal-ffi library for the host and generates the Kotlin bindings from it
# (UniFFI library mode: the interface is read from the built library, no UDL).
#
#   bash bindings/scripts/generate-kotlin.sh [--release] [OUT_DIR]
#
# OUT_DIR defaults to bindings/kotlin/generated (gitignored). The generated source is a build
# product: never edit or commit it. Its users are the JVM test suites, so the library is built
# with the `test-support` feature unless JOBSEAL_FFI_FEATURES says otherwise (set it empty for
# the production surface).
set -euo pipefail
cd "$(dirname "$0")/../.."
export JOBSEAL_FFI_FEATURES="${JOBSEAL_FFI_FEATURES-test-support}"

source bindings/scripts/host-library.sh
out="${args[0]:-bindings/kotlin/generated}"
rm -rf "$out"
# The generator itself always runs as a debug build: it only reads the library's metadata.
cargo run -q -p uniffi-bindgen -- generate "$lib" --language kotlin --out-dir "$out" --no-format
echo "generated Kotlin bindings in $out from $lib"
