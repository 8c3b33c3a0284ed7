//! What the platform provides: the keystore, the clock and the HTTP transport (G1, G2, G3, G6).
//!
//! Each is a foreign trait that Kotlin or Swift implements, and an adapter that makes it the
//! core's trait. The adapters only convert: a failure of the platform becomes the core's
//! keystore or transport error, so the vault refuses the call cleanly and changes nothing.
//!
//! Every implementation must be safe to call from any thread and must never call back into the
//! vault: the vault calls the keystore and the clock while it holds its lock.

use crate::error::JobsealError;
use crate::types::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The platform keystore that holds the vault's key-encryption keys (KEKs): Android Keystore
/// (StrongBox where available) or the iOS Keychain / Secure Enclave.
///
/// The vault keeps one KEK per key epoch, under aliases such as `jobseal-kek-3`, and asks the
/// keystore only to wrap and unwrap a 32-byte epoch master key with it. Deleting the previous
/// epoch's KEK after a shred is what makes any old copy of the database unreadable, so `delete`
/// must really destroy the key.
///
/// Rules for implementations:
/// - Safe to call from any thread; may block briefly.
/// - Never call back into the vault (it holds its lock while calling the keystore).
/// - `wrap` must authenticate (AES-GCM): bytes wrapped under one alias must not unwrap under
///   another alias, nor after any change.
/// - Throw `JobsealException.KeyStore` (Kotlin) / `JobsealError.KeyStore` (Swift) with a message
///   that contains no key material. Any other exception is treated the same way.
#[uniffi::export(foreign)]
pub trait PlatformKeyStore: Send + Sync {
    /// Creates a new key under `alias`. Fails if the alias already exists.
    fn generate(&self, alias: String) -> Result<(), JobsealError>;
    /// Encrypts `plaintext` (32 bytes) under the key `alias`; returns nonce and ciphertext.
    fn wrap(&self, alias: String, plaintext: Vec<u8>) -> Result<Vec<u8>, JobsealError>;
    /// Decrypts bytes made by `wrap` with the same alias.
    fn unwrap(&self, alias: String, wrapped: Vec<u8>) -> Result<Vec<u8>, JobsealError>;
    /// Destroys the key `alias`. Deleting an alias that does not exist succeeds.
    fn delete(&self, alias: String) -> Result<(), JobsealError>;
}

/// The platform's clocks, from which the vault computes trusted time.
///
/// Rules for implementations: cheap, safe from any thread, never call back into the vault.
/// If a method throws, the vault falls back to the system wall clock, or to no boot clock.
#[uniffi::export(foreign)]
pub trait PlatformClock: Send + Sync {
    /// Wall-clock time in milliseconds since the Unix epoch: `System.currentTimeMillis()`,
    /// `Date().timeIntervalSince1970 * 1000`.
    fn wall_now_ms(&self) -> Result<i64, JobsealError>;
    /// Milliseconds since boot on a clock that keeps counting during sleep and cannot be set:
    /// `SystemClock.elapsedRealtime()` on Android, `mach_continuous_time` on iOS. Return null /
    /// nil where there is none; trusted time then rests on the wall clock and a high-water mark.
    fn boot_elapsed_ms(&self) -> Result<Option<i64>, JobsealError>;
    /// An identity of the current boot, different after every reboot: on Android
    /// `Settings.Global.getInt(contentResolver, Settings.Global.BOOT_COUNT)` as text, on iOS
    /// `sysctl kern.boottime` as text. Return null / nil where there is none: after a reboot the
    /// vault then cannot tell a new boot from the old one and treats dispatch's last time as a
    /// lower bound only (see docs/architecture.md, "Trusted time").
    fn boot_id(&self) -> Result<Option<String>, JobsealError>;
}

/// Moves sync requests to dispatch and back (OkHttp, URLSession).
///
/// Rules for implementations:
/// - Send to the configured dispatch base URL joined with `request.path`, over TLS (pinning the
///   dispatch certificate or its CA is advised), with the given method, headers and body.
/// - Return every HTTP answer as an `HttpResponse`, whatever its status (4xx and 5xx included).
/// - Throw `JobsealException.Network` / `JobsealError.Network` only when no answer came (no
///   network, timeout, TLS failure). Any other exception is treated the same way.
/// - Never log bodies or the `authorization` header; never call back into the vault.
/// - May block: sync runs on the calling thread, so call it off the main thread.
#[uniffi::export(foreign)]
pub trait PlatformTransport: Send + Sync {
    /// Sends one request and returns dispatch's answer.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, JobsealError>;
}

/// A [`PlatformKeyStore`] as the core's [`jobseal::KeyStore`].
pub(crate) struct KeyStoreAdapter(pub(crate) Arc<dyn PlatformKeyStore>);

