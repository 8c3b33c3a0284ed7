#!/usr/bin/env bash
# Runs the Kotlin bindings' JUnit suite on the JVM against the real library:
#   1. builds the host library (debug) and the reference dispatch server the sync tests start,
#   2. generates the Kotlin bindings from that library (UniFFI library mode),
#   3. compiles them with the tests and runs them with Maven (JNA loads target/debug/libjobseal_ffi).
# Needs cargo, Java 17+ and Maven; Maven downloads its plugins and the dependencies from Maven
# Central on the first run. Extra arguments go to Maven (e.g. -Dtest=LifecycleTest).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Darwin) lib_name=libjobseal_ffi.dylib ;;
    *) lib_name=libjobseal_ffi.so ;;
esac

echo "== Kotlin bindings: build the library and the dispatch server (debug)"
cargo build -p jobseal-dispatch
bash "$root/bindings/scripts/generate-kotlin.sh" "$here/generated"

echo "== Kotlin bindings: JUnit on the JVM"
cd "$here"
# clean: no class compiled from an earlier generation or a deleted test survives.
mvn -B -q -ntp -Dstyle.color=never clean test \
    -Djobseal.target.dir="$target_dir/debug" \
    -Djobseal.lib="$target_dir/debug/$lib_name" \
    -Djobseal.dispatch.bin="$target_dir/debug/jobseal-dispatch" \
    "$@" 2>&1 | sed 's/\x1b\[0m//g'   # Maven prints stray colour resets even in batch mode
# Maven is quiet on success; say what ran.
cat target/surefire-reports/TEST-*.xml | tr ' ' '\n' | awk -F'"' '/^tests=/ { n += $2 } END { print "== Kotlin bindings: " n " tests passed" }'

