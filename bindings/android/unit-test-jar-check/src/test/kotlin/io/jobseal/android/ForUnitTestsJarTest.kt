// Why this file: app teams' local unit tests get libjobseal_ffi only from the forUnitTests jar;
// this checks that JNA loads it from there (no override, no library path) and that a vault opens.
package io.jobseal.android

import com.sun.jna.NativeLibrary
import com.sun.jna.Platform
import io.jobseal.JobVault
import io.jobseal.PlatformClock
import io.jobseal.PlatformKeyStore
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.nio.file.Files
import java.security.SecureRandom
import java.util.concurrent.ConcurrentHashMap
import javax.crypto.Cipher
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec

class ForUnitTestsJarTest {
    /** A unit test's keystore: AES-GCM keys in memory. */
    private class MemoryKeyStore : PlatformKeyStore {
        private val keys = ConcurrentHashMap<String, ByteArray>()
        override fun generate(alias: String) {
            keys[alias] = ByteArray(32).also { SecureRandom().nextBytes(it) }
        }
        override fun wrap(alias: String, plaintext: ByteArray): ByteArray {
            val iv = ByteArray(12).also { SecureRandom().nextBytes(it) }
            val c = Cipher.getInstance("AES/GCM/NoPadding")
            c.init(Cipher.ENCRYPT_MODE, SecretKeySpec(keys.getValue(alias), "AES"), GCMParameterSpec(128, iv))
            return iv + c.doFinal(plaintext)
        }
        override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
            val c = Cipher.getInstance("AES/GCM/NoPadding")
            c.init(Cipher.DECRYPT_MODE, SecretKeySpec(keys.getValue(alias), "AES"), GCMParameterSpec(128, wrapped, 0, 12))
            return c.doFinal(wrapped, 12, wrapped.size - 12)
        }
        override fun delete(alias: String) {
            keys.remove(alias)
        }
    }

    private object Clock : PlatformClock {
        override fun wallNowMs() = System.currentTimeMillis()
        override fun bootElapsedMs(): Long? = System.nanoTime() / 1_000_000
        override fun bootId(): String? = null
    }

    @Test
    fun `the library loads from the jar and a vault opens`() {
        // Nothing points JNA anywhere else.
        assertNull(System.getProperty("uniffi.component.jobseal_ffi.libraryOverride"))
        assertNull(System.getProperty("jna.library.path"))
        val jar = System.getProperty("jobseal.unit.test.jar")
        val resource = "${Platform.RESOURCE_PREFIX}/${System.mapLibraryName("jobseal_ffi")}"
        assertNotNull(javaClass.classLoader.getResource(resource), "$resource on the class path")
        assertTrue(javaClass.classLoader.getResource(resource).toString().startsWith("jar:"), "$resource comes from a jar")

        val dir = Files.createTempDirectory("jobseal-unit-jar")
        try {
            JobVault.open(dir.resolve("vault").toString(), MemoryKeyStore(), Clock).use { vault ->
                assertEquals(0, vault.listJobs().size)
                assertFalse(vault.syncStatus().enrolled)
            }
            // JNA extracted the library from the jar to a temporary file (not the build's target/).
            val loaded = NativeLibrary.getInstance("jobseal_ffi").file
            assertNotNull(loaded)
            assertFalse(loaded.path.contains("/target/"), "loaded ${loaded.path}, jar $jar")
        } finally {
            dir.toFile().deleteRecursively()
        }
    }
}
