//! The key hierarchy's roots: the platform keystore and its software stand-in (G1, G3).
//!
//! Key-encryption keys (KEKs) live in the platform keystore (Android Keystore, iOS Keychain) and
//! never leave it; the vault only asks it to wrap and unwrap the 32-byte epoch master key. One KEK
//! exists per epoch, and deleting the old one after a rotation is what makes a copied database
//! useless (G3). The [`KeyStore`] trait is what the platform implements; [`FileKeyStore`] keeps
//! KEKs in files for tests, the CLI and desktop use, and is weaker than hardware: anyone who can
//! copy both the keystore folder and the database while a job is open can read that job.

use crate::crypto::{Aad, Key32};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// A keystore failure, as the platform reports it. The message must not contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyStoreError {
    /// What failed, for logs.
    pub message: String,
}

impl KeyStoreError {
    /// A failure with this description.
    pub fn new(message: impl Into<String>) -> Self {
        KeyStoreError { message: message.into() }
    }
}

impl From<KeyStoreError> for crate::Error {
    fn from(e: KeyStoreError) -> Self {
        crate::Error::KeyStore(e.message)
    }
}

/// What the platform provides to hold key-encryption keys.
///
/// Implementations must be safe to call from any thread and must never call back into the vault
/// (the vault holds its lock while it calls the keystore). `wrap` and `unwrap` must authenticate:
/// bytes wrapped under one alias must not unwrap under another or after any change.
pub trait KeyStore: Send + Sync {
    /// Creates a new key under `alias`. Fails if the alias already exists.
    fn generate(&self, alias: &str) -> Result<(), KeyStoreError>;
    /// Encrypts `plaintext` (a 32-byte epoch master key) under the key `alias`.
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyStoreError>;
    /// Decrypts bytes made by [`KeyStore::wrap`] with the same alias.
    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError>;
    /// Destroys the key `alias`. Deleting an alias that does not exist succeeds.
    fn delete(&self, alias: &str) -> Result<(), KeyStoreError>;
}

/// The keystore alias of the KEK for `epoch`.
pub fn kek_alias(epoch: u64) -> String {
    format!("jobseal-kek-{epoch}")
}

/// The file-system calls [`FileKeyStore`] makes, one method per call, so that a test can stand
/// in for the disk: the power-loss suite records what each call leaves unsynced and decides what
/// a power cut keeps of it. [`OsKeyFiles`] is the real disk.
///
/// Nothing is durable until synced: written bytes until [`KeyFiles::sync_file`], a created or
/// removed name until [`KeyFiles::sync_dir`] of its folder.
pub trait KeyFiles: Send + Sync {
    /// Creates `path` owner-only (failing if it exists) and writes `bytes` to it.
    fn create_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Overwrites the start of the existing file `path` with `bytes` (`NotFound` if there is none).
    fn overwrite(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
    /// Makes the bytes written to `path` durable.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Removes the name `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the creation and removal of names in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Reads the whole file `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
}

/// [`KeyFiles`] on the real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsKeyFiles;

impl KeyFiles for OsKeyFiles {
    fn create_new(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        // Created owner-only (the file is new, so the mode applies before any byte is written).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)?.write_all(bytes)
    }

    fn overwrite(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        OpenOptions::new().write(true).open(path)?.write_all(bytes)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        // fsync applies to the file, whichever descriptor asks.
        File::open(path)?.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
}

/// A software keystore: one file of 32 random bytes per alias in a folder of its own.
///
/// Deletion overwrites the file before unlinking it; on flash storage that is best effort, which
/// is one reason this keystore is documented as weaker than a hardware-backed one. Every change is
/// synced (bytes, then the folder) before the call returns, so what a call reports as done
/// survives a power cut (`tests/tests/power_loss.rs`).
pub struct FileKeyStore {
    dir: PathBuf,
    files: Arc<dyn KeyFiles>,
}

impl FileKeyStore {
    /// Uses (and creates, owner-only) the folder `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        Self::open_with(dir, Arc::new(OsKeyFiles))
    }

