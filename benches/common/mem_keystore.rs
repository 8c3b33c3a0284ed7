//! The benchmarks' keystore: in memory, with the same wrap construction as `FileKeyStore`. What a
//! hardware keystore costs the core, minus the hardware's own latency (which the app's platform
//! sets). Included by path from the criterion benchmarks and the fsync counter, so both measure
//! the same vault.

use jobseal::crypto::{Aad, Key32};
use jobseal::{KeyStore, KeyStoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// A keystore in memory with the same wrap construction as `FileKeyStore`: what a hardware
/// keystore costs the core, minus the hardware's own latency (which the app's platform sets).
#[derive(Default)]
pub struct MemKeyStore(Mutex<HashMap<String, Zeroizing<[u8; 32]>>>);

impl MemKeyStore {
    fn key(&self, alias: &str) -> Result<Key32, KeyStoreError> {
        let keys = self.0.lock().unwrap();
        let raw = keys.get(alias).ok_or_else(|| KeyStoreError::new("no such key"))?;
        Key32::from_slice(raw.as_ref()).map_err(|_| KeyStoreError::new("bad key"))
    }
}

impl KeyStore for MemKeyStore {
    fn generate(&self, alias: &str) -> Result<(), KeyStoreError> {
        let k = Key32::random().map_err(|e| KeyStoreError::new(format!("cannot create key: {e}")))?;
        let mut keys = self.0.lock().unwrap();
        if keys.contains_key(alias) {
            return Err(KeyStoreError::new("alias exists"));
        }
        keys.insert(alias.to_owned(), Zeroizing::new(*k.as_bytes()));
        Ok(())
    }
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        self.key(alias)?.seal(plaintext, Aad::new("bench/ks").part(alias.as_bytes()).bytes()).map_err(|_| KeyStoreError::new("wrap"))
    }
    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        self.key(alias)?.open(wrapped, Aad::new("bench/ks").part(alias.as_bytes()).bytes()).map_err(|_| KeyStoreError::new("unwrap"))
    }
    fn delete(&self, alias: &str) -> Result<(), KeyStoreError> {
        self.0.lock().unwrap().remove(alias);
        Ok(())
    }
}