fn keystore_error(e: JobsealError) -> jobseal::KeyStoreError {
    jobseal::KeyStoreError::new(e.detail())
}

impl jobseal::KeyStore for KeyStoreAdapter {
    fn generate(&self, alias: &str) -> Result<(), jobseal::KeyStoreError> {
        self.0.generate(alias.to_owned()).map_err(keystore_error)
    }

    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, jobseal::KeyStoreError> {
        self.0.wrap(alias.to_owned(), plaintext.to_vec()).map_err(keystore_error)
    }

    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, jobseal::KeyStoreError> {
        self.0.unwrap(alias.to_owned(), wrapped.to_vec()).map(Zeroizing::new).map_err(keystore_error)
    }

    fn delete(&self, alias: &str) -> Result<(), jobseal::KeyStoreError> {
        self.0.delete(alias.to_owned()).map_err(keystore_error)
    }
}

/// A [`PlatformClock`] as the core's [`jobseal::Clock`].
pub(crate) struct ClockAdapter(pub(crate) Arc<dyn PlatformClock>);

impl jobseal::Clock for ClockAdapter {
    fn wall_now(&self) -> DateTime<Utc> {
        // The core's clock cannot fail; the system clock says what the platform's would have.
        match self.0.wall_now_ms() {
            Ok(ms) => jobseal::clock::from_ms(ms),
            Err(_) => Utc::now(),
        }
    }

    fn boot_elapsed(&self) -> Option<std::time::Duration> {
        let ms = self.0.boot_elapsed_ms().ok().flatten()?;
        u64::try_from(ms).ok().map(std::time::Duration::from_millis)
    }

    fn boot_id(&self) -> Option<String> {
        self.0.boot_id().ok().flatten().filter(|id| !id.is_empty())
    }
}

/// A [`PlatformTransport`] as the core's [`jobseal::Transport`].
pub(crate) struct TransportAdapter(pub(crate) Arc<dyn PlatformTransport>);

impl jobseal::Transport for TransportAdapter {
    fn send(&self, request: jobseal::HttpRequest) -> Result<jobseal::HttpResponse, jobseal::TransportError> {
        self.0.send(request.into()).map(Into::into).map_err(|e| jobseal::TransportError { message: e.detail() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobseal::{Clock as _, KeyStore as _, Transport as _};

    struct Broken;

    impl PlatformKeyStore for Broken {
        fn generate(&self, _: String) -> Result<(), JobsealError> {
            Err(JobsealError::KeyStore { detail: "user not authenticated".into() })
        }
        fn wrap(&self, _: String, _: Vec<u8>) -> Result<Vec<u8>, JobsealError> {
            Err(JobsealError::Internal { detail: "platform callback threw: java.lang.IllegalStateException".into() })
        }
        fn unwrap(&self, _: String, _: Vec<u8>) -> Result<Vec<u8>, JobsealError> {
            Ok(vec![7; 32])
        }
        fn delete(&self, _: String) -> Result<(), JobsealError> {
            Ok(())
        }
    }

    impl PlatformClock for Broken {
        fn wall_now_ms(&self) -> Result<i64, JobsealError> {
            Err(JobsealError::Internal { detail: "no clock".into() })
        }
        fn boot_elapsed_ms(&self) -> Result<Option<i64>, JobsealError> {
            Ok(Some(-5))
        }
        fn boot_id(&self) -> Result<Option<String>, JobsealError> {
            Err(JobsealError::Internal { detail: "no boot count".into() })
        }
    }

    impl PlatformTransport for Broken {
        fn send(&self, _: HttpRequest) -> Result<HttpResponse, JobsealError> {
            Err(JobsealError::Network { detail: "connection refused".into() })
        }
    }

    #[test]
    fn platform_failures_become_core_errors_with_the_platform_message() {
        let ks = KeyStoreAdapter(Arc::new(Broken));
        assert_eq!(ks.generate("a").unwrap_err().message, "user not authenticated");
        assert!(ks.wrap("a", &[0; 32]).unwrap_err().message.contains("IllegalStateException"));
        assert_eq!(&**ks.unwrap("a", &[1]).unwrap(), &[7u8; 32]);
        let t = TransportAdapter(Arc::new(Broken));
        let req = jobseal::HttpRequest { method: "GET".into(), path: "/v1/x".into(), headers: vec![], body: vec![] };
        assert_eq!(t.send(req).unwrap_err().message, "connection refused");
    }

    #[test]
    fn a_failing_clock_falls_back_to_the_system_and_a_negative_boot_clock_to_none() {
        let c = ClockAdapter(Arc::new(Broken));
        assert!((c.wall_now() - Utc::now()).num_seconds().abs() < 5);
        assert_eq!(c.boot_elapsed(), None);
        assert_eq!(jobseal::Clock::boot_id(&c), None);
    }
}
