//! Deterministic input mutation: byte-level edits and structure-aware JSON edits.
//!
//! cargo-fuzz needs a nightly toolchain, which this project's machines do not have, so the fuzzer
//! here is our own: a seeded PRNG (SplitMix64, so a run is reproducible from its seed), byte flips,
//! interesting values, insertions, deletions, truncations and splices of corpus entries, and, when
//! the input is JSON, edits of the parsed tree that reach deep validation code a random byte
//! flip rarely does (extreme dates and integers, wrong types, missing and repeated keys, long and
//! control-character strings).

use serde_json::Value;

/// SplitMix64: small, fast, and the same sequence for the same seed on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

const INTERESTING_BYTES: [u8; 12] = [0x00, 0x01, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'0', b'9', 0x1e];

const INTERESTING_STRINGS: [&str; 22] = [
    "",
    " ",
    "-262143-01-01T00:00:00Z",
    "+262142-12-31T23:59:59Z",
    "+262143-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2030-06-12T08:00:00+14:00",
    "2030-06-12T08:00:00Z",
    "00000000-0000-0000-0000-000000000000",
    "4f1c2b8e-7d3a-4c59-9e21-6a0b5d8f3c17",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "jobseal.sheet.v1",
    "completed",
    "on-site",
    "en-route",
    "line\nbreak\u{0}nul",
    "\u{202e}rtl\u{feff}",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];

const INTERESTING_NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "1",
    "1440",
    "1441",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e308",
    "-0.0",
    "0.5",
    "500",
];

/// Produces a mutated copy of `input`, possibly splicing in material from `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    if rng.one_in(2) {
        if let Some(out) = mutate_json(rng, input) {
            return out;
        }
    }
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_bytes(rng, &mut out, other);
    }
    out.truncate(512 * 1024);
    out
}

fn mutate_bytes(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8]) {
    let len = out.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
        }
        2 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            out.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            out.drain(i..i + n);
        }
        4 if len > 0 => out.truncate(rng.below(len)),
        5 if len > 0 => {
            // Duplicate a range in place.
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(128));
            let chunk = out[i..i + n].to_vec();
            let at = rng.below(len + 1);
            out.splice(at..at, chunk);
        }
        6 if !other.is_empty() => {
            // Splice: our head, the other's tail.
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            out.truncate(cut);
            out.extend_from_slice(&other[from..]);
        }
        7 if len >= 4 => {
            // Overwrite with an interesting 8/16/32-bit big- or little-endian integer.
            let vals: [u32; 6] = [0, 1, 0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 46];
            let v = vals[rng.below(vals.len())];
            let bytes = if rng.one_in(2) { v.to_be_bytes() } else { v.to_le_bytes() };
            let w = [1usize, 2, 4][rng.below(3)];
            let i = rng.below(len - w + 1);
            out[i..i + w].copy_from_slice(&bytes[4 - w..]);
        }
        8 if len > 0 => {
            // Insert an interesting string as raw bytes.
            let s = INTERESTING_STRINGS[rng.below(INTERESTING_STRINGS.len())];
            let i = rng.below(len + 1);
            out.splice(i..i, s.bytes());
        }
        _ => {
            let i = rng.below(len + 1);
            out.insert(i, INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())]);
        }
    }
}

/// Structure-aware mutation: works on inputs that are JSON after an optional one-byte prefix
/// (the selector byte some targets read). Returns `None` when the input is not JSON.
fn mutate_json(rng: &mut Rng, input: &[u8]) -> Option<Vec<u8>> {
    let (prefix, body) = match input.first() {
        Some(b'{') | Some(b'[') => (&input[..0], input),
        Some(_) if input.get(1).is_some_and(|b| *b == b'{' || *b == b'[') => input.split_at(1),
        _ => return None,
    };
    let mut v: Value = serde_json::from_slice(body).ok()?;
    for _ in 0..1 + rng.below(3) {
        let n = count_nodes(&v);
        let target = rng.below(n);
        let mut seen = 0;
        edit_nth(rng, &mut v, target, &mut seen);
    }
    let mut out = prefix.to_vec();
    out.extend_from_slice(v.to_string().as_bytes());
    Some(out)
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn edit_nth(rng: &mut Rng, v: &mut Value, target: usize, seen: &mut usize) -> bool {
    if *seen == target {
        edit(rng, v);
        return true;
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|c| edit_nth(rng, c, target, seen)),
        Value::Object(o) => o.values_mut().any(|c| edit_nth(rng, c, target, seen)),
        _ => false,
    }
}

fn interesting_value(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => serde_json::from_str(INTERESTING_NUMBERS[rng.below(INTERESTING_NUMBERS.len())]).unwrap_or(Value::Null),
        3 => Value::String("x".repeat([1, 64, 65, 129, 501, 4097][rng.below(6)])),
        4 => Value::Array(Vec::new()),
        _ => Value::String(INTERESTING_STRINGS[rng.below(INTERESTING_STRINGS.len())].to_owned()),
    }
}

fn edit(rng: &mut Rng, v: &mut Value) {
    match v {
        Value::Object(o) if !o.is_empty() && rng.one_in(3) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            let k = &keys[rng.below(keys.len())];
            if rng.one_in(2) {
                o.remove(k);
            } else {
                o.insert(format!("{k}_x"), interesting_value(rng));
            }
        }
        Value::Array(a) if !a.is_empty() && rng.one_in(2) => {
            let i = rng.below(a.len());
            match rng.below(3) {
                0 => {
                    let dup = a[i].clone();
                    a.insert(i, dup);
                }
                1 => {
                    a.remove(i);
                }
                _ => {
                    let dup = a[i].clone();
                    for _ in 0..rng.below(40) {
                        a.push(dup.clone());
                    }
                }
            }
        }
        Value::String(s) if rng.one_in(3) => {
            // Keep the shape, change a character or append: reaches format checks.
            let mut chars: Vec<char> = s.chars().collect();
            if !chars.is_empty() && rng.one_in(2) {
                let i = rng.below(chars.len());
                chars[i] = ['0', '9', 'Z', '-', '+', ':', 'T', '\u{7}', 'é'][rng.below(9)];
            } else {
                chars.push(['0', '9', 'Z', ' '][rng.below(4)]);
            }
            *s = chars.into_iter().collect();
        }
        _ => *v = interesting_value(rng),
    }
}
