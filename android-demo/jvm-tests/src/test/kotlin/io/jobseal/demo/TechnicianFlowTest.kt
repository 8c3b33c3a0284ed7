// JUnit tests of the demo's whole technician flow through its presenters against the reference
// dispatch server on loopback: the emulator test's flow, run on the JVM without screens.
package io.jobseal.demo

import io.jobseal.HttpRequest
import io.jobseal.HttpResponse
import io.jobseal.JobVault
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import io.jobseal.android.HttpUrlConnectionTransport
import io.jobseal.testing.DispatchServer
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.SystemTestClock
import io.jobseal.testing.TempDir
import java.net.ServerSocket
import java.time.Duration
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.UUID
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

/**
 * The demo app's whole flow through its presenters, against `jobseal-dispatch serve` on loopback
 * and the app's own HttpURLConnection transport: what the Android instrumented test does on an
 * emulator, minus the screens.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TechnicianFlowTest {
    private lateinit var server: DispatchServer
    private lateinit var dir: TempDir
    private lateinit var vault: JobVault
    private lateinit var transport: HttpUrlConnectionTransport
    // The host's clocks, as the app gives them (nanoTime stands in for elapsedRealtime).
    private val systemClock = SystemTestClock()
    private val monotonic = systemClock::monotonicMs

    @BeforeAll
    fun startServer() {
        server = DispatchServer.start()
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    @BeforeEach
    fun open() {
        dir = TempDir()
        vault = JobVault.open(dir.resolve("vault"), MemoryKeyStore(), systemClock)
        transport = HttpUrlConnectionTransport(server.baseUrl)
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    /** A sheet whose slot started 30 minutes ago: customer details are in their window. */
    private fun liveSheet(workOrder: String): Pair<String, String> {
        val jobId = UUID.randomUUID().toString()
        val start = Instant.now().minus(Duration.ofMinutes(30)).truncatedTo(ChronoUnit.SECONDS)
        return jobId to demoSheet(jobId, start, workOrder)
    }

    @Test
    fun `enrol, sync, work a job from the list to the close, and the report reaches dispatch`() {
        val sync = SyncPresenter(vault, transport, utc)
        val before = sync.load().ok()
        assertFalse(before.enrolled)
        assertEquals("Not enrolled", before.enrolment)
        assertNull(before.deviceId)
        assertEquals("Never synced", before.lastSync)

        val enrolled = sync.enrol(server.dispatchKeyHex, server.issueCode()).ok()
        assertEquals("Enrolled with dispatch", enrolled.enrolment)
        val deviceId = vault.deviceBundle().deviceId
        assertEquals(deviceId, enrolled.deviceId)
        assertEquals(deviceId, sync.load().ok().deviceId)

        val (first, sheet1) = liveSheet("WO-DEMO-0001")
        val (second, sheet2) = liveSheet("WO-DEMO-0002")
        server.createJob(deviceId, sheet1)
        server.createJob(deviceId, sheet2)
        val report = sync.syncNow().ok()
        assertEquals(setOf(first, second), report.received.toSet())
        assertEquals("2 new jobs, everything sent", sync.summary(report))

        // Today's list.
        val today = TodayPresenter(vault).load().ok()
        assertEquals(setOf("WO-DEMO-0001", "WO-DEMO-0002"), today.toDo.map { it.workOrder }.toSet())
        assertTrue(today.toDo.all { it.access.startsWith("Customer details until") })

        // The job screen: hidden while assigned, shown en route, door code on site.
        val job = JobPresenter(vault, first, monotonic)
        assertTrue(job.reveal().ok().rows(monotonic()).none { it.visible })
        job.perform(JobAction.EN_ROUTE).ok()
        val enRoute = job.reveal().ok().rows(monotonic()).associateBy { it.name }
        assertEquals(Sheets.NAME, enRoute.getValue("customer_name").value)
        assertTrue(enRoute.getValue("customer_name").status.startsWith("Hidden in "))
        assertNull(enRoute.getValue("door_code").value)
        job.perform(JobAction.ON_SITE).ok()
        assertEquals(Sheets.DOOR_CODE, job.reveal().ok().rows(monotonic()).single { it.name == "door_code" }.value)

        // Close with a report: shredded at once, before any network.
        assertTrue(job.close("Outlet fitted, line active (demo report).").ok().fieldsDestroyed == 4u)
        assertTrue(job.reveal().failed().error is JobsealException.AccessDenied)
        assertTrue(sync.load().ok().outbox.endsWith("waiting to be sent"))

        val pushed = sync.syncNow().ok()
        assertTrue(pushed.acknowledged > 0u)
        val after = sync.load().ok()
        assertEquals("Everything sent", after.outbox)
        assertTrue(after.lastSync.startsWith("Last sync at "))
        assertNull(after.offline)

        val afterList = TodayPresenter(vault).load().ok()
        assertEquals(listOf("WO-DEMO-0002"), afterList.toDo.map { it.workOrder })
        assertEquals(listOf("WO-DEMO-0001"), afterList.done.map { it.workOrder })

        val (code, view) = server.operator("GET", "/v1/operator/jobs/$first")
        assertEquals(200, code)
        assertTrue(view.contains("\"status\":\"closed\""), "dispatch sees the job closed")
        assertTrue(view.contains("Outlet fitted, line active (demo report)."), "dispatch holds the report")
        assertTrue(view.contains("\"verified\":true"), "dispatch verified the shred receipt")
        assertTrue(view.contains("\"shown\":[") && view.contains("door_code"), "dispatch holds the reveal audit event")
    }

    @Test
    fun `offline the work goes on and the status says so, and dispatch errors are named`() {
        val sync = SyncPresenter(vault, transport, utc)
        sync.enrol(null, server.issueCode()).ok()   // trust on first use: the demo's fallback when no key is configured
        val (jobId, sheet) = liveSheet("WO-DEMO-0003")
        server.createJob(vault.deviceBundle().deviceId, sheet)
        sync.syncNow().ok()

        val deadPort = ServerSocket(0).use { it.localPort }
        val offline = SyncPresenter(vault, HttpUrlConnectionTransport("http://127.0.0.1:$deadPort"), utc)
        // The technician works the job with no network.
        val job = JobPresenter(vault, jobId, monotonic)
        job.perform(JobAction.ON_SITE).ok()
        assertTrue(job.reveal().ok().anyVisible(monotonic()))
        job.close("Done offline (demo report).").ok()

        val failed = offline.syncNow().failed()
        assertTrue(failed.error is JobsealException.Network)
        assertEquals("No connection to dispatch. Nothing is lost; it will be sent later.", failed.message)
        val status = offline.load().ok()
        val offlineText = status.offline
        assertNotNull(offlineText)
        assertTrue(offlineText!!.startsWith("Offline: 1 failed sync. Nothing is lost. "), offlineText)
        assertTrue(status.outbox.endsWith("waiting to be sent"))

        val unavailable = SyncPresenter(vault, object : PlatformTransport {
            override fun send(request: HttpRequest) = HttpResponse(503u, "{}".toByteArray())
        }, utc)
        assertEquals("Dispatch refused the request (HTTP 503).", unavailable.syncNow().failed().message)

        // Back online: everything goes, and the status clears.
        sync.syncNow().ok()
        val back = sync.load().ok()
        assertNull(back.offline)
        assertEquals("Everything sent", back.outbox)
        val (_, view) = server.operator("GET", "/v1/operator/jobs/$jobId")
        assertTrue(view.contains("Done offline (demo report)."))
    }

    @Test
    fun `the READMEs' post-demo-job script assigns a job the device receives and can reveal now`() {
        assumeTrue(java.io.File("/usr/bin/curl").canExecute() || java.io.File("/bin/curl").canExecute(), "no curl")
        val sync = SyncPresenter(vault, transport, utc)
        val deviceId = sync.enrol(server.dispatchKeyHex, server.issueCode()).ok().deviceId!!
        val script = java.io.File(System.getProperty("user.dir"), "../post-demo-job.sh").canonicalFile
        val process = ProcessBuilder("bash", script.path, deviceId, server.baseUrl, "WO-SCRIPT-0001")
            .redirectErrorStream(true)
            .also { it.environment()["JOBSEAL_OPERATOR_TOKEN"] = server.operatorToken }
            .start()
        val output = process.inputStream.bufferedReader().readText()
        assertEquals(0, process.waitFor(), output)

        val received = sync.syncNow().ok().received.single()
        val job = JobPresenter(vault, received, monotonic)
        assertEquals("WO-SCRIPT-0001", job.load().ok().workOrder)
        job.perform(JobAction.ON_SITE).ok()
        assertEquals("0000A", job.reveal().ok().rows(monotonic()).single { it.name == "door_code" }.value)
    }
}
