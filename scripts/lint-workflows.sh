#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint, because the lanes
# they describe (hosted Linux, Android emulator, macOS/iOS) cannot run on this machine: the test
# command can at least prove they are well-formed, that expressions, matrix keys and the inputs of
# known actions are right, and (through shellcheck) that their `run:` scripts are sound.
#
#   bash scripts/lint-workflows.sh               # every workflow of the repository
#   bash scripts/lint-workflows.sh FILE.yml ...  # the given files only
#
# Installs what it needs: actionlint built with the Go toolchain (`go install`, into target/tools/bin,
# reused while its version matches), and shellcheck through apt-get when it is missing (without it,
# actionlint still runs, minus the `run:` script checks, and this script says so).
# Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

version=v1.7.12
bin_dir="$root/target/tools/bin"
actionlint=""
for candidate in "$bin_dir/actionlint" "$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin/actionlint"; do
    if [[ -x "$candidate" ]] && [[ "$("$candidate" -version 2>/dev/null | head -n 1)" == "$version" ]]; then
        actionlint="$candidate"
        break
    fi
done
if [[ -z "$actionlint" ]]; then
    command -v go >/dev/null || { echo "lint-workflows: needs the Go toolchain (go) to install actionlint" >&2; exit 1; }
    echo "== Workflows: installing actionlint $version (go install)"
    mkdir -p "$bin_dir"
    GOBIN="$bin_dir" go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
    actionlint="$bin_dir/actionlint"
fi

shellcheck_flag=()
if ! command -v shellcheck >/dev/null; then
    sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo -n"
    echo "== Workflows: installing shellcheck (apt-get)"
    if ! { $sudo apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; } \
        || ! command -v shellcheck >/dev/null; then
        echo "== Workflows: WARNING: shellcheck could not be installed; the run: scripts go unchecked" >&2
        shellcheck_flag=(-shellcheck=)
    fi
fi

if [[ $# -gt 0 ]]; then
    files=("$@")
else
    files=(.github/workflows/*.yml)
fi
echo "== Workflows: actionlint $version on ${files[*]}${shellcheck_flag[*]:+ (without shellcheck)}"
"$actionlint" -no-color "${shellcheck_flag[@]}" "${files[@]}"
echo "== Workflows: ${#files[@]} workflow files clean"
