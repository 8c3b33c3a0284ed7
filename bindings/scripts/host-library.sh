# Sourced by the generate-*.sh scripts: builds jobseal-ffi for the host and sets `lib` to the
# built library. An optional leading --release argument selects the release profile and is
# removed from the caller's arguments ("${args[@]}" holds the rest). JOBSEAL_FFI_FEATURES names
# Cargo features of jobseal-ffi to build with (e.g. test-support for the test suites); empty
# builds the production surface.
profile=debug
cargo_flags=()
args=("$@")
if [[ "${args[0]:-}" == "--release" ]]; then
    profile=release
    cargo_flags=(--release)
    args=("${args[@]:1}")
fi
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
case "$(uname -s)" in
    Darwin) lib="$target_dir/$profile/libjobseal_ffi.dylib" ;;
    *) lib="$target_dir/$profile/libjobseal_ffi.so" ;;
esac
if [[ -n "${JOBSEAL_FFI_FEATURES:-}" ]]; then
    cargo_flags+=(--features "$JOBSEAL_FFI_FEATURES")
fi
cargo build "${cargo_flags[@]}" -p jobseal-ffi
