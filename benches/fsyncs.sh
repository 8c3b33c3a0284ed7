#!/usr/bin/env bash
# Counts fsync/fdatasync calls per vault operation: builds examples/fsyncs.rs (debug is enough:
# the count does not depend on the optimiser), runs it under strace, and prints the mean, min and
# max per operation over its rounds. Writes benches/results/fsyncs.json.
#
#   bash benches/fsyncs.sh
#
# Needs strace (`apt-get install -y strace` on Debian/Ubuntu).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
command -v strace >/dev/null || { echo "fsyncs.sh needs strace (apt-get install -y strace)" >&2; exit 2; }
mkdir -p results target/scratch
cargo build -q -p jobseal-bench --example fsyncs
trace="$(mktemp)"
trap 'rm -f "$trace"' EXIT
JOBSEAL_BENCH_SCRATCH="${JOBSEAL_BENCH_SCRATCH:-$here/target/scratch}" \
    strace -f -qq -s 256 -e trace=fsync,fdatasync,write -o "$trace" target/debug/examples/fsyncs 2>/dev/null
python3 - "$trace" "$here/results/fsyncs.json" <<'PY'
import json, re, sys
counts, current, n = {}, None, 0
for line in open(sys.argv[1]):
    m = re.search(r'@@fsyncs (begin|end) (\w+)', line)
    if m:
        if m.group(1) == "begin":
            current, n = m.group(2), 0
        else:
            counts.setdefault(current, []).append(n)
            current = None
    elif current and re.search(r'\b(fsync|fdatasync)\(', line):
        n += 1
out = {op: {"mean": sum(v) / len(v), "min": min(v), "max": max(v), "rounds": len(v)} for op, v in counts.items()}
json.dump(out, open(sys.argv[2], "w"), indent=2)
print(f"{'operation':<28}{'fsyncs (mean)':>14}{'min':>6}{'max':>6}")
for op, r in out.items():
    print(f"{op:<28}{r['mean']:>14.2f}{r['min']:>6}{r['max']:>6}")
PY
