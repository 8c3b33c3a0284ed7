// Hand-written, shipped in the package: the vault's key-encryption keys (KEKs) in the Keychain,
// never leaving this device. It lives in the package (not in each app) because getting it wrong
// silently breaks crypto-shredding: `delete` must really destroy the key, keys must be
// `...ThisDeviceOnly`, and no error may carry key material.
//
// Where the device has a Secure Enclave, each KEK is a Secure Enclave P-256 key and wrapping is
// ECIES to it (`eciesEncryptionCofactorVariableIVX963SHA256AESGCM`): the epoch master key is
// wrapped under a key whose private half never leaves the enclave, and bytes wrapped under one
// alias never unwrap under another (another key). Elsewhere (the simulator, Macs without an
// enclave) the KEK is a random AES-256 key stored as a Keychain generic-password item, used with
// CryptoKit's AES-GCM and the alias as associated data.
//
// Written against Apple's documented Security / CryptoKit APIs; not compiled in this repository
// (no Swift toolchain on its Linux machine). The simulator path runs in the demo's UI tests on
// the macOS lane; the Secure Enclave path runs only on a device.
import CryptoKit
import Foundation
import Security

/// A `PlatformKeyStore` on the Keychain, with a Secure Enclave key per alias where the device has
/// one and an AES-256 Keychain item otherwise.
///
/// ```swift
/// let vault = try JobVault.open(dir: dir.path, keystore: KeychainKeyStore(), clock: SystemPlatformClock())
/// ```
///
/// - Every item is `...ThisDeviceOnly`: no iCloud Keychain, no restore onto another device.
/// - `delete` removes both possible items for the alias and then checks that neither remains:
///   a key that survives its delete would keep an old copy of the vault readable.
/// - Errors are `JobsealError.KeyStore` with an `OSStatus` or a fixed text: never key bytes,
///   never wrapped or unwrapped data.
/// - Thread-safe (the Keychain serialises access); never calls back into the vault.
public final class KeychainKeyStore: PlatformKeyStore, @unchecked Sendable {
    /// When the keys can be used.
    public enum Accessibility: Sendable {
        /// `kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly`: usable while locked once the device
        /// has been unlocked after boot. Lets a background sync or sweep finish a shred while the
        /// phone is in a pocket. The default.
        case afterFirstUnlockThisDeviceOnly
        /// `kSecAttrAccessibleWhenUnlockedThisDeviceOnly`: usable only while unlocked. A shred
        /// attempted while locked fails with `KeyStore` and completes at the next call made while
        /// unlocked; the job's data stays unreadable meanwhile (its state is already terminal).
        case whenUnlockedThisDeviceOnly

        var attribute: CFString {
            switch self {
            case .afterFirstUnlockThisDeviceOnly: return kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
            case .whenUnlockedThisDeviceOnly: return kSecAttrAccessibleWhenUnlockedThisDeviceOnly
            }
        }
    }

    /// Whether this process can create Secure Enclave keys (false on the simulator).
    public static var secureEnclaveAvailable: Bool { SecureEnclave.isAvailable }

    private let service: String
    private let namespace: String
    private let accessibility: Accessibility
    private let useSecureEnclave: Bool

    /// - Parameters:
    ///   - service: the Keychain service of the AES items and the prefix of the enclave keys' tags;
    ///     one per app (or per vault, if an app has several).
    ///   - namespace: prefixes every account and tag; tests use a fresh one per run.
    ///   - accessibility: see `Accessibility`; the default lets background work shred.
    ///   - preferSecureEnclave: `false` forces the AES-GCM Keychain items even on a device with an
    ///     enclave (for tests); keys already created keep the kind they were created with.
    public init(service: String = "io.jobseal.kek", namespace: String = "",
                accessibility: Accessibility = .afterFirstUnlockThisDeviceOnly,
                preferSecureEnclave: Bool = true) {
        self.service = service
        self.namespace = namespace
        self.accessibility = accessibility
        useSecureEnclave = preferSecureEnclave && SecureEnclave.isAvailable
    }

    /// Creates the KEK `alias`: an enclave key where available, else an AES-256 Keychain item.
    /// Fails if either kind already exists under the alias.
    public func generate(alias: String) throws {
        guard try enclaveKey(alias) == nil, try aesKey(alias) == nil else {
            throw JobsealError.KeyStore(detail: "alias \(alias) already exists")
        }
        if useSecureEnclave {
            var error: Unmanaged<CFError>?
            guard let access = SecAccessControlCreateWithFlags(nil, accessibility.attribute, .privateKeyUsage, &error) else {
                throw JobsealError.KeyStore(detail: "access control: \(Self.code(error))")
            }
            var attributes: [String: Any] = [
                kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
                kSecAttrKeySizeInBits as String: 256,
                kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
                kSecPrivateKeyAttrs as String: [
                    kSecAttrIsPermanent as String: true,
                    kSecAttrApplicationTag as String: tag(alias),
                    kSecAttrAccessControl as String: access,
                ] as [String: Any],
            ]
            Self.dataProtection(&attributes)
            guard SecKeyCreateRandomKey(attributes as CFDictionary, &error) != nil else {
                throw JobsealError.KeyStore(detail: "Secure Enclave key creation: \(Self.code(error))")
            }
        } else {
            let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
            var item = passwordQuery(alias)
            item[kSecAttrAccessible as String] = accessibility.attribute
            item[kSecAttrSynchronizable as String] = false
            item[kSecValueData as String] = key
            let status = SecItemAdd(item as CFDictionary, nil)
            guard status == errSecSuccess else { throw JobsealError.KeyStore(detail: "Keychain add: \(status)") }
        }
    }

