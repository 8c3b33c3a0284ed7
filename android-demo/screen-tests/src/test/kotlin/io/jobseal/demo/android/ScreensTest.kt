// Robolectric tests of the demo app's activities on the JVM, without an Android SDK: the screens
// a technician uses, over the real vault.
package io.jobseal.demo.android

import android.content.Intent
import android.os.Looper
import android.view.View
import android.view.WindowManager
import android.widget.Button
import android.widget.EditText
import android.widget.TextView
import io.jobseal.HttpRequest
import io.jobseal.HttpResponse
import io.jobseal.JobState
import io.jobseal.JobVault
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import io.jobseal.demo.demoSheet
import io.jobseal.demo.utc
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.time.Duration
import java.util.UUID
import java.util.concurrent.Executor
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.Shadows.shadowOf
import org.robolectric.android.controller.ActivityController
import org.robolectric.annotation.Config

/**
 * The demo's screens under Robolectric (Android 15 framework on the JVM) over the real vault:
 * the list, the job screen with FLAG_SECURE, reveal refused then shown with its countdown and
 * hidden on time and on leaving, the state buttons, the close with a checked report and reveal
 * refused after it, and the sync screen offline. The keystore is the in-memory test double:
 * Robolectric has no AndroidKeyStore; the emulator tests (app/src/androidTest) use the real one.
 */
@RunWith(RobolectricTestRunner::class)
@Config(sdk = [35])
class ScreensTest {
    private lateinit var dir: TempDir
    private lateinit var clock: TestClock
    private lateinit var vault: JobVault
    private val jobId = UUID.randomUUID().toString()

    /** A transport with no network behind it. */
    private val offline = object : PlatformTransport {
        override fun send(request: HttpRequest): HttpResponse = throw JobsealException.Network("no route (test)")
    }

    @Before
    fun setUp() {
        dir = TempDir()
        clock = TestClock(Slot.inside, boot = 1_000_000)
        vault = JobVault.open(dir.resolve("vault"), MemoryKeyStore(), clock)
        vault.ingestSheetJson(demoSheet(jobId = jobId, start = Slot.start))
        // Vault calls run inline in tests; results are posted to the main looper, run by idle().
        Services.install(Services({ vault }, offline, null, clock::monotonicMs, utc, Executor { it.run() }))
    }

    @After
    fun tearDown() {
        vault.close()
        dir.close()
    }

    private fun idle() = shadowOf(Looper.getMainLooper()).idle()

    private fun <A : android.app.Activity> ActivityController<A>.tag(tag: String): View? =
        get().window.decorView.findViewWithTag(tag)

    private fun <A : android.app.Activity> ActivityController<A>.text(tag: String): String =
        (tag(tag) as TextView).text.toString()

    private fun <A : android.app.Activity> ActivityController<A>.click(tag: String) {
        val view = assertNotNull("no view tagged $tag", tag(tag)).let { tag(tag)!! }
        assertTrue("$tag is not shown", view.visibility == View.VISIBLE)
        view.performClick()
        idle()
    }

    private fun jobScreen(): ActivityController<JobActivity> {
        val intent = Intent(org.robolectric.RuntimeEnvironment.getApplication(), JobActivity::class.java)
            .putExtra(JobActivity.EXTRA_JOB_ID, jobId)
        return Robolectric.buildActivity(JobActivity::class.java, intent).setup().also { idle() }
    }

    @Test
    fun todayListsTheJobAndOpensIt() {
        val today = Robolectric.buildActivity(TodayActivity::class.java).setup()
        idle()
        val card = today.tag("job:$jobId")
        assertNotNull("the job is listed", card)
        val texts = (0 until (card as android.view.ViewGroup).childCount).joinToString("\n") {
            (card.getChildAt(it) as TextView).text
        }
        assertTrue(texts, texts.contains("08:00–10:00  WO-DEMO-0001  ·  Assigned"))
        assertTrue(texts, texts.contains("Customer details until 12:00 (3 h 30 min left)"))
        assertTrue(Sheets.values.none { texts.contains(it) })

        card.performClick()
        val next = shadowOf(today.get()).nextStartedActivity
        assertEquals(JobActivity::class.java.name, next.component!!.className)
        assertEquals(jobId, next.getStringExtra(JobActivity.EXTRA_JOB_ID))
    }

