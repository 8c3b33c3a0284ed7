package io.jobseal.demo.android

import android.content.Intent
import android.view.WindowManager
import androidx.test.core.app.ActivityScenario
import androidx.test.espresso.Espresso.onView
import androidx.test.espresso.action.ViewActions.click
import androidx.test.espresso.action.ViewActions.closeSoftKeyboard
import androidx.test.espresso.action.ViewActions.scrollTo
import androidx.test.espresso.action.ViewActions.typeText
import androidx.test.espresso.assertion.ViewAssertions.doesNotExist
import androidx.test.espresso.assertion.ViewAssertions.matches
import androidx.test.espresso.matcher.ViewMatchers.isDisplayed
import androidx.test.espresso.matcher.ViewMatchers.withEffectiveVisibility
import androidx.test.espresso.matcher.ViewMatchers.Visibility
import androidx.test.espresso.matcher.ViewMatchers.withTagValue
import androidx.test.espresso.matcher.ViewMatchers.withText
import androidx.test.ext.junit.runners.AndroidJUnit4
import io.jobseal.JobState
import io.jobseal.JobsealException
import org.hamcrest.Matchers.containsString
import org.hamcrest.Matchers.equalTo
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith

/**
 * The technician's flow on an emulator or device, through the real screens, the real Android
 * Keystore and the real native library: list, job, reveal refused then shown, en route, on site,
 * close with a report, and reveal refused after the close.
 */
@RunWith(AndroidJUnit4::class)
class TechnicianFlowTest {
    private lateinit var fixture: DeviceFixture

    @Before
    fun setUp() {
        fixture = DeviceFixture()
    }

    @After
    fun tearDown() {
        fixture.close()
    }

    private fun tag(t: String) = onView(withTagValue(equalTo(t)))

    @Test
    fun fullFlow() {
        val jobId = fixture.deliverJob()
        ActivityScenario.launch(TodayActivity::class.java).use {
            tag("job:$jobId").perform(scrollTo(), click())

            // Assigned: the customer fields are refused, with the reason.
            tag("reveal").perform(scrollTo(), click())
            tag("value:customer_name").check(doesNotExist())
            onView(withText(containsString("Shown when en route or on site"))).check(matches(isDisplayed()))

            tag("action:EN_ROUTE").perform(scrollTo(), click())
            tag("reveal").perform(scrollTo(), click())
            tag("value:customer_name").check(matches(withText(FakeSheet.NAME)))
            tag("value:door_code").check(doesNotExist())

            tag("action:ON_SITE").perform(scrollTo(), click())
            tag("reveal").perform(scrollTo(), click())
            tag("value:door_code").check(matches(withText(FakeSheet.DOOR_CODE)))

            // An empty report is refused before the vault sees it.
            tag("close").perform(scrollTo(), click())
            tag("message").check(matches(withText("Write what was done before closing the job.")))
            assertEquals(JobState.ON_SITE, fixture.vault.job(jobId).state)

            tag("report").perform(scrollTo(), typeText("Outlet fitted (device test report)."), closeSoftKeyboard())
            tag("close").perform(scrollTo(), click())
            tag("message").check(matches(withText(containsString("Customer data destroyed"))))
            tag("value:door_code").check(doesNotExist())
            tag("reveal").check(matches(withEffectiveVisibility(Visibility.GONE)))
        }
        assertEquals(JobState.COMPLETED, fixture.vault.job(jobId).state)
        assertTrue(fixture.vault.syncStatus().pendingEvents > 0u)   // waits for the next sync
    }

    @Test
    fun revealDeniedAfterClose() {
        val jobId = fixture.deliverJob()
        fixture.vault.advance(jobId, JobState.ON_SITE)
        fixture.vault.closeJob(jobId, "Closed from the test.")

        val intent = Intent(fixture.context, JobActivity::class.java).putExtra(JobActivity.EXTRA_JOB_ID, jobId)
        ActivityScenario.launch<JobActivity>(intent).use { scenario ->
            scenario.onActivity { activity ->
                val flags = activity.window.attributes.flags
                assertTrue("FLAG_SECURE", flags and WindowManager.LayoutParams.FLAG_SECURE != 0)
            }
            tag("header").check(matches(withText(containsString("Completed"))))
            tag("access").check(matches(withText(containsString("Customer data destroyed"))))
            tag("reveal").check(matches(withEffectiveVisibility(Visibility.GONE)))
            tag("value:customer_name").check(doesNotExist())
        }
        try {
            fixture.vault.reveal(jobId)
            fail("reveal after close must be refused")
        } catch (e: JobsealException.AccessDenied) {
            assertEquals("Shredded", e.reason.javaClass.simpleName)
        }
        // The closed epoch's key is gone from the Android Keystore: the old database copy is dead.
        assertTrue(fixture.vault.epoch() >= 2uL)
    }
}
