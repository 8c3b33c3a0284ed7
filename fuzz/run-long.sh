#!/usr/bin/env bash
# Long libFuzzer runs of jobseal's fuzz targets, one target at a time (docs/security.md, "Fuzzing").
#
# Usage: fuzz/run-long.sh [seconds-per-target] [target...]
#   seconds-per-target  libFuzzer's -max_total_time for each target (default 600)
#   target...           targets to run (default: every fuzz/fuzz_targets/*.rs)
#
# Installs cargo-fuzz if it is missing (needs the nightly toolchain), builds the targets with
# libFuzzer, runs each one on a scratch corpus seeded from the committed one (the committed
# corpus is only read), merges what it found into a minimized scratch corpus, and prints per
# target: executions, executions per second, coverage (cov: edges, ft: features), corpus size
# and crashes. Nothing under fuzz/corpus changes; to keep the new inputs, copy
# $OUT/merged/<target>/* into fuzz/corpus/<target>/ and minimize it with
#   cargo +nightly fuzz cmin --fuzz-dir fuzz -s none --features libfuzzer <target> fuzz/corpus/<target>
#
# Environment: JOBSEAL_FUZZ_OUT (scratch folder, default fuzz/target/long-run),
# JOBSEAL_FUZZ_SANITIZER (default none: the targets are safe Rust over a bundled SQLite, and
# without ASan a run does about twice the executions; use "address" for a sanitizer run),
# JOBSEAL_FUZZ_NICE (default 10), JOBSEAL_FUZZ_JOBS (cargo build jobs, default 2).
set -euo pipefail

cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
out="${JOBSEAL_FUZZ_OUT:-fuzz/target/long-run}"
san="${JOBSEAL_FUZZ_SANITIZER:-none}"
nice_level="${JOBSEAL_FUZZ_NICE:-10}"
jobs="${JOBSEAL_FUZZ_JOBS:-2}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  nice -n "$nice_level" cargo install cargo-fuzz --locked
fi

# The workspace's release profile (fat LTO, one codegen unit, size-optimized, stripped) is for
# shipping; a fuzz build wants fast builds, speed and symbols for stack traces.
export CARGO_PROFILE_RELEASE_LTO=false
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_OPT_LEVEL=3
export CARGO_PROFILE_RELEASE_STRIP=false

fuzz=(cargo +nightly fuzz)
opts=(--fuzz-dir fuzz -s "$san" --features libfuzzer)
CARGO_BUILD_JOBS="$jobs" nice -n "$nice_level" "${fuzz[@]}" build "${opts[@]}"

summary=()
for t in "${targets[@]}"; do
  scratch="$out/corpus/$t"
  merged="$out/merged/$t"
  artifacts="$out/artifacts/$t"
  log="$out/$t.log"
  mkdir -p "$scratch" "$artifacts"
  rm -rf "$merged"
  mkdir -p "$merged"
  echo "== $t: ${secs}s" >&2
  before=$(find "fuzz/corpus/$t" -type f | wc -l)
  start=$(date +%s)
  # New inputs go to the first corpus folder (the scratch one); the committed one is read only.
  set +e
  nice -n "$nice_level" "${fuzz[@]}" run "${opts[@]}" "$t" "$scratch" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -timeout=30 -artifact_prefix="$artifacts/" >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  # A minimized union of the committed corpus and what this run found.
  nice -n "$nice_level" "${fuzz[@]}" run "${opts[@]}" "$t" "$merged" "fuzz/corpus/$t" "$scratch" -- \
    -merge=1 -timeout=30 >"$out/$t.merge.log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  crashes=$(find "$artifacts" -type f | wc -l)
  merged_n=$(find "$merged" -type f | wc -l)
  line="$t: ${elapsed}s, exit $rc, ${execs:-?} executions, ${rate:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?} in memory (committed $before, merged $merged_n), crashes $crashes"
  echo "$line" >&2
  summary+=("$line")
done

echo
echo "== summary (logs and artifacts under $out)"
printf '%s\n' "${summary[@]}"
