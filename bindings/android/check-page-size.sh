#!/usr/bin/env bash
# Why this script: Google Play refuses (and 16 KB-page Android 15 devices cannot load) native
# libraries whose LOAD segments are aligned below 16 KB. This fails unless every LOAD segment of
# every libjobseal_ffi.so found in the arguments is aligned to at least 0x4000.
#
#   bash bindings/android/check-page-size.sh [--all] <file.so | file.aar | file.apk | directory> ...
#
# --all checks every *.so found (e.g. an app's APK, with JNA's libjnidispatch.so), not only ours.
# Reads the ELF program headers with Python's standard library only (no readelf, no NDK), from
# plain files, from directories (recursively) and inside zip archives (.aar, .apk, .jar).
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 [--all] <.so|.aar|.apk|dir> ..." >&2; exit 2; }
exec python3 - "$@" <<'PY'
import io, os, struct, sys, zipfile

MIN_ALIGN = 0x4000
NAME = "libjobseal_ffi.so"
args = sys.argv[1:]
ALL = bool(args) and args[0] == "--all"
if ALL:
    args = args[1:]

def wanted(name):
    return name.endswith(".so") if ALL else name == NAME

def load_aligns(data):
    """p_align of every PT_LOAD segment of an ELF image (32- or 64-bit, either byte order)."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(end + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x2A)
    aligns = []
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, = struct.unpack_from(end + "I", data, off)
        if p_type != 1:  # PT_LOAD
            continue
        p_align, = struct.unpack_from(end + ("Q" if is64 else "I"), data, off + (0x30 if is64 else 0x1C))
        aligns.append(p_align)
    return aligns

def libraries(path):
    """(label, bytes) of every libjobseal_ffi.so at path."""
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for f in sorted(files):
                full = os.path.join(root, f)
                if wanted(f):
                    yield full, open(full, "rb").read()
                elif f.endswith((".aar", ".apk", ".jar", ".zip")):
                    yield from libraries(full)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for n in z.namelist():
                if wanted(os.path.basename(n)):
                    yield f"{path}!{n}", z.read(n)
    else:
        yield path, open(path, "rb").read()

checked = bad = 0
for arg in args:
    if not os.path.exists(arg):
        print(f"FAIL {arg}: no such file", file=sys.stderr); sys.exit(1)
    for label, data in libraries(arg):
        checked += 1
        try:
            aligns = load_aligns(data)
        except (ValueError, struct.error) as e:
            print(f"FAIL {label}: {e}"); bad += 1; continue
        low = [a for a in aligns if a < MIN_ALIGN]
        shown = ", ".join(hex(a) for a in aligns) or "none"
        if not aligns or low:
            print(f"FAIL {label}: LOAD alignments {shown} (need >= {hex(MIN_ALIGN)})"); bad += 1
        else:
            print(f"ok   {label}: LOAD alignments {shown}")
if checked == 0:
    what = "shared library" if ALL else NAME
    print(f"FAIL: no {what} found in {' '.join(args)}"); sys.exit(1)
if bad:
    print(f"{bad} of {checked} libraries not 16 KB aligned"); sys.exit(1)
print(f"all {checked} libraries 16 KB aligned")
PY
