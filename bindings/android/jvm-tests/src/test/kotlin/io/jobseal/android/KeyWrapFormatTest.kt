// Why this file: AndroidKeystoreKeyStore's wrap format and cipher calls are what a phone's vault key
// depends on; these run the same code (KeyWrapFormat) with a software AES-256 key on the JVM.
package io.jobseal.android

import io.jobseal.JobsealException
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

class KeyWrapFormatTest {
    private fun key(): SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
    private val alias = "jobseal-kek-3"
    private val epochKey = ByteArray(32) { it.toByte() }

    @Test
    fun `round trip, layout IV then ciphertext then tag, alias as associated data`() {
        val k = key()
        val wrapped = KeyWrapFormat.seal(k, alias, epochKey)
        assertEquals(KeyWrapFormat.IV_BYTES + epochKey.size + KeyWrapFormat.TAG_BYTES, wrapped.size)
        assertArrayEquals(epochKey, KeyWrapFormat.open(k, alias, wrapped))
        // The layout, decoded by hand: the first 12 bytes are the GCM nonce, the alias the AAD.
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, k, GCMParameterSpec(128, wrapped.copyOfRange(0, 12)))
        cipher.updateAAD(alias.toByteArray())
        assertArrayEquals(epochKey, cipher.doFinal(wrapped.copyOfRange(12, wrapped.size)))
        // The plaintext does not appear in the output.
        assertFalse(wrapped.toList().windowed(8).contains(epochKey.copyOfRange(0, 8).toList()))
    }

    @Test
    fun `every wrap takes a fresh IV`() {
        val k = key()
        val ivs = (1..20).map { KeyWrapFormat.seal(k, alias, epochKey).copyOfRange(0, 12).toList() }.toSet()
        assertEquals(20, ivs.size)
    }

    @Test
    fun `another alias, another key, a flipped byte or a short input are KeyStore errors`() {
        val k = key()
        val wrapped = KeyWrapFormat.seal(k, alias, epochKey)
        assertThrows<JobsealException.KeyStore> { KeyWrapFormat.open(k, "jobseal-kek-4", wrapped) }
        assertThrows<JobsealException.KeyStore> { KeyWrapFormat.open(key(), alias, wrapped) }
        for (i in wrapped.indices) {
            val bad = wrapped.copyOf().also { it[i] = (it[i].toInt() xor 0x01).toByte() }
            assertThrows<JobsealException.KeyStore>("byte $i flipped") { KeyWrapFormat.open(k, alias, bad) }
        }
        val short = assertThrows<JobsealException.KeyStore> { KeyWrapFormat.open(k, alias, wrapped.copyOf(27)) }
        assertTrue(short.detail.contains("too short"))
        // Messages name no key material: only the exception class.
        val e = assertThrows<JobsealException.KeyStore> { KeyWrapFormat.open(key(), alias, wrapped) }
        assertEquals("key unwrap/wrap failed: AEADBadTagException", e.detail)
    }
}
