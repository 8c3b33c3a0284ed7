// JUnit tests of sync through the Kotlin bindings over real loopback HTTP, against the reference
// dispatch server (shared helper io.jobseal.testing.DispatchServer).
package io.jobseal

import io.jobseal.testing.DispatchServer
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.SystemTestClock
import io.jobseal.testing.TempDir
import java.net.ServerSocket
import java.time.Duration
import java.time.Instant
import java.util.UUID
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows

/** Sync over real loopback HTTP, through a Kotlin transport on java.net.http (G5, G6, G7). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SyncTest {
    private lateinit var server: DispatchServer
    private lateinit var dir: TempDir
    private lateinit var vault: JobVault
    private lateinit var transport: JavaHttpTransport

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
        vault = JobVault.open(dir.resolve("vault"), MemoryKeyStore(), SystemTestClock())
        transport = JavaHttpTransport(server.baseUrl)
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    /** A sheet whose access window is open now (trusted time follows dispatch's clock). */
    private fun liveSheet(): Pair<String, String> {
        val jobId = UUID.randomUUID().toString()
        val start = Instant.now().minus(Duration.ofMinutes(30)).truncatedTo(java.time.temporal.ChronoUnit.SECONDS)
        return jobId to Sheets.json(jobId = jobId, start = start)
    }

    @Test
    fun `a job goes from dispatch to the device and its shred receipt comes back`() {
        val bundle = vault.enrolWithDispatch(transport, server.dispatchKeyHex, 5u, server.issueCode())
        assertTrue(vault.syncStatus().enrolled)

        val (jobId, sheet) = liveSheet()
        server.createJob(bundle.deviceId, sheet)
        val first = vault.sync(transport)
        assertEquals(listOf(jobId), first.received)
        assertTrue(first.rejected.isEmpty())
        assertNotNull(first.serverTimeMs)
        assertTrue(vault.job(jobId).deliveredVia is Delivery.Prekey)

        vault.advance(jobId, JobState.ON_SITE)
        val r = vault.reveal(jobId)
        assertEquals(Sheets.NAME, r.visible("customer_name"))
        assertEquals(Sheets.DOOR_CODE, r.visible("door_code"))
        vault.closeJob(jobId, "Line activated (test report).")
        // Shredding did not wait for the network.
        assertTrue(vault.syncStatus().pendingEvents > 0u)
        assertThrows<JobsealException.AccessDenied> { vault.reveal(jobId) }

        val second = vault.sync(transport)
        assertTrue(second.acknowledged > 0u)
        assertEquals(0uL, second.pending)
        val status = vault.syncStatus()
        assertEquals(0uL, status.pendingEvents)
        assertEquals(0u, status.consecutiveFailures)
        assertNotNull(status.lastSuccessAtMs)

        val (code, view) = server.operator("GET", "/v1/operator/jobs/$jobId")
        assertEquals(200, code)
        assertTrue(view.contains("\"status\":\"closed\""), "dispatch sees the job closed")
        assertTrue(view.contains("Line activated (test report)."), "dispatch holds the report")
        assertTrue(view.contains("\"verified\":true"), "dispatch verified the shred receipt")
        assertTrue(view.contains("\"shown\":[") && view.contains("door_code"), "dispatch holds the reveal audit event")
        assertTrue(Sheets.values.none { view.contains(it) }, "the operator view repeats no customer value")
    }

    @Test
    fun `dispatch cancelling a job shreds it on the device at the next sync`() {
        val bundle = vault.enrolWithDispatch(transport, null, 5u, server.issueCode())
        val (jobId, sheet) = liveSheet()
        server.createJob(bundle.deviceId, sheet)
        assertEquals(listOf(jobId), vault.sync(transport).received)

        val (code, _) = server.operator("POST", "/v1/operator/jobs/$jobId/cancel", "")
        assertEquals(200, code)
        val report = vault.sync(transport)
        assertEquals(listOf(jobId), report.revoked.map { it.jobId })
        assertEquals(JobState.REVOKED, vault.job(jobId).state)
        val denied = assertThrows<JobsealException.AccessDenied> { vault.reveal(jobId) }
        assertEquals(DenialReason.Shredded(JobState.REVOKED), denied.reason)
    }

    @Test
    fun `no network is a Network error, nothing is lost, and the next sync delivers`() {
        val bundle = vault.enrolWithDispatch(transport, server.dispatchKeyHex, 3u, server.issueCode())
        val (jobId, sheet) = liveSheet()
        server.createJob(bundle.deviceId, sheet)
        vault.sync(transport)
        vault.advance(jobId, JobState.EN_ROUTE)

        val deadPort = ServerSocket(0).use { it.localPort }
        assertThrows<JobsealException.Network> { vault.sync(JavaHttpTransport("http://127.0.0.1:$deadPort")) }
        val after = vault.syncStatus()
        assertEquals(1u, after.consecutiveFailures)
        assertNotNull(after.nextAttemptAtMs)
        assertTrue(after.pendingEvents > 0u)

        // A transport that throws something unexpected is a Network error too.
        val crashing = object : PlatformTransport {
            override fun send(request: HttpRequest): HttpResponse = throw IllegalStateException("socket factory broken")
        }
        assertThrows<JobsealException.Network> { vault.sync(crashing) }

        // Dispatch answering with an error status is a Dispatch error carrying the status.
        val unavailable = object : PlatformTransport {
            override fun send(request: HttpRequest): HttpResponse =
                HttpResponse(503u, """{"error":{"code":"unavailable","message":"maintenance"}}""".toByteArray())
        }
        val e = assertThrows<JobsealException.Dispatch> { vault.sync(unavailable) }
        assertEquals(503.toUShort(), e.status)

        val ok = vault.sync(transport)
        assertEquals(0uL, ok.pending)
        assertEquals(0u, vault.syncStatus().consecutiveFailures)
        assertNull(vault.syncStatus().nextAttemptAtMs)
        val (_, view) = server.operator("GET", "/v1/operator/jobs/$jobId")
        assertTrue(view.contains("\"state\":\"en-route\""), "dispatch saw the state change made offline")
    }

    @Test
    fun `a sync answer rewritten on the way is refused as tampered and changes nothing`() {
        val bundle = vault.enrolWithDispatch(transport, server.dispatchKeyHex, 5u, server.issueCode())
        val (jobId, sheet) = liveSheet()
        server.createJob(bundle.deviceId, sheet)
        vault.sync(transport)
        vault.advance(jobId, JobState.EN_ROUTE)
        val pending = vault.syncStatus().pendingEvents
        assertTrue(pending > 0u)

        // A proxy that answers in dispatch's name adds a revocation to the real answer, keeping
        // dispatch's MAC: the device must not shred the job.
        val forger = object : PlatformTransport {
            override fun send(request: HttpRequest): HttpResponse {
                val real = transport.send(request)
                if (!request.path.endsWith("/sync")) return real
                val revoke = "\"revocations\":[{\"job_id\":\"$jobId\",\"reason\":\"cancelled\"}]"
                val body = String(real.body).replace("\"revocations\":[]", revoke)
                assertTrue(body.contains(jobId), "the answer was rewritten")
                return HttpResponse(real.status, body.toByteArray())
            }
        }
        assertThrows<JobsealException.Tampered> { vault.sync(forger) }
        assertEquals(JobState.EN_ROUTE, vault.job(jobId).state)
        assertEquals(pending, vault.syncStatus().pendingEvents)
        assertEquals(1u, vault.syncStatus().consecutiveFailures)
        assertNotNull(vault.syncStatus().nextAttemptAtMs)

        assertEquals(0uL, vault.sync(transport).pending)
        assertEquals(JobState.EN_ROUTE, vault.job(jobId).state)
    }

    @Test
    fun `enrolment needs the operator's one-time code and a mistyped one sends nothing`() {
        val noCode = assertThrows<JobsealException.Dispatch> { vault.enrolWithDispatch(transport, server.dispatchKeyHex, 3u, null) }
        assertEquals(401.toUShort(), noCode.status)
        assertThrows<JobsealException.InvalidInput> { vault.enrolWithDispatch(transport, server.dispatchKeyHex, 3u, "not-a-code") }
        val code = server.issueCode()
        val bundle = vault.enrolWithDispatch(transport, server.dispatchKeyHex, 3u, code.lowercase())
        assertTrue(vault.syncStatus().enrolled)
        val (jobId, sheet) = liveSheet()
        server.createJob(bundle.deviceId, sheet)
        assertEquals(listOf(jobId), vault.sync(transport).received)
    }

    @Test
    fun `enrolment pinning another dispatch key is refused and enrols nothing`() {
        // The request's identity proof is made with the pinned key: dispatch cannot verify it.
        val wrong = dispatchKeygen().publicKeyHex
        val e = assertThrows<JobsealException.Dispatch> { vault.enrolWithDispatch(transport, wrong, 3u, server.issueCode()) }
        assertEquals(401.toUShort(), e.status)
        assertThrows<JobsealException.Enrolment> { vault.sync(transport) }
    }
}
