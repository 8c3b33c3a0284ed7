package io.jobseal.demo.android

import androidx.test.core.app.ActivityScenario
import androidx.test.espresso.Espresso.onView
import androidx.test.espresso.action.ViewActions.click
import androidx.test.espresso.action.ViewActions.replaceText
import androidx.test.espresso.action.ViewActions.scrollTo
import androidx.test.espresso.assertion.ViewAssertions.matches
import androidx.test.espresso.matcher.ViewMatchers.withTagValue
import androidx.test.espresso.matcher.ViewMatchers.withText
import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import io.jobseal.android.HttpUrlConnectionTransport
import java.net.HttpURLConnection
import java.net.URL
import java.time.Duration
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.UUID
import org.hamcrest.Matchers.containsString
import org.hamcrest.Matchers.equalTo
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import org.junit.runner.RunWith

/**
 * Enrol and sync through the sync screen against a running `jobseal-dispatch serve`. Skipped
 * unless the run passes the server and its operator token as instrumentation arguments:
 *
 *   ./gradlew :app:connectedDebugAndroidTest \
 *     -Pandroid.testInstrumentationRunnerArguments.dispatchUrl=http://10.0.2.2:8787 \
 *     -Pandroid.testInstrumentationRunnerArguments.operatorToken=$JOBSEAL_OPERATOR_TOKEN
 */
@RunWith(AndroidJUnit4::class)
class DispatchSyncTest {
    private val args = InstrumentationRegistry.getArguments()

    private fun tag(t: String) = onView(withTagValue(equalTo(t)))

    @Test
    fun enrolSyncCloseAndTheReportReachesDispatch() {
        val url = args.getString("dispatchUrl")
        val token = args.getString("operatorToken")
        assumeTrue("no dispatchUrl/operatorToken instrumentation arguments", url != null && token != null)

        DeviceFixture(HttpUrlConnectionTransport(url!!)).use { fixture ->
            val (issued, answer) = operator(url, token!!, "POST", "/v1/operator/enrolment-codes", "{}")
            assertEquals(200, issued)
            val code = Regex("\"code\":\"([0-9A-Z-]+)\"").find(answer)!!.groupValues[1]
            ActivityScenario.launch(SyncActivity::class.java).use {
                tag("enrolment-code").perform(scrollTo(), replaceText(code))
                tag("enrol").perform(scrollTo(), click())
                tag("message").check(matches(withText("Enrolled.")))
            }
            val jobId = UUID.randomUUID().toString()
            val start = Instant.now().minus(Duration.ofMinutes(30)).truncatedTo(ChronoUnit.SECONDS)
            val sheet = FakeSheet.json(jobId, start, "WO-DEVICE-SYNC")
            val deviceId = fixture.vault.deviceBundle().deviceId
            assertEquals(200, operator(url, token!!, "POST", "/v1/operator/jobs", """{"device_id":"$deviceId","sheet":$sheet}""").first)

            ActivityScenario.launch(SyncActivity::class.java).use {
                tag("sync").perform(scrollTo(), click())
                tag("message").check(matches(withText(containsString("1 new job"))))
            }
            fixture.vault.advance(jobId, io.jobseal.JobState.ON_SITE)
            fixture.vault.closeJob(jobId, "Closed on the device (sync test).")
            ActivityScenario.launch(SyncActivity::class.java).use {
                tag("sync").perform(scrollTo(), click())
                tag("sync-status").check(matches(withText(containsString("Everything sent"))))
            }
            val (status, view) = operator(url, token, "GET", "/v1/operator/jobs/$jobId", null)
            assertEquals(200, status)
            assertTrue(view.contains("Closed on the device (sync test)."))
            assertTrue(view.contains("\"verified\":true"))
        }
    }

    private fun operator(base: String, token: String, method: String, path: String, body: String?): Pair<Int, String> {
        val c = URL(base.trimEnd('/') + path).openConnection() as HttpURLConnection
        c.requestMethod = method
        c.setRequestProperty("authorization", "Bearer $token")
        c.setRequestProperty("content-type", "application/json")
        if (body != null) {
            c.doOutput = true
            c.outputStream.use { it.write(body.toByteArray()) }
        }
        val code = c.responseCode
        val text = (if (code >= 400) c.errorStream else c.inputStream)?.use { it.readBytes().decodeToString() } ?: ""
        c.disconnect()
        return code to text
    }
}