    /// Wraps `plaintext` (the 32-byte epoch master key) under `alias`: ECIES to the enclave key's
    /// public half, or AES-GCM with the alias as associated data.
    public func wrap(alias: String, plaintext: Data) throws -> Data {
        if let key = try enclaveKey(alias) {
            var error: Unmanaged<CFError>?
            guard let pub = SecKeyCopyPublicKey(key),
                  let out = SecKeyCreateEncryptedData(pub, .eciesEncryptionCofactorVariableIVX963SHA256AESGCM,
                                                      plaintext as CFData, &error) else {
                throw JobsealError.KeyStore(detail: "wrap failed: \(Self.code(error))")
            }
            return out as Data
        }
        guard let key = try aesKey(alias) else { throw JobsealError.KeyStore(detail: "no key under alias \(alias)") }
        do {
            guard let combined = try AES.GCM.seal(plaintext, using: key, authenticating: Data(alias.utf8)).combined else {
                throw JobsealError.KeyStore(detail: "wrap failed")
            }
            return combined
        } catch let e as JobsealError {
            throw e
        } catch {
            throw JobsealError.KeyStore(detail: "wrap failed")
        }
    }

    /// Unwraps bytes made by `wrap` with the same alias; anything else fails with `KeyStore`.
    public func unwrap(alias: String, wrapped: Data) throws -> Data {
        if let key = try enclaveKey(alias) {
            var error: Unmanaged<CFError>?
            guard let out = SecKeyCreateDecryptedData(key, .eciesEncryptionCofactorVariableIVX963SHA256AESGCM,
                                                      wrapped as CFData, &error) else {
                throw JobsealError.KeyStore(detail: "key \(alias) cannot unwrap these bytes: \(Self.code(error))")
            }
            return out as Data
        }
        guard let key = try aesKey(alias) else { throw JobsealError.KeyStore(detail: "no key under alias \(alias)") }
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: key, authenticating: Data(alias.utf8))
        } catch {
            throw JobsealError.KeyStore(detail: "key \(alias) cannot unwrap these bytes")
        }
    }

    /// Destroys the KEK `alias` (both kinds), then reads back to check that it is gone. Deleting
    /// an alias that does not exist succeeds.
    public func delete(alias: String) throws {
        for q in [keyQuery(alias), passwordQuery(alias)] {
            let status = SecItemDelete(q as CFDictionary)
            guard status == errSecSuccess || status == errSecItemNotFound else {
                throw JobsealError.KeyStore(detail: "Keychain delete: \(status)")
            }
        }
        guard try enclaveKey(alias) == nil, try aesKey(alias) == nil else {
            throw JobsealError.KeyStore(detail: "Keychain delete: key \(alias) still present")
        }
    }

    /// Whether a key exists under `alias` (either kind). For tests and diagnostics.
    public func contains(alias: String) throws -> Bool {
        try enclaveKey(alias) != nil || aesKey(alias) != nil
    }

    // MARK: - Keychain queries

    private func tag(_ alias: String) -> Data { Data("\(service).\(namespace)\(alias)".utf8) }

    private func keyQuery(_ alias: String) -> [String: Any] {
        var q: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyClass as String: kSecAttrKeyClassPrivate,
            kSecAttrApplicationTag as String: tag(alias),
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
        ]
        Self.dataProtection(&q)
        return q
    }

    private func passwordQuery(_ alias: String) -> [String: Any] {
        var q: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: namespace + alias,
        ]
        Self.dataProtection(&q)
        return q
    }

    private func enclaveKey(_ alias: String) throws -> SecKey? {
        var q = keyQuery(alias)
        q[kSecReturnRef as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let item, CFGetTypeID(item) == SecKeyGetTypeID() else {
            throw JobsealError.KeyStore(detail: "Keychain read: \(status)")
        }
        return (item as! SecKey)
    }

    private func aesKey(_ alias: String) throws -> SymmetricKey? {
        var q = passwordQuery(alias)
        q[kSecReturnData as String] = true
        q[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = item as? Data, data.count == 32 else {
            throw JobsealError.KeyStore(detail: "Keychain read: \(status)")
        }
        return SymmetricKey(data: data)
    }

    /// On macOS, use the data-protection keychain (the iOS semantics, `kSecAttrAccessible`
    /// honoured) rather than the legacy file keychain. It needs a signed process with a keychain
    /// access group; unsigned test runners get `errSecMissingEntitlement` (-34018).
    private static func dataProtection(_ q: inout [String: Any]) {
        #if os(macOS)
        q[kSecUseDataProtectionKeychain as String] = true
        #endif
    }

    /// The numeric code of a Security error: never its description, which may quote inputs.
    private static func code(_ error: Unmanaged<CFError>?) -> Int {
        guard let error else { return 0 }
        return CFErrorGetCode(error.takeRetainedValue())
    }
}