    /// Uses (and creates, owner-only) the folder `dir`, with its files read and written through
    /// `files` (tests that simulate the disk; [`FileKeyStore::open`] uses the real one).
    pub fn open_with(dir: impl Into<PathBuf>, files: Arc<dyn KeyFiles>) -> Result<Self, KeyStoreError> {
        let dir = dir.into();
        let fail = |e: std::io::Error| KeyStoreError::new(format!("cannot create keystore folder: {e}"));
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        // Created owner-only, not made so afterwards: no moment in which another user may list it.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(fail)?;
        // A folder that already existed is made owner-only too; failing that is an error.
        restrict_permissions(&dir, 0o700).map_err(fail)?;
        Ok(FileKeyStore { dir, files })
    }

    fn path(&self, alias: &str) -> Result<PathBuf, KeyStoreError> {
        let ok = !alias.is_empty()
            && alias.len() <= 64
            && alias.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
            && !alias.starts_with('.');
        if !ok {
            return Err(KeyStoreError::new("invalid key alias"));
        }
        Ok(self.dir.join(format!("{alias}.key")))
    }

    fn load(&self, alias: &str) -> Result<Key32, KeyStoreError> {
        let bytes = Zeroizing::new(
            self.files.read(&self.path(alias)?).map_err(|_| KeyStoreError::new(format!("key {alias} is missing")))?,
        );
        Key32::from_slice(&bytes).map_err(|_| KeyStoreError::new(format!("key {alias} is corrupt")))
    }

    fn aad(alias: &str) -> Aad {
        Aad::new("jobseal/keystore/v1").part(alias.as_bytes())
    }
}

impl KeyStore for FileKeyStore {
    fn generate(&self, alias: &str) -> Result<(), KeyStoreError> {
        let path = self.path(alias)?;
        let key = Key32::random().map_err(|e| KeyStoreError::new(format!("cannot create key {alias}: {e}")))?;
        self.files
            .create_new(&path, key.as_bytes())
            .map_err(|e| KeyStoreError::new(format!("cannot create key {alias}: {e}")))?;
        self.files
            .sync_file(&path)
            .and_then(|_| self.files.sync_dir(&self.dir))
            .map_err(|e| KeyStoreError::new(format!("cannot write key {alias}: {e}")))
    }

    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        self.load(alias)?.seal(plaintext, Self::aad(alias).bytes()).map_err(|_| KeyStoreError::new("wrap failed"))
    }

    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        self.load(alias)?
            .open(wrapped, Self::aad(alias).bytes())
            .map_err(|_| KeyStoreError::new(format!("key {alias} cannot unwrap these bytes")))
    }

    fn delete(&self, alias: &str) -> Result<(), KeyStoreError> {
        let path = self.path(alias)?;
        let fail = |e: std::io::Error| KeyStoreError::new(format!("cannot delete key {alias}: {e}"));
        match self.files.overwrite(&path, &[0u8; 32]) {
            Ok(()) => {
                self.files.sync_file(&path).map_err(fail)?;
                self.files.remove(&path).map_err(fail)?;
                self.files.sync_dir(&self.dir).map_err(fail)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(fail(e)),
        }
    }
}

/// Makes a directory entry change durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn restrict_permissions(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_folder_and_every_key_file_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path().join("new")).unwrap();
        ks.generate("k1").unwrap();
        assert_eq!(mode(&dir.path().join("new")), 0o700);
        assert_eq!(mode(&dir.path().join("new/k1.key")), 0o600);
        // A folder that already existed, readable by everyone, is made owner-only.
        let old = dir.path().join("old");
        fs::create_dir(&old).unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
        FileKeyStore::open(&old).unwrap();
        assert_eq!(mode(&old), 0o700);
    }

    #[test]
    fn wrap_unwrap_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path().join("ks")).unwrap();
        ks.generate("a").unwrap();
        assert!(ks.generate("a").is_err(), "generate must not overwrite a live key");
        ks.generate("b").unwrap();
        let w = ks.wrap("a", b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(&**ks.unwrap("a", &w).unwrap(), b"0123456789abcdef0123456789abcdef");
        assert!(ks.unwrap("b", &w).is_err(), "another alias must not unwrap");
        ks.delete("a").unwrap();
        ks.delete("a").unwrap();
        assert!(ks.unwrap("a", &w).is_err());
        assert!(!dir.path().join("ks/a.key").exists());
    }

    #[test]
    fn aliases_cannot_escape_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let ks = FileKeyStore::open(dir.path()).unwrap();
        for alias in ["../x", "", ".hidden", "a/b"] {
            assert!(ks.generate(alias).is_err(), "{alias:?}");
        }
    }
}
