#!/usr/bin/env bash
# Checks, on any machine (Linux included), the plain-shell parts of the Swift release: syntax and
# ShellCheck of the scripts, argument handling, version / URL / checksum formats, the
# production-API check, and the release package layout with its generated Package.swift. The
# macOS-only parts (cargo for Apple targets, xcodebuild, ditto, swift package compute-checksum)
# are not run here; the macOS CI lane runs `release.sh 0.0.0-ci` for those.
#
#   bash bindings/swift/test-release.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bindings/swift/release-lib.sh
source "$here/release-lib.sh"

fails=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
    local what="$1"; shift
    if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
refuse() {  # refuse DESCRIPTION COMMAND...: the command must fail
    local what="$1"; shift
    if "$@" 2>/dev/null; then echo "FAIL $what"; fails=$((fails + 1)); else echo "ok   $what"; fi
}

for s in build-xcframework.sh release.sh release-lib.sh test-release.sh; do
    check "bash -n $s" bash -n "$here/$s"
done
if command -v shellcheck >/dev/null; then
    check "shellcheck" shellcheck -x -P "$here/../.." "$here/build-xcframework.sh" "$here/release.sh" \
        "$here/release-lib.sh" "$here/test-release.sh"
else
    echo "skip shellcheck (not installed)"
fi

for v in 0.0.0-ci 1.4.0 1.4.0-rc.1 10.20.30+build.5; do check "version $v accepted" jobseal_valid_version "$v"; done
for v in "" 1.4 v1.4.0 01.2.3 "1.2.3 " 1.2.3-; do refuse "version '$v' refused" jobseal_valid_version "$v"; done

good_sum="$(printf '%064d' 0 | tr 0 a)"
check "checksum of 64 lowercase hex accepted" jobseal_valid_checksum "$good_sum"
refuse "uppercase checksum refused" jobseal_valid_checksum "$(printf '%064d' 0 | tr 0 A)"
refuse "short checksum refused" jobseal_valid_checksum "abc"
check "https URL accepted" jobseal_valid_url "https://example.com/r/1.0.0/JobsealFFI.xcframework.zip"
refuse "http URL refused" jobseal_valid_url "http://example.com/r/1.0.0/JobsealFFI.xcframework.zip"
refuse "URL to another file refused" jobseal_valid_url "https://example.com/r/1.0.0/other.zip"

# release.sh refuses bad arguments before touching anything.
refuse "release.sh without version" bash "$here/release.sh"
refuse "release.sh with a bad version" bash "$here/release.sh" v1
refuse "release.sh with two arguments" bash "$here/release.sh" 1.0.0 extra
set +e
bash "$here/release.sh" nope >/dev/null 2>&1; rc=$?
set -e
check "release.sh exits 2 on a bad version" test "$rc" -eq 2
refuse "build-xcframework.sh with an unknown option" bash "$here/build-xcframework.sh" debug --bogus

# The production-API check, on fake generated files.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
printf 'public func listJobs() {}\n' > "$tmp/prod.swift"
printf 'void uniffi_jobseal_ffi_fn_method_jobvault_list_jobs(void);\n' > "$tmp/prod.h"
printf 'public func dispatchKeygen() throws {}\n' > "$tmp/test.swift"
printf 'void uniffi_jobseal_ffi_fn_func_seal_job_sheet(void);\n' > "$tmp/test.h"
check "production API accepted" jobseal_check_production_api "$tmp/prod.swift" "$tmp/prod.h"
refuse "test-support Swift refused" jobseal_check_production_api "$tmp/test.swift" "$tmp/prod.h"
refuse "test-support header refused" jobseal_check_production_api "$tmp/prod.swift" "$tmp/test.h"

# The release package layout, from the real hand-written sources plus a fake generated file.
src="$tmp/src"
mkdir -p "$src"
cp "$here"/Sources/Jobseal/*.swift "$here/Sources/Jobseal/PrivacyInfo.xcprivacy" "$src/"
printf '// generated stand-in\n' > "$src/Jobseal.swift"
url="https://example.com/releases/download/0.0.0-ci/JobsealFFI.xcframework.zip"
check "release package written" jobseal_write_release_package "$tmp/pkg" 0.0.0-ci "$url" "$good_sum" "$src" deadbeef
check "release Package.swift has the url" grep -qF "url: \"$url\"" "$tmp/pkg/Package.swift"
check "release Package.swift has the checksum" grep -qF "checksum: \"$good_sum\"" "$tmp/pkg/Package.swift"
refuse "release Package.swift has no local path binary" grep -qF 'path: "build/' "$tmp/pkg/Package.swift"
refuse "release Package.swift has no test target" grep -qF 'testTarget' "$tmp/pkg/Package.swift"
check "release package has the privacy manifest" test -f "$tmp/pkg/Sources/Jobseal/PrivacyInfo.xcprivacy"
check "release package has the generated Swift" test -f "$tmp/pkg/Sources/Jobseal/Jobseal.swift"
for f in "$here"/Sources/Jobseal/*.swift; do
    check "release package has $(basename "$f")" test -f "$tmp/pkg/Sources/Jobseal/$(basename "$f")"
done
refuse "release package refuses a bad checksum" jobseal_write_release_package "$tmp/pkg2" 1.0.0 "$url" "xyz" "$src" c
refuse "release package refuses missing sources" jobseal_write_release_package "$tmp/pkg3" 1.0.0 "$url" "$good_sum" "$tmp/none" c

# The privacy manifests parse as property lists (python3's plistlib, when available).
if command -v python3 >/dev/null; then
    for p in "$here/Sources/Jobseal/PrivacyInfo.xcprivacy" "$here/../../ios-demo/JobsealDemo/PrivacyInfo.xcprivacy"; do
        [[ -f "$p" ]] || continue
        check "plist parses: ${p#"$here"/}" python3 -c 'import plistlib,sys; d=plistlib.load(open(sys.argv[1],"rb")); assert d["NSPrivacyTracking"] is False' "$p"
    done
fi

echo "test-release.sh: $fails failure(s)"
[[ $fails -eq 0 ]]
