package io.jobseal.demo.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import io.jobseal.JobsealException
import io.jobseal.PlatformKeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The vault's key-encryption keys in the Android Keystore: one AES-256-GCM key per key epoch,
 * under the alias the vault names (`jobseal-kek-<epoch>`), in StrongBox when the device has one.
 * Keys are non-exportable; `delete` destroys the key, which is what makes an old copy of the
 * vault unreadable after a shred. Same shape as docs/integration-android.md, section 2.
 *
 * [namespace] prefixes every Keystore alias. The app leaves it empty; the instrumented tests use
 * a fresh one per test so that their vaults never touch the app's own keys (the Keystore is per
 * app, and the tests run in the app's process).
 */
class AndroidKeystoreKeyStore(context: Context, private val namespace: String = "") : PlatformKeyStore {
    private val keyStore = java.security.KeyStore.getInstance(PROVIDER).apply { load(null) }
    private val strongBox = Build.VERSION.SDK_INT >= 28 &&
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    /** Whether new keys go to StrongBox (shown on the sync screen of the demo). */
    val usesStrongBox: Boolean get() = strongBox

    override fun generate(alias: String) = guard {
        if (keyStore.containsAlias(entry(alias))) throw JobsealException.KeyStore("alias $alias already exists")
        if (strongBox) {
            try {
                newKey(alias, inStrongBox = true)
            } catch (e: StrongBoxUnavailableException) {
                newKey(alias, inStrongBox = false)
            }
        } else {
            newKey(alias, inStrongBox = false)
        }
    }

    private fun newKey(alias: String, inStrongBox: Boolean) {
        val spec = KeyGenParameterSpec.Builder(entry(alias), KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setKeySize(256)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
            .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
            .setRandomizedEncryptionRequired(true)   // the keystore picks every IV
            .apply { if (Build.VERSION.SDK_INT >= 28) setIsStrongBoxBacked(inStrongBox) }
            .build()
        KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, PROVIDER).apply { init(spec) }.generateKey()
    }

    // AES-256-GCM with the alias as associated data: bytes wrapped under one alias never unwrap
    // under another. Output: the 12-byte IV, then ciphertext and tag.
    override fun wrap(alias: String, plaintext: ByteArray): ByteArray = guard {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, key(alias))
        cipher.updateAAD(alias.toByteArray())
        cipher.iv + cipher.doFinal(plaintext)
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray = guard {
        if (wrapped.size < IV_BYTES + TAG_BYTES) throw JobsealException.KeyStore("wrapped key is too short")
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.DECRYPT_MODE, key(alias), GCMParameterSpec(TAG_BYTES * 8, wrapped, 0, IV_BYTES))
        cipher.updateAAD(alias.toByteArray())
        cipher.doFinal(wrapped, IV_BYTES, wrapped.size - IV_BYTES)
    }

    override fun delete(alias: String) = guard {
        if (keyStore.containsAlias(entry(alias))) keyStore.deleteEntry(entry(alias))
    }

    /** Deletes every key of this namespace (tests clean up with it). */
    fun deleteAll() = guard {
        require(namespace.isNotEmpty()) { "deleteAll needs a namespace" }
        keyStore.aliases().toList().filter { it.startsWith(namespace) }.forEach { keyStore.deleteEntry(it) }
    }

    private fun entry(alias: String) = namespace + alias

    private fun key(alias: String): SecretKey =
        keyStore.getKey(entry(alias), null) as? SecretKey ?: throw JobsealException.KeyStore("no key under alias $alias")

    /** Keystore failures as JobsealException.KeyStore, naming the exception class only (no key material). */
    private inline fun <T> guard(block: () -> T): T = try {
        block()
    } catch (e: JobsealException) {
        throw e
    } catch (e: Exception) {
        throw JobsealException.KeyStore("Android Keystore failed: ${e.javaClass.simpleName}")
    }

    private companion object {
        const val PROVIDER = "AndroidKeyStore"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val IV_BYTES = 12
        const val TAG_BYTES = 16
    }
}
