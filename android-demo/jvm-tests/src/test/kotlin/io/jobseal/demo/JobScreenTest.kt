// JUnit tests of the demo's job-screen presenter (core-ui JobPresenter) over a real vault on the
// JVM, with a test clock: what the job screen shows and refuses, without an Android device.
package io.jobseal.demo

import io.jobseal.JobState
import io.jobseal.JobVault
import io.jobseal.JobsealException
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.time.Duration
import java.util.UUID
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/**
 * The job screen's presenter over a real vault (software-free: the in-memory AES-GCM keystore),
 * with a test clock: reveal by window and state, the countdown, the state buttons, the report
 * rules, and reveal refused after the close.
 */
class JobScreenTest {
    private lateinit var dir: TempDir
    private lateinit var clock: TestClock
    private lateinit var vault: JobVault
    private val jobId = UUID.randomUUID().toString()

    private fun presenter() = JobPresenter(vault, jobId, clock::monotonicMs, utc)

    @BeforeEach
    fun open() {
        dir = TempDir()
        clock = TestClock(Slot.before, boot = 1_000_000)
        vault = JobVault.open(dir.resolve("vault"), MemoryKeyStore(), clock)
        vault.ingestSheetJson(demoSheet(jobId = jobId, start = Slot.start))
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    @Test
    fun `the job screen shows work details, field names and the buttons of its state, no value`() {
        val model = presenter().load().ok()
        assertEquals("WO-DEMO-0001", model.workOrder)
        assertEquals("Assigned", model.state)
        assertEquals("08:00–10:00", model.slot)
        assertEquals("Lyon 3e", model.area)
        assertEquals(listOf("Fit the optical outlet", "Activate the line"), model.tasks)
        assertEquals(listOf("Customer", "Phone", "Address", "Door code"), model.fieldLabels)
        assertEquals(listOf(JobAction.EN_ROUTE, JobAction.ON_SITE), model.actions)
        assertTrue(model.canReveal)
        assertEquals("Customer details from 07:00", model.access)
        assertTrue(Sheets.values.none { model.toString().contains(it) }, "the model holds no customer value")
    }

    @Test
    fun `reveal is refused before the access window, whatever the state`() {
        presenter().perform(JobAction.ON_SITE).ok()
        val rows = presenter().reveal().ok().rows(clock.monotonicMs())
        assertTrue(rows.none { it.visible })
        assertEquals(List(4) { "Available from 07:00" }, rows.map { it.status })
    }

    @Test
    fun `inside the window the state decides, and values hide themselves when their time is up`() {
        clock.advance(Duration.between(Slot.before, Slot.inside))
        val p = presenter()

        val assigned = p.reveal().ok().rows(clock.monotonicMs())
        assertTrue(assigned.none { it.visible })
        assertEquals("Shown when en route or on site", assigned.first().status)

        assertEquals(listOf(JobAction.ON_SITE, JobAction.CLOSE), p.perform(JobAction.EN_ROUTE).ok().actions)
        val enRoute = p.reveal().ok()
        val rows = enRoute.rows(clock.monotonicMs()).associateBy { it.name }
        assertEquals(Sheets.NAME, rows.getValue("customer_name").value)
        assertEquals(Sheets.ADDRESS, rows.getValue("address").value)
        // Until 12:00 at 08:30.
        assertEquals("Hidden in 3 h 30 min", rows.getValue("phone").status)
        assertNull(rows.getValue("door_code").value)
        assertEquals("Shown when on site", rows.getValue("door_code").status)
        assertFalse(rows.values.joinToString().contains(Sheets.NAME), "rows print no value")
        assertFalse(enRoute.toString().contains(Sheets.NAME))

        // The countdown runs on the monotonic clock, from the reveal's trusted instant.
        clock.advance(Duration.ofHours(3).plusMinutes(25))
        assertEquals("Hidden in 5:00", enRoute.rows(clock.monotonicMs()).first().status)
        clock.advance(Duration.ofSeconds(299).plusMillis(500))
        assertEquals("Hidden in 0:01", enRoute.rows(clock.monotonicMs()).first().status)
        clock.advance(Duration.ofMillis(500))
        val expired = enRoute.rows(clock.monotonicMs())
        assertTrue(expired.none { it.visible }, "past untilMs the screen shows nothing")
        assertEquals("Access window closed at 12:00", expired.first().status)
        assertFalse(enRoute.anyVisible(clock.monotonicMs()))

        // And the vault agrees when asked again.
        assertEquals("Access window closed at 12:00", p.reveal().ok().rows(clock.monotonicMs()).first().status)
    }

    @Test
    fun `on site shows the door code, and a move the lifecycle forbids is refused with a message`() {
        clock.advance(Duration.between(Slot.before, Slot.inside))
        val p = presenter()
        val onSite = p.perform(JobAction.ON_SITE).ok()
        assertEquals("On site", onSite.state)
        assertEquals(listOf(JobAction.CLOSE), onSite.actions)
        assertEquals(Sheets.DOOR_CODE, p.reveal().ok().rows(clock.monotonicMs()).single { it.name == "door_code" }.value)

        val refused = p.perform(JobAction.EN_ROUTE).failed()
        assertTrue(refused.error is JobsealException.Conflict)
        assertEquals("This job changed meanwhile; it was reloaded.", refused.message)
    }

    @Test
    fun `the report is checked before closing`() {
        val p = presenter()
        assertEquals(ReportCheck.Invalid("Write what was done before closing the job."), p.checkReport("   \n "))
        assertEquals(ReportCheck.Ok("Outlet fitted."), p.checkReport("  Outlet fitted.\n"))
        assertTrue(p.checkReport("x".repeat(4000)) is ReportCheck.Ok)
        assertEquals(
            ReportCheck.Invalid("The report is too long: 4001 characters, at most 4000."),
            p.checkReport("x".repeat(4001)),
        )
        // Characters, not UTF-16 units: 4000 emoji are 8000 Java chars but a valid report.
        assertTrue(p.checkReport("\uD83D\uDD27".repeat(4000)) is ReportCheck.Ok)
        // An invalid report does not reach the vault.
        clock.advance(Duration.between(Slot.before, Slot.inside))
        p.perform(JobAction.ON_SITE).ok()
        assertTrue(p.close(" ").failed().error is JobsealException.InvalidInput)
        assertEquals(JobState.ON_SITE, vault.job(jobId).state)
    }

    @Test
    fun `after the close the data is destroyed and reveal is refused`() {
        clock.advance(Duration.between(Slot.before, Slot.inside))
        val p = presenter()
        p.perform(JobAction.ON_SITE).ok()
        val shown = p.reveal().ok()
        assertTrue(shown.anyVisible(clock.monotonicMs()))

        val outcome = p.close("Outlet fitted, line active (demo report).").ok()
        assertEquals(JobState.COMPLETED, outcome.state)
        assertEquals(4u, outcome.fieldsDestroyed)

        val denied = p.reveal().failed()
        assertTrue(denied.error is JobsealException.AccessDenied)
        assertEquals("Destroyed: job completed", denied.message)

        val model = p.load().ok()
        assertEquals("Completed", model.state)
        assertFalse(model.canReveal)
        assertTrue(model.actions.isEmpty())
        assertEquals("Outlet fitted, line active (demo report).", model.report)
        assertEquals("Customer data destroyed at 08:30", model.access)
        assertTrue(p.close("again").failed().error is JobsealException.Conflict)
    }
}
