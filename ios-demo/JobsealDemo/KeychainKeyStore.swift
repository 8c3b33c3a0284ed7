// The vault's key-encryption keys in the Keychain, never leaving this device.
//
// Where the device has a Secure Enclave, each KEK is a Secure Enclave P-256 key and wrapping is
// ECIES to it (`eciesEncryptionCofactorVariableIVX963SHA256AESGCM`): the epoch master key is
// wrapped under a key whose private half never leaves the enclave, and bytes wrapped under one
// alias never unwrap under another. Elsewhere (the simulator) the KEK is an AES-256 key stored as
// a Keychain item, used with AES-GCM and the alias as associated data. Either way the items are
// `...ThisDeviceOnly` (no iCloud Keychain, no restore to another device) and `delete` destroys
// them, which is what makes an old copy of the vault unreadable after a shred.
// Same shape as docs/integration-ios.md, section 2, plus a namespace for the UI tests.
import CryptoKit
import Foundation
import Jobseal
import Security

final class KeychainKeyStore: PlatformKeyStore, @unchecked Sendable {
    private let service: String
    private let namespace: String
    // Shreds started by a background task while the phone is locked fail with KeyStore and
    // complete at the next call made while unlocked (docs/integration-ios.md, "Background work").
    private let accessible = kSecAttrAccessibleWhenUnlockedThisDeviceOnly

    /// `namespace` prefixes every tag and account; the UI tests use a fresh one per run.
    init(service: String = "io.jobseal.demo.kek", namespace: String = "") {
        self.service = service
        self.namespace = namespace
    }

    private func tag(_ alias: String) -> Data { Data((namespace + alias).utf8) }

    func generate(alias: String) throws {
        guard try privateKey(alias) == nil, try aesKey(alias) == nil else {
            throw JobsealError.KeyStore(detail: "alias \(alias) already exists")
        }
        if SecureEnclave.isAvailable {
            var error: Unmanaged<CFError>?
            guard let access = SecAccessControlCreateWithFlags(nil, accessible, .privateKeyUsage, &error) else {
                throw JobsealError.KeyStore(detail: "access control failed")
            }
            let attributes: [String: Any] = [
                kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
                kSecAttrKeySizeInBits as String: 256,
                kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
                kSecPrivateKeyAttrs as String: [
                    kSecAttrIsPermanent as String: true,
                    kSecAttrApplicationTag as String: tag(alias),
                    kSecAttrAccessControl as String: access,
                ],
            ]
            guard SecKeyCreateRandomKey(attributes as CFDictionary, &error) != nil else {
                throw JobsealError.KeyStore(detail: "Secure Enclave key creation failed")
            }
        } else {
            let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
            let item: [String: Any] = [
                kSecClass as String: kSecClassGenericPassword,
                kSecAttrService as String: service,
                kSecAttrAccount as String: namespace + alias,
                kSecAttrAccessible as String: accessible,
                kSecAttrSynchronizable as String: false,
                kSecValueData as String: key,
            ]
            let status = SecItemAdd(item as CFDictionary, nil)
            guard status == errSecSuccess else { throw JobsealError.KeyStore(detail: "Keychain add: \(status)") }
        }
    }

    func wrap(alias: String, plaintext: Data) throws -> Data {
        if let key = try privateKey(alias), let pub = SecKeyCopyPublicKey(key) {
            var error: Unmanaged<CFError>?
            guard let out = SecKeyCreateEncryptedData(pub, .eciesEncryptionCofactorVariableIVX963SHA256AESGCM,
                                                      plaintext as CFData, &error) else {
                throw JobsealError.KeyStore(detail: "wrap failed")
            }
            return out as Data
        }
        guard let key = try aesKey(alias) else { throw JobsealError.KeyStore(detail: "no key under alias \(alias)") }
        guard let combined = try AES.GCM.seal(plaintext, using: key, authenticating: Data(alias.utf8)).combined else {
            throw JobsealError.KeyStore(detail: "wrap failed")
        }
        return combined
    }

    func unwrap(alias: String, wrapped: Data) throws -> Data {
        if let key = try privateKey(alias) {
            var error: Unmanaged<CFError>?
            guard let out = SecKeyCreateDecryptedData(key, .eciesEncryptionCofactorVariableIVX963SHA256AESGCM,
                                                      wrapped as CFData, &error) else {
                throw JobsealError.KeyStore(detail: "key \(alias) cannot unwrap these bytes")
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

    func delete(alias: String) throws {
        for q in [keyQuery(alias), passwordQuery(alias)] {
            let status = SecItemDelete(q as CFDictionary)
            guard status == errSecSuccess || status == errSecItemNotFound else {
                throw JobsealError.KeyStore(detail: "Keychain delete: \(status)")
            }
        }
    }

    private func keyQuery(_ alias: String) -> [String: Any] {
        [kSecClass as String: kSecClassKey, kSecAttrApplicationTag as String: tag(alias),
         kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom]
    }

    private func passwordQuery(_ alias: String) -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service,
         kSecAttrAccount as String: namespace + alias]
    }

    private func privateKey(_ alias: String) throws -> SecKey? {
        var q = keyQuery(alias)
        q[kSecReturnRef as String] = true
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let item else { throw JobsealError.KeyStore(detail: "Keychain read: \(status)") }
        return (item as! SecKey)
    }

    private func aesKey(_ alias: String) throws -> SymmetricKey? {
        var q = passwordQuery(alias)
        q[kSecReturnData as String] = true
        var item: CFTypeRef?
        let status = SecItemCopyMatching(q as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess, let data = item as? Data else {
            throw JobsealError.KeyStore(detail: "Keychain read: \(status)")
        }
        return SymmetricKey(data: data)
    }
}
