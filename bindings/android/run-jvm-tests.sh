#!/usr/bin/env bash
# Why this script: the Android library cannot be built here (no Android SDK), but its Kotlin can be
# compiled against the Android framework and WorkManager, its logic tested on the JVM, and its
# forUnitTests jar proven to work. Steps:
#   1. builds jobseal-dispatch and the host library, generates the Kotlin bindings
#      (bindings/scripts/generate-kotlin.sh) into bindings/android/build/jvm-generated;
#   2. fetches WorkManager 2.10.0's AAR from Google's Maven repository (once; it is not on Maven
#      Central) and unpacks its classes.jar;
#   3. jvm-tests: compiles what the AAR compiles (the Android flavour of the bindings, with its
#      object cleaner, and src/main/kotlin: keystore, clock, transport, SyncRunner, the worker)
#      against org.robolectric:android-all (Android 15), androidx.annotation and WorkManager; then
#      again with the JVM flavour of the bindings, and runs the JUnit 5 tests (wrap format, sync
#      policy, SyncRunner against the real library and jobseal-dispatch);
#   4. unit-test-jar-check: builds the forUnitTests jar (build-unit-test-jar.sh, host library without
#      features), generates the bindings from the library inside it, and runs a test that loads the
#      library from the jar through JNA's class-path lookup and opens a vault.
# Needs cargo, Java 17, Maven, and Google's Maven repository (WorkManager, androidx.annotation) for
# steps 2 and 3. Extra arguments go to the Maven test runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
work_version=2.10.0
google=https://dl.google.com/dl/android/maven2/
mvn_q=(mvn -B -q -ntp -Dstyle.color=never)

summary() {
    cat "$here/$1/target/surefire-reports/"TEST-*.xml 2>/dev/null | tr ' ' '\n' \
        | awk -F'"' -v m="$1" '/^tests=/ { n += $2 } END { print "== Android library " m ": " n + 0 " tests passed" }'
}

echo "== Android library: dispatch server and host library (debug), Kotlin bindings"
cargo build -q -p jobseal-dispatch
bash bindings/scripts/generate-kotlin.sh "$here/build/jvm-generated"

work_jar="$here/build/aar/work-runtime-$work_version.jar"
if [[ ! -f "$work_jar" ]]; then
    echo "== Android library: WorkManager $work_version from Google's Maven repository"
    mkdir -p "$here/build/aar"
    "${mvn_q[@]}" dependency:copy -Dartifact="androidx.work:work-runtime:$work_version:aar" \
        -DoutputDirectory="$here/build/aar" -DremoteRepositories="google::default::$google" >"$here/build/aar/fetch.log" 2>&1 \
        || { sed 's/\x1b\[0m//g' "$here/build/aar/fetch.log" >&2
             echo "cannot fetch androidx.work:work-runtime:$work_version from $google (needed to compile the worker)" >&2; exit 1; }
    mkdir -p "$here/build/aar/x"
    unzip -q -o -j "$here/build/aar/work-runtime-$work_version.aar" classes.jar -d "$here/build/aar/x"
    mv "$here/build/aar/x/classes.jar" "$work_jar"
fi

cd "$here/jvm-tests"
echo "== Android library: the AAR's Kotlin (Android flavour of the bindings + src/main/kotlin) against android-all + WorkManager"
rm -rf "$here/build/android-generated"
cargo run -q -p uniffi-bindgen -- generate "$target_dir/debug/libjobseal_ffi.so" --language kotlin \
    --out-dir "$here/build/android-generated" --no-format --config "$here/uniffi-android.toml"
"${mvn_q[@]}" clean compile -Djobseal.generated="$here/build/android-generated" -Djobseal.work.jar="$work_jar" 2>&1 | sed 's/\x1b\[0m//g'
echo "== Android library: compiled ($(find target/classes -name '*.class' | wc -l) classes)"

echo "== Android library: JVM flavour of the bindings + src/main/kotlin, JUnit 5 (jvm-tests)"
"${mvn_q[@]}" clean test -Dsurefire.failIfNoSpecifiedTests=false \
    -Djobseal.generated="$here/build/jvm-generated" \
    -Djobseal.lib="$target_dir/debug/libjobseal_ffi.so" \
    -Djobseal.dispatch.bin="$target_dir/debug/jobseal-dispatch" \
    -Djobseal.work.jar="$work_jar" "$@" 2>&1 | sed 's/\x1b\[0m//g'
summary jvm-tests

echo "== Android library: forUnitTests jar (unit-test-jar-check)"
cd "$root"
jar="$here/build/outputs/forUnitTests/jobseal-android-forUnitTests.jar"
bash "$here/build-unit-test-jar.sh" "$jar"
# The bindings of exactly the library inside the jar (no test-support feature).
lib_dir="$(mktemp -d)"
trap 'rm -rf "$lib_dir"' EXIT
(cd "$lib_dir" && unzip -q "$jar")
rm -rf "$here/build/unit-test-jar-generated"
cargo run -q -p uniffi-bindgen -- generate "$(find "$lib_dir" -name 'libjobseal_ffi.*' | head -1)" \
    --language kotlin --out-dir "$here/build/unit-test-jar-generated" --no-format
cd "$here/unit-test-jar-check"
"${mvn_q[@]}" clean test -Dsurefire.failIfNoSpecifiedTests=false \
    -Djobseal.generated="$here/build/unit-test-jar-generated" -Djobseal.unit.test.jar="$jar" "$@" 2>&1 | sed 's/\x1b\[0m//g'
summary unit-test-jar-check
