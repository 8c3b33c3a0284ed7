//! Lowercase hexadecimal, the text encoding of keys, hashes and envelopes in JSON.
//!
//! One module serves every crate (the core and dispatch use it through this one) so that every
//! JSON document (bundles, audit events, sync messages, receipts) encodes bytes the same way.
//! Some of those bytes are secrets (a dispatch secret key typed into the CLI, a device token), so
//! the codec is RustCrypto's `base16ct`, which has no data-dependent branches or table look-ups:
//! how long encoding or decoding takes does not depend on the key's value. Only the outcome
//! (valid or not) and the length are visible.

use zeroize::Zeroize;

/// Encodes bytes as lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Decodes hex (either case); `None` on odd length or a non-hex character.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![0u8; base16ct::decoded_len(s.as_bytes()).ok()?];
    if decode_to_slice(s, &mut out) {
        Some(out)
    } else {
        out.zeroize();
        None
    }
}

/// Decodes hex into `out`, which must be exactly half as long as `s`; false on any mismatch or
/// non-hex character (and `out` is then wiped). Lets callers decode secrets straight into a
/// buffer that is wiped on drop.
pub fn decode_to_slice(s: &str, out: &mut [u8]) -> bool {
    if s.len() != out.len() * 2 {
        return false;
    }
    match base16ct::mixed::decode(s, out) {
        Ok(_) => true,
        Err(_) => {
            out.zeroize();
            false
        }
    }
}

/// Serde helpers for `Vec<u8>` fields carried as hex strings.
pub mod serde_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes as hex.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(bytes))
    }

    /// Deserializes hex into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::decode(&s).ok_or_else(|| serde::de::Error::custom("expected a hex string"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_rejects() {
        assert_eq!(super::encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(super::decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(super::decode("abc"), None);
        assert_eq!(super::decode("zz"), None);
    }

    #[test]
    fn every_byte_round_trips_and_only_hex_digits_decode() {
        let all: Vec<u8> = (0..=255).collect();
        let s = super::encode(&all);
        assert_eq!(s.len(), 512);
        assert!(s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(super::decode(&s), Some(all.clone()));
        assert_eq!(super::decode(&s.to_uppercase()), Some(all));
        for c in 0..=255u8 {
            let pair = [b'0', c];
            let text = String::from_utf8_lossy(&pair).into_owned();
            let is_hex = c.is_ascii_hexdigit();
            assert_eq!(super::decode(&text).is_some(), is_hex && text.len() == 2, "{c:#04x}");
        }
        assert_eq!(super::decode(""), Some(Vec::new()));
    }

    #[test]
    fn decode_to_slice_needs_the_exact_length_and_wipes_on_failure() {
        let mut out = [0u8; 2];
        assert!(super::decode_to_slice("0aFF", &mut out));
        assert_eq!(out, [0x0a, 0xff]);
        assert!(!super::decode_to_slice("0aff00", &mut out));
        assert!(!super::decode_to_slice("0a", &mut out));
        let mut out = [0u8; 2];
        assert!(!super::decode_to_slice("7fzz", &mut out));
        assert_eq!(out, [0, 0], "a failed decode leaves nothing behind");
    }
}
