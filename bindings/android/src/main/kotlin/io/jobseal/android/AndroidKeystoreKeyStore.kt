// Why this file: the production PlatformKeyStore for Android, in the library so that every app gets
// the same non-exportable, really-deleted keys (the shred's guarantee depends on delete). The byte
// format and cipher calls live in KeyWrapFormat (tested on the JVM); this class adds the Keystore.
package io.jobseal.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import io.jobseal.JobsealException
import io.jobseal.PlatformKeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

/**
 * The vault's key-encryption keys in the Android Keystore: one AES-256-GCM key per key epoch,
 * under the alias the vault names (`jobseal-kek-<epoch>`), in StrongBox when the device has one
 * (falling back to the TEE when StrongBox refuses the key). Keys are non-exportable; [delete]
 * destroys the key and checks that it is gone, which is what makes an old copy of the vault
 * unreadable after a shred. Wrapped bytes are in [KeyWrapFormat].
 *
 * Keys need neither user authentication nor an unlocked device, so that the background sweep
 * ([io.jobseal.android.work.JobsealSyncWorker]) can shred while the phone is locked.
 *
 * @param context any context; only its package manager is read (StrongBox feature).
 * @param namespace prefixes every Keystore alias. Apps leave it empty; instrumented tests use a
 *   fresh one per test so that their vaults never touch the app's own keys (the Keystore is per
 *   app, and the tests run in the app's process).
 */
class AndroidKeystoreKeyStore(context: Context, private val namespace: String = "") : PlatformKeyStore {
    private val keyStore = java.security.KeyStore.getInstance(PROVIDER).apply { load(null) }
    private val strongBox = Build.VERSION.SDK_INT >= 28 &&
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    /** Whether new keys go to StrongBox (the device has one). */
    val usesStrongBox: Boolean get() = strongBox

    /** Creates the AES-256 key for [alias] (StrongBox first when present); refuses an existing alias. */
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

    /** Encrypts [plaintext] under [alias]'s key ([KeyWrapFormat.seal]). */
    override fun wrap(alias: String, plaintext: ByteArray): ByteArray = guard {
        KeyWrapFormat.seal(key(alias), alias, plaintext)
    }

    /** Decrypts bytes made by [wrap] under the same [alias] ([KeyWrapFormat.open]). */
    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray = guard {
        KeyWrapFormat.checkLength(wrapped)
        KeyWrapFormat.open(key(alias), alias, wrapped)
    }

    /** Destroys [alias]'s key and checks it is gone; deleting a missing alias is not an error. */
    override fun delete(alias: String) = guard {
        val name = entry(alias)
        if (keyStore.containsAlias(name)) keyStore.deleteEntry(name)
        // The shred relies on this key being gone: say so if the Keystore kept it.
        if (keyStore.containsAlias(name)) throw JobsealException.KeyStore("alias $alias still present after delete")
    }

    /** Deletes every key of this namespace (tests clean up with it); refuses an empty namespace. */
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
    }
}
