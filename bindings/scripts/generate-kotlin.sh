#!/usr/bin/env bash
# Builds the jobseal-ffi library for the host and generates the Kotlin bindings from it
# (UniFFI library mode: the interface is read from the built library, no UDL).
#
#   bash bindings/scripts/generate-kotlin.sh [--release] [OUT_DIR]
#
# OUT_DIR defaults to bindings/kotlin/generated (gitignored). The generated source is a build
# product: never edit or commit it.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=debug
cargo_flags=()
if [[ "${1:-}" == "--release" ]]; then
    profile=release
    cargo_flags=(--release)
    shift
fi
out="${1:-bindings/kotlin/generated}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
case "$(uname -s)" in
    Darwin) lib="$target_dir/$profile/libjobseal_ffi.dylib" ;;
    *) lib="$target_dir/$profile/libjobseal_ffi.so" ;;
esac

cargo build "${cargo_flags[@]}" -p jobseal-ffi
rm -rf "$out"
# The generator itself always runs as a debug build: it only reads the library's metadata.
cargo run -q -p uniffi-bindgen -- generate "$lib" --language kotlin --out-dir "$out" --no-format
echo "generated Kotlin bindings in $out from $lib"
