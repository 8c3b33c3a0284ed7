// JUnit tests of the demo's today list (core-ui TodayPresenter) and of every text the screens
// show (core-ui Texts): countdowns, durations, denials and error messages.
package io.jobseal.demo

import io.jobseal.DenialReason
import io.jobseal.JobState
import io.jobseal.JobVault
import io.jobseal.JobsealException
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.time.Duration
import java.time.Instant
import java.time.LocalDate
import java.util.UUID
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class TodayAndTextsTest {
    @Test
    fun `today lists live jobs due today in slot order, then the ones done today`() {
        TempDir().use { dir ->
            val clock = TestClock(Slot.inside, boot = 1_000_000)
            JobVault.open(dir.resolve("vault"), MemoryKeyStore(), clock).use { vault ->
                val afternoon = UUID.randomUUID().toString()
                val morning = UUID.randomUUID().toString()
                val early = UUID.randomUUID().toString()
                val tomorrow = UUID.randomUUID().toString()
                vault.ingestSheetJson(demoSheet(afternoon, Instant.parse("2030-06-12T14:00:00Z"), "WO-DEMO-PM"))
                vault.ingestSheetJson(demoSheet(morning, Slot.start, "WO-DEMO-AM"))
                vault.ingestSheetJson(demoSheet(early, Instant.parse("2030-06-12T07:00:00Z"), "WO-DEMO-EARLY"))
                vault.ingestSheetJson(demoSheet(tomorrow, Instant.parse("2030-06-13T08:00:00Z"), "WO-DEMO-TOMORROW"))
                vault.advance(early, JobState.ON_SITE)
                vault.closeJob(early, "Done (demo report).")

                val today = TodayPresenter(vault, utc).load().ok()
                assertEquals(LocalDate.parse("2030-06-12"), today.date)
                assertEquals(listOf("WO-DEMO-AM", "WO-DEMO-PM"), today.toDo.map { it.workOrder })
                assertEquals(listOf("WO-DEMO-EARLY"), today.done.map { it.workOrder })
                assertEquals(1, today.later)

                val am = today.toDo[0]
                assertEquals("08:00–10:00", am.slot)
                assertEquals("Assigned", am.state)
                assertEquals("Customer details until 12:00 (3 h 30 min left)", am.access)
                assertEquals("Customer details from 13:00", today.toDo[1].access)
                assertEquals("Completed", today.done[0].state)
                assertEquals("Customer data destroyed at 08:30", today.done[0].access)
                assertTrue(Sheets.values.none { today.toString().contains(it) }, "the list holds no customer value")

                clock.advance(Duration.ofHours(4))
                assertEquals("Access window closed at 12:00", TodayPresenter(vault, utc).load().ok().toDo[0].access)
            }
        }
    }

    @Test
    fun `countdown and durations`() {
        assertEquals("0:00", utc.countdown(0))
        assertEquals("0:00", utc.countdown(-5))
        assertEquals("0:01", utc.countdown(1))
        assertEquals("0:01", utc.countdown(1000))
        assertEquals("4:59", utc.countdown(299_000))
        assertEquals("59:59", utc.countdown(3_599_000))
        assertEquals("1 h 00 min", utc.countdown(3_600_000))
        assertEquals("1 h 05 min", utc.countdown(3_900_000))
        assertEquals("1 min", utc.minutes(1))
        assertEquals("2 h 00 min", utc.minutes(7_200_000))
    }

    @Test
    fun `denials and errors read as the technician needs, without values`() {
        val at = Instant.parse("2030-06-12T07:00:00Z").toEpochMilli()
        assertEquals("Available from 07:00", utc.denial(DenialReason.NotYetOpen(at)))
        assertEquals("Access window closed at 07:00", utc.denial(DenialReason.WindowClosed(at)))
        assertEquals("Shown when on site", utc.denial(DenialReason.WrongState(JobState.ASSIGNED, listOf(JobState.ON_SITE))))
        assertEquals("Destroyed: job withdrawn by dispatch", utc.denial(DenialReason.Shredded(JobState.REVOKED)))
        assertEquals("Dispatch refused the request (HTTP 503).", utc.error(JobsealException.Dispatch(503u, "unavailable")))
        assertEquals(
            "No connection to dispatch. Nothing is lost; it will be sent later.",
            utc.error(JobsealException.Network("no answer")),
        )
    }
}
