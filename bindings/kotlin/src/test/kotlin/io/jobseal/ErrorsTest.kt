// JUnit tests of the errors the Kotlin bindings raise: one exception class per kind, messages
// without customer values, and a vault left unchanged and usable.
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

/**
 * Every error kind arrives as its own Kotlin exception class, with a message free of customer
 * values, and leaves the vault unchanged and usable (G8).
 */
class ErrorsTest {
    private lateinit var dir: TempDir
    private lateinit var clock: TestClock
    private lateinit var keystore: MemoryKeyStore
    private lateinit var vault: JobVault
    private lateinit var jobId: String

    @BeforeEach
    fun open() {
        dir = TempDir()
        clock = TestClock(Slot.inside)
        keystore = MemoryKeyStore()
        vault = JobVault.open(dir.resolve("vault"), keystore, clock)
        jobId = vault.ingestSheetJson(Sheets.json(start = Slot.start)).jobId
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    private fun assertValueFree(e: Exception) {
        val text = e.message.orEmpty() + e.toString()
        assertFalse(Sheets.values.any { text.contains(it) }, "an error message carries a customer value")
    }

    @Test
    fun `an unknown job is NotFound`() {
        val e = assertThrows<JobsealException.NotFound> { vault.job(UUID.randomUUID().toString()) }
        assertTrue(e.detail.contains("not found"))
        assertThrows<JobsealException.NotFound> { vault.reveal(UUID.randomUUID().toString()) }
        assertThrows<JobsealException.NotFound> { vault.advance(UUID.randomUUID().toString(), JobState.EN_ROUTE) }
    }

    @Test
    fun `malformed arguments are InvalidInput and are not echoed`() {
        val badId = assertThrows<JobsealException.InvalidInput> { vault.reveal("not-a-uuid ${Sheets.NAME}") }
        assertValueFree(badId)
        assertThrows<JobsealException.InvalidInput> { vault.auditLog("42") }

        val malformed = assertThrows<JobsealException.InvalidInput> {
            vault.ingestSheetJson(Sheets.json(start = Slot.start).replace("\"kind\": \"phone\"", "\"kind\": \"${Sheets.PHONE}\""))
        }
        assertValueFree(malformed)
        assertThrows<JobsealException.InvalidInput> { vault.ingestSheetJson("{ not json") }
        assertThrows<JobsealException.InvalidInput> {
            vault.ingestSheetJson(Sheets.json(start = Slot.start).replace("2030-06-12T08:00:00Z", "yesterday"))
        }

        vault.advance(jobId, JobState.ON_SITE)
        assertThrows<JobsealException.InvalidInput> { vault.closeJob(jobId, "") }
        assertThrows<JobsealException.InvalidInput> { vault.closeJob(jobId, "x".repeat(4001)) }
        assertThrows<JobsealException.InvalidInput> { vault.enrol("00", 5u) }
        assertThrows<JobsealException.InvalidInput> { vault.enrol(dispatchKeygen().publicKeyHex, 0u) }
        // Nothing was changed by any of it.
        assertEquals(1, vault.listJobs().size)
        assertEquals(JobState.ON_SITE, vault.job(jobId).state)
    }

    @Test
    fun `a flipped envelope byte is Tampered`() {
        val dispatch = dispatchKeygen()
        val bundle = vault.enrol(dispatch.publicKeyHex, 1u)
        val envelope = sealJobSheet(dispatch.secretKeyHex, bundle.json, 1u, Sheets.json(start = Slot.start))
        envelope[envelope.size - 20] = (envelope[envelope.size - 20].toInt() xor 0x80).toByte()
        assertValueFree(assertThrows<JobsealException.Tampered> { vault.receive(envelope) })
    }

    @Test
    fun `a refused reveal is AccessDenied with the reason`() {
        vault.advance(jobId, JobState.ON_SITE)
        vault.cancelJob(jobId)
        val e = assertThrows<JobsealException.AccessDenied> { vault.reveal(jobId) }
        assertEquals(DenialReason.Shredded(JobState.CANCELLED), e.reason)
        assertValueFree(e)
    }

    @Test
    fun `closing twice, closing from Assigned and moving backwards are Conflicts`() {
        assertThrows<JobsealException.Conflict> { vault.closeJob(jobId, "too early") }
        vault.advance(jobId, JobState.ON_SITE)
        assertThrows<JobsealException.Conflict> { vault.advance(jobId, JobState.EN_ROUTE) }
        assertThrows<JobsealException.Conflict> { vault.advance(jobId, JobState.COMPLETED) }
        vault.closeJob(jobId, "Done.")
        val second = assertThrows<JobsealException.Conflict> { vault.closeJob(jobId, "Done again.") }
        assertTrue(second.detail.contains("closed"))
        // A stale sheet version is a conflict too.
        val other = vault.ingestSheetJson(Sheets.json(start = Slot.start, version = 3))
        assertThrows<JobsealException.Conflict> {
            vault.ingestSheetJson(Sheets.json(jobId = other.jobId, start = Slot.start, version = 2))
        }
    }

    @Test
    fun `a failing keystore is a clean KeyStore error and the vault recovers when it works again`() {
        vault.advance(jobId, JobState.ON_SITE)
        assertEquals(Sheets.NAME, vault.reveal(jobId).visible("customer_name"))

        keystore.failing = true
        val e = assertThrows<JobsealException.KeyStore> { vault.closeJob(jobId, "Installed.") }
        assertTrue(e.detail.contains("not authenticated"))
        assertValueFree(e)

        keystore.failing = false
        // The close was recorded before the keystore was needed; the next call finishes the shred.
        val job = vault.listJobs().single()
        assertEquals(JobState.COMPLETED, job.state)
        assertEquals("Installed.", job.report)
        assertThrows<JobsealException.AccessDenied> { vault.reveal(jobId) }
        assertTrue(vault.verifyAudit().valid)

        // The vault goes on working: a new job, a reveal, a close.
        val next = vault.ingestSheetJson(Sheets.json(start = Slot.start)).jobId
        vault.advance(next, JobState.EN_ROUTE)
        assertEquals(Sheets.PHONE, vault.reveal(next).visible("phone"))
        vault.closeJob(next, "Done.")
    }

    @Test
    fun `a keystore that throws a foreign exception is still a KeyStore error`() {
        vault.advance(jobId, JobState.ON_SITE)
        keystore.throwUnexpected = true
        val e = assertThrows<JobsealException.KeyStore> { vault.cancelJob(jobId) }
        assertTrue(e.detail.contains("IllegalStateException"))
        keystore.throwUnexpected = false
        assertEquals(JobState.CANCELLED, vault.job(jobId).state)

        // Opening with a keystore that fails is refused cleanly, and a working one opens it after.
        vault.close()
        keystore.failing = true
        assertThrows<JobsealException.KeyStore> { JobVault.open(dir.resolve("vault"), keystore, clock) }
        keystore.failing = false
        vault = JobVault.open(dir.resolve("vault"), keystore, clock)
        assertEquals(1, vault.listJobs().size)
    }

    @Test
    fun `exceptions are ordinary Kotlin exceptions an app can catch by kind`() {
        val kinds = listOf<() -> Unit>(
            { vault.job(UUID.randomUUID().toString()) },
            { vault.job("nope") },
            { vault.closeJob(jobId, "early") },
        ).map { call ->
            try {
                call()
                "none"
            } catch (e: JobsealException) {
                when (e) {
                    is JobsealException.NotFound -> "not-found"
                    is JobsealException.InvalidInput -> "invalid-input"
                    is JobsealException.Conflict -> "conflict"
                    else -> "other"
                }
            }
        }
        assertEquals(listOf("not-found", "invalid-input", "conflict"), kinds)
    }
}
