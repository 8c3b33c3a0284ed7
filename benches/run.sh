#!/usr/bin/env bash
# Every jobseal benchmark in one run, on one machine, on the same workload:
#   1. builds both benchmark crates in release mode (jobseal + plain SQLite; SQLCipher + vendored
#      OpenSSL, a separate build graph so the product never links OpenSSL),
#   2. runs them with criterion (results in benches/target/criterion),
#   3. builds the release cdylib (jobseal-ffi) in the main workspace and measures its stripped size,
#   4. runs the Kotlin reveal measurement on the JVM against that release library,
#   5. prints the table of medians, ratios and targets (benches/results/summary.json).
#
#   bash benches/run.sh                     # everything
#   JOBSEAL_BENCH_SKIP_KOTLIN=1 bash benches/run.sh
#   bash benches/run.sh reveal              # a criterion filter (regex) for steps 2 and 4 only
#
# Needs cargo, a C compiler, perl and make (vendored OpenSSL builds from source through the
# openssl-src crate; the first build takes several minutes), python3, and for step 4 Java 17 and
# Maven. If the vendored OpenSSL build fails on a machine, switch sqlcipher-bench/Cargo.toml to
# the `bundled-sqlcipher` feature and install the system OpenSSL headers
# (`apt-get install -y libssl-dev` on Debian/Ubuntu).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
filter="${1:-}"
mkdir -p "$here/results" "$here/target/scratch"
cd "$here"

echo "== machine"
python3 - "$here/results/machine.json" <<'PY'
import json, os, platform, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
m = {
    "cpu": sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip(),
    "cores": os.cpu_count(),
    "memory": sh("free -h | awk '/Mem:/ {print $2}'"),
    "kernel": platform.release(),
    "filesystem": sh(f"df -T {os.path.dirname(sys.argv[1])} | awk 'NR==2 {{print $2\" on \"$1}}'"),
    "rustc": sh("rustc --version"),
    "java": sh("java -version 2>&1 | head -1"),
    "load_before": sh("cat /proc/loadavg"),
}
json.dump(m, open(sys.argv[1], "w"), indent=2)
for k, v in m.items(): print(f"  {k}: {v}")
PY

echo "== build (release)"
cargo bench -p jobseal-bench --bench jobseal --no-run
cargo bench -p sqlcipher-bench --bench sqlcipher --no-run

echo "== jobseal and plain SQLite"
cargo bench -p jobseal-bench --bench jobseal -- ${filter:+"$filter"}
echo "== SQLCipher"
cargo bench -p sqlcipher-bench --bench sqlcipher -- ${filter:+"$filter"}

echo "== release cdylib"
(cd "$root" && cargo build --release -p jobseal-ffi)
lib="$root/target/release/libjobseal_ffi.so"
# The release profile already strips; strip a copy again to be sure the number is the stripped size.
strip -o "$here/target/libjobseal_ffi.stripped.so" "$lib"
size=$(stat -c %s "$here/target/libjobseal_ffi.stripped.so")
echo "  $lib: $(stat -c %s "$lib") bytes, $size bytes stripped"
printf '{"cdylib_stripped_bytes": %s}\n' "$size" > "$here/results/extra.json"

if [[ -z "${JOBSEAL_BENCH_SKIP_KOTLIN:-}" && ( -z "$filter" || "reveal/kotlin_jvm" =~ $filter ) ]]; then
    echo "== Kotlin bindings on the JVM (release library)"
    # Generated from the debug build: the release library is stripped of the UniFFI metadata that
    # library mode reads. Same source, same interface and checksums; the JVM loads the release one.
    bash "$root/bindings/scripts/generate-kotlin.sh" "$root/bindings/kotlin/generated"
    (cd "$root/bindings/kotlin" && JOBSEAL_BENCH_OUT="$here/results/kotlin.json" JOBSEAL_BENCH_SCRATCH="$here/target/scratch" \
        mvn -B -q -ntp -Dstyle.color=never clean test \
        -Djobseal.excludedGroups=none -Dgroups=benchmark -Dtest=RevealBenchmark \
        -Djobseal.target.dir="$root/target/release" -Djobseal.lib="$lib" 2>&1 | sed 's/\x1b\[0m//g')
fi

echo "== fsyncs per operation (benches/results/fsyncs.json)"
if command -v strace >/dev/null; then
    bash "$here/fsyncs.sh"
else
    echo "  skipped: strace is not installed (apt-get install -y strace)"
fi

echo "== summary (benches/results/summary.json)"
python3 "$here/summarize.py"
