#!/usr/bin/env python3
"""Reads criterion's estimates (benches/target/criterion) and the Kotlin harness's JSON
(benches/results/kotlin.json), writes benches/results/summary.json and prints the table of
medians, the ratios to the plain SQLite and SQLCipher baselines, and the targets."""
import json, os, sys, glob

here = os.path.dirname(os.path.abspath(__file__))
crit = os.path.join(here, "target", "criterion")
results = os.path.join(here, "results")
os.makedirs(results, exist_ok=True)

med = {}
for f in glob.glob(os.path.join(crit, "**", "new", "estimates.json"), recursive=True):
    meta = os.path.join(os.path.dirname(f), "benchmark.json")
    if not os.path.exists(meta):
        continue
    full_id = json.load(open(meta))["full_id"]
    med[full_id] = json.load(open(f))["median"]["point_estimate"]  # nanoseconds
kt = os.path.join(results, "kotlin.json")
if os.path.exists(kt):
    k = json.load(open(kt))
    med[k["name"]] = float(k["median_ns"])
extra = {}
ex = os.path.join(results, "extra.json")
if os.path.exists(ex):
    extra = json.load(open(ex))

def fmt(ns):
    if ns is None:
        return "not run"
    if ns >= 1e9:
        return f"{ns / 1e9:.3f} s"
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"

def ratio(a, b):
    a, b = med.get(a), med.get(b)
    return f"{a / b:.2f}x" if a and b else "-"

rows = []
def row(bench, note="", vs=()):
    rows.append((bench, fmt(med.get(bench)), " / ".join(f"{ratio(bench, v)} {v.split('/')[-1]}" for v in vs), note))

for op in ("seal", "open"):
    for size in (64, 256, 1024):
        row(f"aead/{op}/{size}", f"XChaCha20-Poly1305, {size} B, random nonce" if op == "seal" else f"{size} B")
base_ingest = ("ingest_1000/plain", "ingest_1000/sqlcipher")
row("ingest_1000/jobseal_sealed", "HPKE open + store + audit + outbox, 1 commit per sheet", base_ingest)
row("ingest_1000/jobseal_plaintext", "Vault::ingest of the same sheets (no HPKE)", base_ingest)
row("ingest_1000/plain", "rusqlite, values in clear, same durability")
row("ingest_1000/sqlcipher", "SQLCipher 4, raw key")
row("ingest_1000/sqlcipher_nokey", "SQLCipher build, no key")
base_reveal = ("reveal/plain", "reveal/plain_logged", "reveal/sqlcipher", "reveal/sqlcipher_logged")
row("reveal/jobseal", "5 fields: policy, decrypt, 5 audit events + outbox, 1 durable commit", base_reveal)
row("reveal/kotlin_jvm", "the same call through the Kotlin bindings (JNA)", ("reveal/jobseal",))
row("reveal/plain", "SELECT of the job row and its 5 values")
row("reveal/plain_logged", "the same SELECT + 5 access-log rows in 1 durable commit")
row("reveal/sqlcipher", "SQLCipher 4, raw key: SELECT")
row("reveal/sqlcipher_logged", "SQLCipher: SELECT + 5 log rows, 1 durable commit")
row("reveal/sqlcipher_nokey", "SQLCipher build, no key: SELECT")
row("reveal/sqlcipher_nokey_logged", "SQLCipher build, no key: SELECT + log rows")
base_close = ("close/plain", "close/sqlcipher", "close/fdatasync_4k")
row("close/jobseal", "report + shred: secure delete, key rotation, checkpoint(TRUNCATE), fsyncs", base_close)
row("close/jobseal_file_keystore", "the same with FileKeyStore (key files fsynced)", base_close)
row("close/plain", "DELETE fields + UPDATE job, 1 durable commit")
row("close/sqlcipher", "the same on SQLCipher, raw key")
row("close/sqlcipher_nokey", "the same on the SQLCipher build, no key")
row("close/fdatasync_4k", "one 4 KiB write + fdatasync on the same disk")
row("open_large/open_and_sweep", "10,000 tombstones, 100,001 audit events: Vault::open + sweep")
row("open_large/sweep", "sweep alone on the open vault")

def lt(a, limit):
    v = med.get(a)
    return None if v is None else v < limit

def faster(a, b):
    va, vb = med.get(a), med.get(b)
    return None if va is None or vb is None else va < vb

size = extra.get("cdylib_stripped_bytes")
targets = [
    ("reveal within 1.5x of the plain SQLite read", None if "reveal/jobseal" not in med or "reveal/plain" not in med else med["reveal/jobseal"] <= 1.5 * med["reveal/plain"], ratio("reveal/jobseal", "reveal/plain")),
    ("ingest faster than SQLCipher", faster("ingest_1000/jobseal_sealed", "ingest_1000/sqlcipher"), ratio("ingest_1000/jobseal_sealed", "ingest_1000/sqlcipher")),
    ("reveal faster than SQLCipher (read)", faster("reveal/jobseal", "reveal/sqlcipher"), ratio("reveal/jobseal", "reveal/sqlcipher")),
    ("reveal faster than SQLCipher (read + durable log)", faster("reveal/jobseal", "reveal/sqlcipher_logged"), ratio("reveal/jobseal", "reveal/sqlcipher_logged")),
    ("close-and-shred median < 10 ms", lt("close/jobseal", 10e6), fmt(med.get("close/jobseal"))),
    ("close-and-shred (FileKeyStore) median < 10 ms", lt("close/jobseal_file_keystore", 10e6), fmt(med.get("close/jobseal_file_keystore"))),
    ("open + sweep with the large history < 30 ms", lt("open_large/open_and_sweep", 30e6), fmt(med.get("open_large/open_and_sweep"))),
    ("release cdylib < 4 MB stripped", None if size is None else size < 4_000_000, f"{size:,} bytes" if size else "not measured"),
]

out = {"medians_ns": med, "extra": extra, "targets": [{"target": t, "met": m, "measured": v} for t, m, v in targets]}
json.dump(out, open(os.path.join(results, "summary.json"), "w"), indent=2, ensure_ascii=False)

print("| Benchmark | Median | Ratio to baselines | What |")
print("|---|---:|---|---|")
for b, m, r, n in rows:
    print(f"| `{b}` | {m} | {r} | {n} |")
print()
print("| Target | Met | Measured |")
print("|---|---|---|")
for t, m, v in targets:
    print(f"| {t} | {'yes' if m else ('not measured' if m is None else 'no')} | {v} |")
