// Why this file: the byte format of a wrapped epoch key and the AES-GCM calls around it, kept free
// of Android types so that the JVM tests (bindings/android/run-jvm-tests.sh) exercise exactly the
// code AndroidKeystoreKeyStore runs on a phone, with a software AES key standing in for the
// Keystore's.
package io.jobseal.android

import io.jobseal.JobsealException
import java.security.GeneralSecurityException
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * How [AndroidKeystoreKeyStore] wraps the vault's 32-byte epoch master key: AES-256-GCM under the
 * alias's key, the alias as associated data (bytes wrapped under one alias never unwrap under
 * another), and the output laid out as the 12-byte IV, then the ciphertext, then the 16-byte tag.
 * The IV is always chosen by the cipher (the Android Keystore insists on it:
 * `setRandomizedEncryptionRequired(true)`).
 *
 * Every failure is a [JobsealException.KeyStore] whose message names no key material.
 */
object KeyWrapFormat {
    /** Length of the GCM nonce at the start of a wrapped key. */
    const val IV_BYTES: Int = 12

    /** Length of the GCM tag at the end of a wrapped key. */
    const val TAG_BYTES: Int = 16

    /** The cipher transformation, the same for the Android Keystore and a software key. */
    const val TRANSFORMATION: String = "AES/GCM/NoPadding"

    /** Encrypts [plaintext] under [key] for [alias]; returns IV ‖ ciphertext ‖ tag. */
    fun seal(key: SecretKey, alias: String, plaintext: ByteArray): ByteArray = crypto {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key)
        val iv = cipher.iv
        if (iv == null || iv.size != IV_BYTES) throw JobsealException.KeyStore("cipher chose an IV of unexpected length")
        cipher.updateAAD(aad(alias))
        iv + cipher.doFinal(plaintext)
    }

    /**
     * Decrypts bytes made by [seal] under the same [key] and [alias]. Too short input, a different
     * alias, a different key or any flipped byte is a [JobsealException.KeyStore].
     */
    fun open(key: SecretKey, alias: String, wrapped: ByteArray): ByteArray {
        checkLength(wrapped)
        return crypto {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            cipher.init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(TAG_BYTES * 8, wrapped, 0, IV_BYTES))
            cipher.updateAAD(aad(alias))
            cipher.doFinal(wrapped, IV_BYTES, wrapped.size - IV_BYTES)
        }
    }

    /** Refuses input that cannot hold an IV and a tag (before any key is touched). */
    fun checkLength(wrapped: ByteArray) {
        if (wrapped.size < IV_BYTES + TAG_BYTES) throw JobsealException.KeyStore("wrapped key is too short")
    }

    /** The associated data for [alias]: its UTF-8 bytes. */
    fun aad(alias: String): ByteArray = alias.toByteArray(Charsets.UTF_8)

    // Cipher failures (bad tag, wrong key) as KeyStore errors naming the exception class only.
    private inline fun <T> crypto(block: () -> T): T = try {
        block()
    } catch (e: GeneralSecurityException) {
        throw JobsealException.KeyStore("key unwrap/wrap failed: ${e.javaClass.simpleName}")
    }
}
