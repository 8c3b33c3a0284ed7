#!/usr/bin/env bash
# Runs what of the Android demo can run without an Android SDK, against the real jobseal library:
#   1. builds the host library and the reference dispatch server (debug),
#   2. generates the Kotlin bindings from that library (bindings/scripts/generate-kotlin.sh) into
#      android-demo/generated (never committed),
#   3. jvm-tests: the presenters (core-ui/src/main/kotlin, shared with the app) with JUnit 5,
#      including the whole flow against `jobseal-dispatch serve` on loopback,
#   4. screen-tests: the app's activities (app/src/main/kotlin) under Robolectric, compiled against
#      Robolectric's Android 15 framework jar (org.robolectric:android-all, ~186 MB, from Maven
#      Central on the first run; offline afterwards). JOBSEAL_SKIP_SCREEN_TESTS=1 skips this step.
# Needs cargo, Java 17+ and Maven. Extra arguments go to both Maven runs (e.g. -Dtest=JobScreenTest).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Darwin) lib_name=libjobseal_ffi.dylib ;;
    *) lib_name=libjobseal_ffi.so ;;
esac

echo "== Android demo: build the library and the dispatch server (debug)"
cargo build -p jobseal-dispatch
bash "$root/bindings/scripts/generate-kotlin.sh" "$here/generated"

run_module() {
    cd "$here/$1"
    # clean: no class compiled from an earlier generation or a deleted test survives.
    mvn -B -q -ntp -Dstyle.color=never clean test \
        -Dsurefire.failIfNoSpecifiedTests=false \
        -Djobseal.target.dir="$target_dir/debug" \
        -Djobseal.lib="$target_dir/debug/$lib_name" \
        -Djobseal.dispatch.bin="$target_dir/debug/jobseal-dispatch" \
        "${@:2}" 2>&1 | sed 's/\x1b\[0m//g'   # Maven prints stray colour resets even in batch mode
    # Maven is quiet on success; say what ran.
    cat target/surefire-reports/TEST-*.xml 2>/dev/null | tr ' ' '\n' \
        | awk -F'"' -v m="$1" '/^tests=/ { n += $2 } END { print "== Android demo " m ": " n + 0 " tests passed" }'
}

echo "== Android demo: presenters on the JVM (jvm-tests)"
run_module jvm-tests "$@"
if [[ "${JOBSEAL_SKIP_SCREEN_TESTS:-}" == 1 ]]; then
    echo "== Android demo: screen tests skipped (JOBSEAL_SKIP_SCREEN_TESTS=1)"
else
    echo "== Android demo: screens under Robolectric (screen-tests)"
    run_module screen-tests "$@"
fi
