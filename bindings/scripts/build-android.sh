#!/usr/bin/env bash
# Why this script: the Android artefacts of jobseal (the library for the four Android ABIs and the
# Kotlin bindings generated for Android) come from one place, whether the Gradle module
# bindings/android runs it before compiling (task jobsealNative<BuildType>) or a person does:
#
#   <out>/jniLibs/arm64-v8a/libjobseal_ffi.so      (also armeabi-v7a, x86_64, x86)
#   <out>/kotlin/io/jobseal/jobseal_ffi.kt
#
#   ANDROID_NDK_HOME=/path/to/ndk bash bindings/scripts/build-android.sh [debug|release] [OUT_DIR]
#
# OUT_DIR defaults to bindings/android/build/generated/jobseal/<profile>, where the Gradle module
# reads it. release builds jobseal-ffi without features (the production surface); debug adds
# `--features test-support` (software keystore, plaintext ingest, dispatch keygen and sealing) for
# the instrumented tests. 16 KB page alignment comes from bindings/build.rs (check it with
# bindings/android/check-page-size.sh).
#
# Needs the Android NDK (r26 or later) and the Rust targets:
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
# Uses cargo-ndk when it is installed; otherwise points cargo at the NDK's clang directly.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

profile="${1:-release}"
case "$profile" in
    release) cargo_flags=(--release) ;;
    debug) cargo_flags=(--features test-support) ;;
    *) echo "usage: $0 [debug|release] [OUT_DIR]" >&2; exit 2 ;;
esac
ndk="${ANDROID_NDK_HOME:-${ANDROID_NDK_ROOT:-}}"
if [[ -z "$ndk" || ! -d "$ndk" ]]; then
    echo "set ANDROID_NDK_HOME to the Android NDK" >&2
    exit 1
fi
api="${ANDROID_API:-26}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="${2:-$root/bindings/android/build/generated/jobseal/$profile}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
rm -rf "$out/jniLibs" "$out/kotlin"
mkdir -p "$out/jniLibs" "$out/kotlin"

# rust target : Android ABI : NDK clang prefix
abis=(
    "aarch64-linux-android:arm64-v8a:aarch64-linux-android"
    "armv7-linux-androideabi:armeabi-v7a:armv7a-linux-androideabi"
    "x86_64-linux-android:x86_64:x86_64-linux-android"
    "i686-linux-android:x86:i686-linux-android"
)

if command -v cargo-ndk >/dev/null 2>&1; then
    cargo ndk --platform "$api" -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o "$out/jniLibs" \
        build "${cargo_flags[@]}" -p jobseal-ffi
else
    host_tag="$(uname -s | tr '[:upper:]' '[:lower:]')-x86_64"
    bin="$ndk/toolchains/llvm/prebuilt/$host_tag/bin"
    for entry in "${abis[@]}"; do
        IFS=: read -r target abi clang <<<"$entry"
        env_target="$(echo "$target" | tr '[:lower:]-' '[:upper:]_')"
        export "CARGO_TARGET_${env_target}_LINKER=$bin/${clang}${api}-clang"
        export "CC_${target//-/_}=$bin/${clang}${api}-clang"
        export "AR_${target//-/_}=$bin/llvm-ar"
        cargo build "${cargo_flags[@]}" -p jobseal-ffi --target "$target"
        mkdir -p "$out/jniLibs/$abi"
        cp "$target_dir/$target/$profile/libjobseal_ffi.so" "$out/jniLibs/$abi/"
    done
fi

# The Kotlin API is the same for every ABI: generate it from one of them, with the Android cleaner.
cargo run -q -p uniffi-bindgen -- generate "$out/jniLibs/arm64-v8a/libjobseal_ffi.so" \
    --language kotlin --out-dir "$out/kotlin" --no-format --config "$root/bindings/android/uniffi-android.toml"

ls -l "$out"/jniLibs/*/libjobseal_ffi.so
echo "Android sources ready in $out (the Gradle module bindings/android packs them into the AAR)"