    @Test
    fun theJobScreenIsSecureAndRevealsByStateAndTime() {
        val job = jobScreen()
        val flags = job.get().window.attributes.flags
        assertTrue("FLAG_SECURE", flags and WindowManager.LayoutParams.FLAG_SECURE != 0)
        assertEquals("WO-DEMO-0001  ·  Assigned", job.text("header"))
        assertTrue(job.text("work").contains("Fit the optical outlet"))

        // Assigned: every field refused, with the reason.
        job.click("reveal")
        assertNull(job.tag("value:customer_name"))
        assertTrue(job.get().window.decorView.let { dump(it) }.contains("Customer · Shown when en route or on site"))

        job.click("action:EN_ROUTE")
        assertEquals("WO-DEMO-0001  ·  En route", job.text("header"))
        job.click("reveal")
        assertEquals(Sheets.NAME, job.text("value:customer_name"))
        assertNull("door code only on site", job.tag("value:door_code"))
        assertTrue(dump(job.get().window.decorView).contains("Phone · Hidden in 3 h 30 min"))
        assertFalse("not selectable", (job.tag("value:customer_name") as TextView).isTextSelectable)

        // The countdown ticks, and the values go when their time is up (12:00).
        clock.advance(Duration.ofHours(3).plusMinutes(29))
        shadowOf(Looper.getMainLooper()).idleFor(Duration.ofSeconds(1))
        assertTrue(dump(job.get().window.decorView).contains("Phone · Hidden in 1:00"))
        clock.advance(Duration.ofMinutes(1))
        shadowOf(Looper.getMainLooper()).idleFor(Duration.ofSeconds(1))
        assertNull("hidden on time", job.tag("value:customer_name"))
        assertTrue(dump(job.get().window.decorView).contains("Customer · Access window closed at 12:00"))
    }

    @Test
    fun leavingTheScreenDropsTheValues() {
        vault.advance(jobId, JobState.ON_SITE)
        val job = jobScreen()
        job.click("reveal")
        assertEquals(Sheets.DOOR_CODE, job.text("value:door_code"))
        job.pause().stop()
        assertNull(job.tag("value:door_code"))
        job.start().resume()
        idle()
        assertNull("a new tap is needed", job.tag("value:door_code"))
    }

    @Test
    fun closeChecksTheReportShredsAndRevealIsThenRefused() {
        val job = jobScreen()
        assertEquals(View.GONE, job.tag("close-section")!!.visibility)
        job.click("action:ON_SITE")
        assertEquals(View.VISIBLE, job.tag("close-section")!!.visibility)

        job.click("close")
        assertEquals("Write what was done before closing the job.", job.text("message"))
        assertEquals(JobState.ON_SITE, vault.job(jobId).state)

        job.click("reveal")
        assertNotNull(job.tag("value:door_code"))
        (job.tag("report") as EditText).setText("Outlet fitted (demo report).")
        job.click("close")
        assertEquals("Job closed. Customer data destroyed (4 fields).", job.text("message"))
        assertNull("values dropped at the close", job.tag("value:door_code"))
        assertEquals("WO-DEMO-0001  ·  Completed", job.text("header"))
        assertEquals(View.GONE, job.tag("reveal")!!.visibility)
        assertTrue(job.text("work").contains("Report: Outlet fitted (demo report)."))
        assertEquals(JobState.COMPLETED, vault.job(jobId).state)

        // A new screen on the closed job: nothing to reveal, and the vault refuses.
        val again = jobScreen()
        assertEquals(View.GONE, again.tag("reveal")!!.visibility)
        assertTrue(again.text("access").contains("Customer data destroyed at 08:30"))
        try {
            vault.reveal(jobId)
            throw AssertionError("reveal after close must be refused")
        } catch (e: JobsealException.AccessDenied) {
            // expected
        }
    }

    @Test
    fun theSyncScreenShowsTheOutboxAndTheNetworkFailure() {
        val sync = Robolectric.buildActivity(SyncActivity::class.java).setup()
        idle()
        assertTrue(sync.text("sync-status").startsWith("Not enrolled"))
        assertEquals(View.VISIBLE, sync.tag("enrol")!!.visibility)
        sync.click("enrol")
        assertEquals("No connection to dispatch. Nothing is lost; it will be sent later.", sync.text("message"))
        assertEquals(View.GONE, sync.tag("offline")!!.visibility)
        assertEquals(View.VISIBLE, (sync.tag("sync") as Button).visibility)
    }

    /** Every TextView's text under [view], one per line. */
    private fun dump(view: View): String = when (view) {
        is TextView -> view.text.toString()
        is android.view.ViewGroup -> (0 until view.childCount).joinToString("\n") { dump(view.getChildAt(it)) }
        else -> ""
    }
}
