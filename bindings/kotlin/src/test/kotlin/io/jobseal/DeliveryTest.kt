// JUnit tests of enrolment and sealed job-sheet delivery through the Kotlin bindings, the dispatch
// side played by the bindings' own sealing functions.
package io.jobseal

import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.util.UUID
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Enrolment and sealed delivery of job sheets, dispatch side included (G4, G5). */
class DeliveryTest {
    private lateinit var dir: TempDir
    private lateinit var clock: TestClock
    private lateinit var vault: JobVault
    private val dispatch = dispatchKeygen()

    @BeforeEach
    fun open() {
        dir = TempDir()
        clock = TestClock(Slot.before)
        vault = JobVault.open(dir.resolve("vault"), MemoryKeyStore(), clock)
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    @Test
    fun `enrolment creates the device keys once and publishes a bundle`() {
        assertEquals(64, dispatch.publicKeyHex.length)
        assertFalse(dispatch.toString().contains(dispatch.secretKeyHex), "toString() must hide the secret key")
        assertThrows<JobsealException.Enrolment> { vault.deviceBundle() }

        val bundle = vault.enrol(dispatch.publicKeyHex, 5u)
        UUID.fromString(bundle.deviceId)
        assertEquals(listOf(1u, 2u, 3u, 4u, 5u), bundle.prekeyIds)
        assertTrue(bundle.json.contains("\"jobseal.bundle.v1\""))
        assertTrue(bundle.json.contains(bundle.identityKeyHex))
        assertEquals(bundle, vault.deviceBundle())

        assertThrows<JobsealException.Enrolment> { vault.enrol(dispatch.publicKeyHex, 5u) }
        val more = vault.addPrekeys(3u)
        assertEquals(8, more.prekeyIds.size)
        assertEquals(bundle.deviceId, more.deviceId)
    }

    @Test
    fun `a sheet sealed by dispatch is received, opened once, and its prekey is gone`() {
        val bundle = vault.enrol(dispatch.publicKeyHex, 3u)
        val sheet = Sheets.json(start = Slot.start)
        val envelope = sealJobSheet(dispatch.secretKeyHex, bundle.json, 2u, sheet)
        assertFalse(String(envelope, Charsets.ISO_8859_1).contains(Sheets.NAME), "the envelope is encrypted")

        val job = vault.receive(envelope)
        assertEquals(Delivery.Prekey(2u), job.deliveredVia)
        assertEquals(listOf(1u, 3u), vault.deviceBundle().prekeyIds)
        clock.set(Slot.inside)
        vault.advance(job.jobId, JobState.ON_SITE)
        assertEquals(Sheets.DOOR_CODE, vault.reveal(job.jobId).visible("door_code"))

        // Replaying the same envelope is refused and changes nothing.
        assertThrows<JobsealException.Conflict> { vault.receive(envelope) }
        assertEquals(JobState.ON_SITE, vault.job(job.jobId).state)

        // Without a prekey, dispatch seals to the identity key, and the job says so.
        val fallback = vault.receive(sealJobSheet(dispatch.secretKeyHex, bundle.json, null, Sheets.json(start = Slot.start)))
        assertEquals(Delivery.Identity, fallback.deliveredVia)
    }

    @Test
    fun `forged, altered and misaddressed envelopes are refused as tampered`() {
        val bundle = vault.enrol(dispatch.publicKeyHex, 3u)
        val sheet = Sheets.json(start = Slot.start)
        val envelope = sealJobSheet(dispatch.secretKeyHex, bundle.json, 1u, sheet)

        for (i in listOf(envelope.size - 1, envelope.size / 2, 60)) {
            val flipped = envelope.copyOf().also { it[i] = (it[i].toInt() xor 0x01).toByte() }
            assertThrows<JobsealException.Tampered>("byte $i flipped") { vault.receive(flipped) }
        }
        assertThrows<JobsealException.Tampered> { vault.receive(envelope.copyOf(envelope.size - 10)) }
        assertThrows<JobsealException.Tampered> { vault.receive(ByteArray(0)) }

        val forger = dispatchKeygen()
        assertThrows<JobsealException.Tampered> {
            vault.receive(sealJobSheet(forger.secretKeyHex, bundle.json, 1u, sheet))
        }

        val otherDir = TempDir()
        try {
            JobVault.open(otherDir.resolve("v"), MemoryKeyStore(), clock).use { other ->
                val otherBundle = other.enrol(dispatch.publicKeyHex, 1u)
                assertThrows<JobsealException.Tampered> {
                    vault.receive(sealJobSheet(dispatch.secretKeyHex, otherBundle.json, 1u, sheet))
                }
            }
        } finally {
            otherDir.close()
        }

        // None of that consumed the prekey: the genuine envelope still opens.
        assertTrue(vault.listJobs().isEmpty())
        assertEquals(1u, (vault.receive(envelope).deliveredVia as Delivery.Prekey).id)
    }

    @Test
    fun `sealing refuses bad keys, bundles and sheets without echoing them`() {
        val bundle = vault.enrol(dispatch.publicKeyHex, 1u)
        val sheet = Sheets.json(start = Slot.start)
        assertThrows<JobsealException.InvalidInput> { sealJobSheet("zz", bundle.json, 1u, sheet) }
        assertThrows<JobsealException.InvalidInput> { sealJobSheet(dispatch.secretKeyHex, "{}", 1u, sheet) }
        assertThrows<JobsealException.InvalidInput> { sealJobSheet(dispatch.secretKeyHex, bundle.json, 9u, sheet) }
        val bad = assertThrows<JobsealException.InvalidInput> {
            sealJobSheet(dispatch.secretKeyHex, bundle.json, 1u, sheet.replace("\"version\": 1", "\"version\": 0"))
        }
        assertFalse(Sheets.values.any { bad.message!!.contains(it) })
    }
}
