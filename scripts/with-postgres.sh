#!/usr/bin/env bash
# Runs one command with a throwaway PostgreSQL of its own, so the dispatch server's PostgreSQL
# suites run in the test command on a fresh Debian machine without any database set up before.
#
#   bash scripts/with-postgres.sh CMD [ARGS...]
#   bash scripts/with-postgres.sh cargo test -p jobseal-dispatch --test dispatch --locked
#
# Installs Debian's `postgresql` package when no initdb/pg_ctl is in /usr/lib/postgresql/*/bin,
# then creates a new cluster in a temporary directory (never the package's own cluster or
# service), starts it listening only on 127.0.0.1 on a free port with max_connections=200 (fsync
# stays on: the suites should see real commit costs), creates the role `jobseal` (LOGIN CREATEDB:
# each test creates and drops its own database), runs CMD, and always stops the cluster and
# deletes the directory afterwards (normal exit, failure, Ctrl-C, TERM, HUP). The exit status is
# CMD's (128+N when a signal ended it or the script). Its own two `== PostgreSQL:` lines (started:
# version, port; stopped) go to stderr, so CMD's stdout stays CMD's. CMD keeps this script's stdin.
#
# Authentication is `trust`: anyone on this machine can connect as any role, over 127.0.0.1 or
# through the socket (in the private temporary directory). That is acceptable for a throwaway
# cluster that lives for one test run and holds only fake data; never use it for anything else.
#
# The cluster belongs to the OS user `postgres` when this runs as root (initdb refuses root), to
# the current user otherwise. CMD itself runs as the current user, with these variables:
#
#   JOBSEAL_TEST_POSTGRES            postgres://jobseal@127.0.0.1:PORT/postgres
#   JOBSEAL_TEST_PG_RESTART_HELPER   a script to simulate an outage, run as the current user:
#                                      "$JOBSEAL_TEST_PG_RESTART_HELPER" stop   (fast shutdown: open
#                                        connections are cut, new ones are refused; `stop immediate`
#                                        is a crash without a shutdown checkpoint)
#                                      "$JOBSEAL_TEST_PG_RESTART_HELPER" start  (same data, same port;
#                                        returns once the server accepts connections)
#   JOBSEAL_TEST_PG_CTL              the cluster's pg_ctl
#   JOBSEAL_TEST_PGDATA              the cluster's data directory
#   JOBSEAL_TEST_PG_OS_USER          the OS user pg_ctl must run as. The helper does exactly this:
#                                      runuser -u "$JOBSEAL_TEST_PG_OS_USER" -- "$JOBSEAL_TEST_PG_CTL" \
#                                        -D "$JOBSEAL_TEST_PGDATA" -s -w -m fast stop
#                                      runuser -u "$JOBSEAL_TEST_PG_OS_USER" -- "$JOBSEAL_TEST_PG_CTL" \
#                                        -D "$JOBSEAL_TEST_PGDATA" -l "$JOBSEAL_TEST_PGDATA/../postgres.log" -s -w start
#                                    (without `runuser -u ... --` when it is the current user; the port
#                                    and every setting are in the data directory, so start needs no -o).
#
# The port: a random one below Linux's ephemeral range (20000-31999), and the server's own bind is
# the check, so two runs at once (or nested runs) that pick the same port cannot both succeed: the
# loser's server fails to bind and this script retries with another port.
# The directory is under /tmp rather than $TMPDIR: the `postgres` user must be able to reach it,
# and the socket's path must stay under the kernel's 107-byte limit.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 CMD [ARGS...]  (runs CMD with a throwaway PostgreSQL, see the header)" >&2
    exit 2
fi

pg_bin() {
    local dir
    # The newest installed major version that has the server tools.
    for dir in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if ! bin="$(pg_bin)"; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "== PostgreSQL: installing Debian's postgresql package" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bin="$(pg_bin)" || { echo "== PostgreSQL: installed, but no initdb/pg_ctl/psql in /usr/lib/postgresql/*/bin" >&2; exit 1; }
fi

if [ "$(id -u)" -eq 0 ]; then
    os_user=postgres
    id -u "$os_user" >/dev/null 2>&1 || { echo "== PostgreSQL: running as root, but there is no OS user $os_user to own the cluster" >&2; exit 1; }
else
    os_user="$(id -un)"
fi

tmp=""
port=""
child=""
# A trap can fire while a command's output is redirected (to /dev/null, to a log): cleanup
# reports on this copy of stderr, which no child inherits.
exec {stderr}>&2
t0=$(date +%s%N)

# Runs a command as the cluster's owner, from a directory it can enter.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$tmp" && runuser -u "$os_user" -- "$@" {stderr}>&-)
    else
        (cd "$tmp" && "$@" {stderr}>&-)
    fi
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM HUP
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if [ -n "$tmp" ] && [ -d "$tmp" ]; then
        if [ -f "$tmp/data/postmaster.pid" ]; then
            as_pg "$bin/pg_ctl" -D "$tmp/data" -s -w -m fast stop >/dev/null 2>&1 ||
                as_pg "$bin/pg_ctl" -D "$tmp/data" -s -w -m immediate stop >/dev/null 2>&1 ||
                echo "== PostgreSQL: could not stop the server of $tmp/data" >&"$stderr"
        fi
        rm -rf "$tmp"
        echo "== PostgreSQL: stopped${port:+ (port $port)}, $tmp removed" >&"$stderr"
    fi
    exit "$rc"
}

