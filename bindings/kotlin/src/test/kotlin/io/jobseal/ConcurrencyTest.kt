// JUnit tests of one vault shared by many threads through the Kotlin bindings: what an app does
// when its screens and background workers use the same vault.
package io.jobseal

import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** One vault shared by many threads, as an app shares it between its screens and workers. */
class ConcurrencyTest {
    @Test
    fun `eight threads reveal, advance and close on one vault without losing an audit event`() {
        TempDir().use { dir ->
            val clock = TestClock(Slot.inside, boot = 5_000)
            val keystore = MemoryKeyStore()
            JobVault.open(dir.resolve("vault"), keystore, clock).use { vault ->
                val jobs = (1..8).map { vault.ingestSheetJson(Sheets.json(start = Slot.start)).jobId }
                val threads = 8
                val rounds = 25
                val start = CountDownLatch(1)
                val reveals = AtomicInteger()
                val failures = Collections.synchronizedList(mutableListOf<Throwable>())
                val pool = Executors.newFixedThreadPool(threads)
                repeat(threads) { t ->
                    pool.submit {
                        start.await()
                        try {
                            val own = jobs[t]
                            val shared = jobs[(t + 1) % jobs.size]
                            vault.advance(own, JobState.EN_ROUTE)
                            repeat(rounds) { i ->
                                try {
                                    val r = vault.reveal(if (i % 2 == 0) own else shared)
                                    if (r.fields.any { it.access is FieldAccess.Visible }) reveals.incrementAndGet()
                                } catch (e: JobsealException.AccessDenied) {
                                    // The neighbour closed its job: refused as shredded, as it must be.
                                    check(e.reason is DenialReason.Shredded)
                                }
                                if (i == rounds / 2) vault.advance(own, JobState.ON_SITE)
                                vault.listJobs()
                            }
                            if (t % 2 == 0) vault.closeJob(own, "Done by worker $t.")
                        } catch (e: Throwable) {
                            failures.add(e)
                        }
                    }
                }
                start.countDown()
                pool.shutdown()
                assertTrue(pool.awaitTermination(120, TimeUnit.SECONDS), "workers did not finish")
                assertTrue(failures.isEmpty(), "worker failures: ${failures.map { it.javaClass.simpleName + ": " + it.message }}")

                val all = vault.listJobs()
                assertEquals(4, all.count { it.state == JobState.COMPLETED })
                assertEquals(4, all.count { it.state == JobState.ON_SITE })
                // Four closes, four rotations; every retired key is gone from the keystore.
                assertEquals(5uL, vault.epoch())
                assertEquals(1, keystore.aliases.size)

                val log = vault.auditLog(null)
                val revealEvents = log.filter { it.kind == AuditKind.REVEAL || it.kind == AuditKind.REVEAL_DENIED }
                // Every reveal call that showed a field left one audit event naming every field of
                // its job (4 fields), shown or refused; calls on a job another thread had closed
                // were refused before reading any field.
                assertTrue(revealEvents.size >= reveals.get())
                assertTrue(revealEvents.all { it.fieldsShown.size + it.fieldsRefused.size == 4 })
                assertEquals(log.map { it.seq }, (1..log.size).map { it.toULong() })
                assertTrue(vault.verifyAudit().valid)
            }
        }
    }
}
