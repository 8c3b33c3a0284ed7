#!/usr/bin/env bash
# The privacy officer's console in headless Chromium after a real demo day (issue 14 part 6).
#
# Runs `jobseal demo --keep`, serves the dispatch database it kept with `jobseal-dispatch serve`
# (debug build; operator token from the environment, never on the command line), and drives the
# console with Playwright on Debian's chromium (console-test.mjs): login, a job's reveals and
# verified receipt, the identity-key flag, both exports, no demo customer value anywhere, logout.
# The screenshot is saved to $CARGO_TARGET_DIR/console-test/job.png (path printed).
#
# Installs what it needs on a fresh Debian machine: chromium (apt, only if /usr/bin/chromium is
# missing) and playwright-core (npm ci, pinned by package-lock.json; its own browser download is
# not used). Idempotent; stops the server and removes the demo's data on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
out=$CARGO_TARGET_DIR/console-test
mkdir -p "$out"

if [ ! -x /usr/bin/chromium ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
command -v node >/dev/null || { echo "console-test: node and npm are required" >&2; exit 1; }
pinned=$(node -p "require('$here/package-lock.json').packages['node_modules/playwright-core'].version")
installed=$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch { '' }")
if [ "$pinned" != "$installed" ]; then
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

(cd "$root" && cargo build --locked -q -p jobseal-cli -p jobseal-dispatch --bins)

demo_dir=""
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    if [ -n "$demo_dir" ] && [ -d "$demo_dir" ]; then
        rm -rf "$demo_dir"
    fi
}
trap cleanup EXIT

"$CARGO_TARGET_DIR/debug/jobseal" demo --keep >"$out/demo.txt"
demo_dir=$(sed -n 's/^Kept the device and dispatch data in //p' "$out/demo.txt")
[ -f "$demo_dir/dispatch.db" ] || { echo "console-test: the demo kept no dispatch database" >&2; exit 1; }

JOBSEAL_OPERATOR_TOKEN=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export JOBSEAL_OPERATOR_TOKEN
"$CARGO_TARGET_DIR/debug/jobseal-dispatch" serve --db "$demo_dir/dispatch.db" --addr 127.0.0.1:0 \
    2>"$out/server.log" &
server=$!
base=""
for _ in $(seq 1 100); do
    base=$(sed -n 's/^jobseal-dispatch: listening on //p' "$out/server.log")
    [ -n "$base" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
    sleep 0.1
done
[ -n "$base" ] || { echo "console-test: the server did not start" >&2; exit 1; }

CONSOLE_BASE=$base CONSOLE_OUT=$out node "$here/console-test.mjs"