# A signal to this script goes on to CMD; the EXIT trap then stops the cluster.
# shellcheck disable=SC2317 # called by the INT/TERM/HUP traps
on_signal() {
    local sig=$1 code=$2
    if [ -n "$child" ]; then
        kill -s "$sig" "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
        child=""
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

tmp="$(mktemp -d /tmp/jobseal-pg.XXXXXX)"
[ "$(id -u)" -ne 0 ] || chown "$os_user:" "$tmp"
data="$tmp/data"
log="$tmp/postgres.log"

# --no-sync: only initdb's final flush of the new files is skipped (the cluster is thrown away
# if the machine crashes); the running server keeps fsync on.
if ! as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --locale=C -E UTF8 \
    --no-sync --no-instructions >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    exit 1
fi
printf "\ninclude 'jobseal.conf'\n" | as_pg tee -a "$data/postgresql.conf" >/dev/null

started=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 12000))
    printf "%s\n" "listen_addresses = '127.0.0.1'" "port = $port" \
        "unix_socket_directories = '$tmp'" "max_connections = 200" |
        as_pg tee "$data/jobseal.conf" >/dev/null
    rm -f "$log"
    if as_pg "$bin/pg_ctl" -D "$data" -l "$log" -s -w start >/dev/null 2>&1; then
        started=yes
        break
    fi
    log_text="$(cat "$log" 2>/dev/null || true)"
    case "$log_text" in
    *"could not bind"* | *"could not create any TCP/IP sockets"*) ;;
    *)
        echo "== PostgreSQL: the server did not start; its log:" >&2
        echo "$log_text" >&2
        exit 1
        ;;
    esac
done
if [ -z "$started" ]; then
    echo "== PostgreSQL: no free port after $attempt tries; the last log:" >&2
    cat "$log" >&2 || true
    port=""
    exit 1
fi

as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE jobseal LOGIN CREATEDB" >/dev/null

helper="$tmp/pg-restart"
# shellcheck disable=SC2016 # the $ in single quotes belong to the helper, expanded when it runs
{
    echo '#!/bin/sh'
    echo "# Written by scripts/with-postgres.sh: stops or starts the throwaway PostgreSQL of one run."
    echo "#   $helper stop [fast|immediate]   $helper start"
    echo 'set -eu'
    printf 'cd %q\n' "$tmp"
    if [ "$(id -u)" -eq 0 ]; then
        printf 'as_pg="runuser -u %q --"\n' "$os_user"
    else
        echo 'as_pg=""'
    fi
    echo 'case "${1:-}" in'
    printf 'stop) exec $as_pg %q -D %q -s -w -m "${2:-fast}" stop ;;\n' "$bin/pg_ctl" "$data"
    printf 'start) exec $as_pg %q -D %q -l %q -s -w start ;;\n' "$bin/pg_ctl" "$data" "$log"
    echo '*) echo "usage: $0 stop [fast|immediate] | start" >&2; exit 2 ;;'
    echo 'esac'
} >"$helper"
chmod 755 "$helper"

export JOBSEAL_TEST_POSTGRES="postgres://jobseal@127.0.0.1:$port/postgres"
export JOBSEAL_TEST_PG_CTL="$bin/pg_ctl"
export JOBSEAL_TEST_PGDATA="$data"
export JOBSEAL_TEST_PG_OS_USER="$os_user"
export JOBSEAL_TEST_PG_RESTART_HELPER="$helper"

version="$("$bin/postgres" --version)"
ms=$((($(date +%s%N) - t0) / 1000000))
echo "== PostgreSQL: ${version#postgres (PostgreSQL) } on 127.0.0.1:$port, role jobseal (CREATEDB), cluster in $tmp (ready in ${ms} ms)" >&2

# CMD runs in the background so that a signal to this script is handled at once (a foreground
# CMD would delay the trap until it ends). Background commands of a non-interactive shell start
# with SIGINT/SIGQUIT ignored and stdin from /dev/null: undo both, so Ctrl-C and stdin behave as
# if CMD ran directly.
env --default-signal=INT,QUIT "$@" <&0 {stderr}>&- &
child=$!
status=0
wait "$child" || status=$?
child=""
exit "$status"
