// JUnit tests of a job's life in the vault through the Kotlin bindings, on a clock the test
// controls: access windows, states, reveal, close and shredding.
package io.jobseal

import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.time.Duration
import java.time.Instant
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** A job's life on the device, with a clock the test controls (G1, G2, G3, G7). */
class LifecycleTest {
    private lateinit var dir: TempDir
    private lateinit var clock: TestClock
    private lateinit var keystore: MemoryKeyStore
    private lateinit var vault: JobVault

    @BeforeEach
    fun open() {
        dir = TempDir()
        clock = TestClock(Slot.before, boot = 1_000)
        keystore = MemoryKeyStore()
        vault = JobVault.open(dir.resolve("vault"), keystore, clock)
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    @Test
    fun `reveals follow the state and the access window, and every one is audited`() {
        val job = vault.ingestSheetJson(Sheets.json(start = Slot.start))
        assertEquals(JobState.ASSIGNED, job.state)
        assertEquals(Slot.opens.toEpochMilli(), job.access.opensAtMs)
        assertEquals(listOf("customer_name", "phone", "address", "door_code"), job.fields.map { it.name })
        assertEquals(FieldKind.DOOR_CODE, job.fields.last().kind)
        assertNull(job.deliveredVia, "a plaintext ingest has no delivery key")

        // Assigned: no field is shown in this state.
        var r = vault.reveal(job.jobId)
        assertEquals(4, r.fields.size)
        assertTrue(r.hidden("customer_name") is DenialReason.WrongState)

        // En route, but before the window opens.
        vault.advance(job.jobId, JobState.EN_ROUTE)
        r = vault.reveal(job.jobId)
        assertEquals(DenialReason.NotYetOpen(Slot.opens.toEpochMilli()), r.hidden("customer_name"))

        // Inside the window: name, phone and address; the door code waits for on-site.
        clock.set(Slot.inside)
        r = vault.reveal(job.jobId)
        assertEquals(Sheets.NAME, r.visible("customer_name"))
        assertEquals(Sheets.ADDRESS, r.visible("address"))
        val wrong = r.hidden("door_code")
        assertEquals(DenialReason.WrongState(JobState.EN_ROUTE, listOf(JobState.ON_SITE)), wrong)
        val name = r.fields.first().access as FieldAccess.Visible
        assertEquals(Slot.closes.toEpochMilli(), name.untilMs)
        assertFalse(r.toString().contains(Sheets.NAME), "toString() must redact revealed values")

        vault.advance(job.jobId, JobState.ON_SITE)
        r = vault.reveal(job.jobId)
        assertEquals(Sheets.DOOR_CODE, r.visible("door_code"))
        assertEquals(JobState.ON_SITE, r.state)

        // After the window: hidden, and setting the phone's clock back does not reopen it.
        clock.set(Slot.closes.plus(Duration.ofMinutes(1)))
        assertTrue(vault.reveal(job.jobId).hidden("customer_name") is DenialReason.WindowClosed)
        clock.set(Slot.inside)
        assertTrue(vault.reveal(job.jobId).hidden("customer_name") is DenialReason.WindowClosed)
        assertTrue(vault.trustedNowMs() > Slot.closes.toEpochMilli())
        // Nor does a reboot (a new boot id, the boot clock back near zero) with the clock set back.
        clock.reboot(uptimeMs = 30_000)
        assertTrue(vault.reveal(job.jobId).hidden("customer_name") is DenialReason.WindowClosed)

        val events = vault.auditLog(job.jobId)
        // One audit event per reveal, naming each field shown and each refused with its reason.
        val reveals = events.filter { it.kind == AuditKind.REVEAL }
        assertEquals(setOf("customer_name", "phone", "address", "door_code"), reveals.flatMap { it.fieldsShown }.toSet())
        assertTrue(events.any { e ->
            e.kind == AuditKind.REVEAL_DENIED && e.fieldsShown.isEmpty() &&
                e.fieldsRefused.any { it.name == "customer_name" && it.reason == "window-closed" }
        })
        assertTrue(events.any { it.kind == AuditKind.TRANSITION && it.state == JobState.ON_SITE })
        val leaked = events.filter { e -> Sheets.values.any { v -> e.toString().contains(v) } }
        assertTrue(leaked.isEmpty(), "audit events must not carry customer values")
        val check = vault.verifyAudit()
        assertTrue(check.valid)
        assertEquals(vault.auditLog(null).size.toULong(), check.events)
    }

    @Test
    fun `closing shreds the job, keeps the report, and refuses every later reveal`() {
        val job = vault.ingestSheetJson(Sheets.json(start = Slot.start))
        clock.set(Slot.inside)
        vault.advance(job.jobId, JobState.ON_SITE)
        assertEquals(Sheets.PHONE, vault.reveal(job.jobId).visible("phone"))
        val epoch = vault.epoch()
        val aliasesBefore = keystore.aliases

        val outcome = vault.closeJob(job.jobId, "Line activated; optical power OK.")
        assertEquals(JobState.COMPLETED, outcome.state)
        assertEquals(4u, outcome.fieldsDestroyed)
        assertEquals(epoch + 1u, outcome.epoch)
        assertEquals(epoch + 1u, vault.epoch())
        // The old epoch's key is gone from the keystore: stray copies of the wrapped keys are dead.
        assertTrue((aliasesBefore - keystore.aliases).isNotEmpty(), "the previous KEK must be deleted")

        val denied = assertThrows<JobsealException.AccessDenied> { vault.reveal(job.jobId) }
        assertEquals(DenialReason.Shredded(JobState.COMPLETED), denied.reason)

        val closed = vault.job(job.jobId)
        assertEquals(JobState.COMPLETED, closed.state)
        assertNotNull(closed.shreddedAtMs)
        assertTrue(closed.fields.isEmpty())
        assertNull(closed.work)
        assertEquals("Line activated; optical power OK.", closed.report)

        // A closed job cannot be closed again nor moved.
        assertThrows<JobsealException.Conflict> { vault.closeJob(job.jobId, "again") }
        assertThrows<JobsealException.Conflict> { vault.advance(job.jobId, JobState.ON_SITE) }
        assertTrue(vault.verifyAudit().valid)
        assertTrue(vault.auditLog(job.jobId).any { it.kind == AuditKind.SHREDDED })
    }

    @Test
    fun `cancel shreds, hard expiry shreds at the next call, and nothing survives on disk`() {
        val cancelled = vault.ingestSheetJson(Sheets.json(start = Slot.start))
        val expiring = vault.ingestSheetJson(Sheets.json(start = Slot.start, hardExpiry = Slot.closes))
        clock.set(Slot.inside)
        vault.advance(cancelled.jobId, JobState.EN_ROUTE)
        assertEquals(JobState.CANCELLED, vault.cancelJob(cancelled.jobId).state)

        clock.set(Slot.closes.plus(Duration.ofSeconds(1)))
        val swept = vault.sweep()
        assertEquals(listOf(expiring.jobId), swept.map { it.jobId })
        assertEquals(JobState.EXPIRED, swept.single().state)
        assertEquals(JobState.EXPIRED, vault.job(expiring.jobId).state)
        assertTrue(vault.sweep().isEmpty())

        vault.close()
        val leaks = filesContaining(dir.path, Sheets.values)
        assertTrue(leaks.isEmpty(), "customer values found on disk in ${leaks.size} file(s)")
        vault = JobVault.open(dir.resolve("vault"), keystore, clock)
        assertEquals(2, vault.listJobs().size)
    }

    @Test
    fun `the vault reopens with the same keystore and refuses a second open of its folder`() {
        val job = vault.ingestSheetJson(Sheets.json(start = Slot.start))
        val second = assertThrows<JobsealException.Storage> {
            JobVault.open(dir.resolve("vault"), keystore, clock)
        }
        assertTrue(second.detail.contains("in use"))
        vault.close()
        vault = JobVault.open(dir.resolve("vault"), keystore, clock)
        assertEquals(job.jobId, vault.listJobs().single().jobId)
        // Another keystore does not hold this vault's key.
        vault.close()
        assertThrows<JobsealException.KeyStore> {
            JobVault.open(dir.resolve("vault"), MemoryKeyStore(), clock)
        }
        vault = JobVault.open(dir.resolve("vault"), keystore, clock)
    }

    @Test
    fun `the software keystore opens a vault for tests and desktop tools`() {
        val other = TempDir()
        try {
            JobVault.openWithSoftwareKeystore(other.resolve("v"), clock).use { v ->
                val job = v.ingestSheetJson(Sheets.json(start = Slot.start))
                clock.set(Slot.inside)
                v.advance(job.jobId, JobState.ON_SITE)
                assertEquals(Sheets.DOOR_CODE, v.reveal(job.jobId).visible("door_code"))
            }
            JobVault.openWithSoftwareKeystore(other.resolve("v"), clock).use { v ->
                assertEquals(1, v.listJobs().size)
            }
        } finally {
            other.close()
        }
    }

    @Test
    fun `a clock that throws falls back to the system clock instead of failing`() {
        val broken = object : PlatformClock {
            override fun wallNowMs(): Long = throw IllegalStateException("clock service unavailable")
            override fun bootElapsedMs(): Long? = throw JobsealException.Internal("no boot clock")
            override fun bootId(): String? = throw IllegalStateException("no boot count")
        }
        val other = TempDir()
        try {
            JobVault.open(other.resolve("v"), MemoryKeyStore(), broken).use { v ->
                val now = v.trustedNowMs()
                assertTrue(Math.abs(now - System.currentTimeMillis()) < 60_000)
                val start = Instant.ofEpochMilli(now).plus(Duration.ofMinutes(30))
                v.ingestSheetJson(Sheets.json(start = start))
            }
        } finally {
            other.close()
        }
    }
}
