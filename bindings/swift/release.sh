#!/usr/bin/env bash
# Produces what a release of the Swift package needs, without publishing anything: the production
# XCFramework (release profile, no test-support entry points), zipped; its SwiftPM checksum; and a
# ready-to-publish package directory whose Package.swift uses `.binaryTarget(name:url:checksum:)`
# with the generated Swift sources next to it. The development Package.swift (local `path:`) is
# left untouched.
#
#   bash bindings/swift/release.sh <version>            e.g. 1.4.0, 0.0.0-ci
#
# Output, in bindings/swift/dist/<version>/ (gitignored):
#   JobsealFFI.xcframework.zip          upload as a release asset
#   JobsealFFI.xcframework.zip.sha256   the checksum (swift package compute-checksum)
#   package/                            Package.swift (url + checksum) and Sources/Jobseal: commit
#                                       this tree to the package repository and tag it <version>
#   BUILD-INFO                          profile, features, commit of the build
#
# The binary URL is $JOBSEAL_RELEASE_BASE_URL/<version>/JobsealFFI.xcframework.zip; without that
# variable, https://github.com/$GITHUB_REPOSITORY/releases/download (set on GitHub Actions); without
# either, a placeholder that is reported (fine for CI dry runs, not for publishing).
#
# Needs macOS with Xcode and the Rust Apple targets (see build-xcframework.sh), and `ditto`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=bindings/swift/release-lib.sh
source "$here/release-lib.sh"

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <version>   (SemVer, e.g. 1.4.0 or 0.0.0-ci)" >&2
    exit 2
fi
version="$1"
if ! jobseal_valid_version "$version"; then
    echo "not a SemVer version: $version" >&2
    exit 2
fi
if [[ "$(uname -s)" != Darwin ]]; then
    echo "release.sh needs macOS with Xcode (the plain-shell parts are checked by test-release.sh)" >&2
    exit 1
fi

if [[ -n "${JOBSEAL_RELEASE_BASE_URL:-}" ]]; then
    base="${JOBSEAL_RELEASE_BASE_URL%/}"
elif [[ -n "${GITHUB_REPOSITORY:-}" ]]; then
    base="https://github.com/$GITHUB_REPOSITORY/releases/download"
else
    base="https://github.com/OWNER/REPOSITORY/releases/download"
    echo "warning: neither JOBSEAL_RELEASE_BASE_URL nor GITHUB_REPOSITORY is set: the Package.swift" >&2
    echo "         written uses a placeholder URL and must not be published" >&2
fi
url="$base/$version/JobsealFFI.xcframework.zip"

# 1. The production library: release profile, no --test-support. Never anything else.
bash "$here/build-xcframework.sh" release

build="$here/build"
if ! grep -qx "profile=release" "$build/BUILD-INFO" || ! grep -qx "features=none" "$build/BUILD-INFO"; then
    echo "build/BUILD-INFO is not a release build without features" >&2
    exit 1
fi
jobseal_check_production_api "$here/Sources/Jobseal/Jobseal.swift" "$build/headers/JobsealFFI/JobsealFFI.h" || {
    echo "the release library exposes test-support entry points: refusing to package it" >&2; exit 1; }
for slice in ios ios-sim macos; do
    if nm "$build/$slice/libjobseal_ffi.a" 2>/dev/null | grep -q 'ureq'; then
        echo "warning: the $slice library contains ureq symbols (issue 13: no ureq in the mobile library)" >&2
    fi
done

# 2. Zip (ditto, as Apple documents for XCFrameworks) and checksum.
dist="$here/dist/$version"
rm -rf "$dist"
mkdir -p "$dist"
zip="$dist/JobsealFFI.xcframework.zip"
ditto -c -k --sequesterRsrc --keepParent "$build/JobsealFFI.xcframework" "$zip"
checksum="$(cd "$here" && swift package compute-checksum "$zip" | tr -d '[:space:]')"
jobseal_valid_checksum "$checksum" || { echo "unexpected checksum output: $checksum" >&2; exit 1; }
sha="$(shasum -a 256 "$zip" | cut -d' ' -f1)"
[[ "$sha" == "$checksum" ]] || { echo "compute-checksum ($checksum) differs from SHA-256 ($sha)" >&2; exit 1; }
echo "$checksum" > "$zip.sha256"
cp "$build/BUILD-INFO" "$dist/BUILD-INFO"

# 3. The release package: generated + hand-written Swift, privacy manifest, remote binary target.
commit="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
jobseal_write_release_package "$dist/package" "$version" "$url" "$checksum" "$here/Sources/Jobseal" "$commit"

echo "release $version ready in $dist (nothing published):"
echo "  upload  $zip"
echo "  to      $url"
echo "  then publish $dist/package as the package's $version tag (checksum $checksum)"
