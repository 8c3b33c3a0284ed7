package io.jobseal

import java.io.File
import java.net.ServerSocket
import java.net.URI
import java.net.http.HttpClient
import java.time.Duration
import java.time.Instant
import java.util.UUID
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
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

/**
 * The reference dispatch server (`jobseal-dispatch serve`), run as a subprocess on a free loopback
 * port, with its operator API standing in for a dispatcher's console.
 */
class DispatchServer(binary: String, db: String) : AutoCloseable {
    val operatorToken = UUID.randomUUID().toString().replace("-", "") + UUID.randomUUID().toString().replace("-", "")
    private val process: Process
    val baseUrl: String
    val dispatchKeyHex: String
    private val http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()

    init {
        check(File(binary).canExecute()) { "dispatch server binary not found at $binary (cargo build -p jobseal-dispatch)" }
        process = ProcessBuilder(binary, "serve", "--db", db, "--addr", "127.0.0.1:0", "--operator-token", operatorToken)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .start()
        val lines = LinkedBlockingQueue<String>()
        Thread {
            process.errorStream.bufferedReader().forEachLine { lines.add(it) }
        }.apply { isDaemon = true }.start()
        var url: String? = null
        var key: String? = null
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while ((url == null || key == null) && System.nanoTime() < deadline) {
            val line = lines.poll(200, TimeUnit.MILLISECONDS) ?: continue
            line.substringAfter("listening on ", "").takeIf { it.isNotEmpty() }?.let { url = it.trim() }
            line.substringAfter("dispatch key ", "").takeIf { it.isNotEmpty() }?.let { key = it.trim() }
        }
        if (url == null || key == null) {
            process.destroyForcibly()
            error("the dispatch server did not announce its address and key")
        }
        baseUrl = url!!
        dispatchKeyHex = key!!
    }

    /** An operator call; returns (status, body). */
    fun operator(method: String, path: String, body: String? = null): Pair<Int, String> {
        val b = java.net.http.HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + path))
            .header("authorization", "Bearer $operatorToken")
            .header("content-type", "application/json")
            .timeout(Duration.ofSeconds(20))
        if (method == "POST") b.POST(java.net.http.HttpRequest.BodyPublishers.ofString(body ?: "")) else b.GET()
        val r = http.send(b.build(), java.net.http.HttpResponse.BodyHandlers.ofString())
        return r.statusCode() to r.body()
    }

    /** Assigns a job to a device; dispatch seals it to one of the device's prekeys. */
    fun createJob(deviceId: String, sheetJson: String) {
        val (status, body) = operator("POST", "/v1/operator/jobs", """{"device_id":"$deviceId","sheet":$sheetJson}""")
        check(status == 200) { "create job: HTTP $status ${body.take(300)}" }
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
    }
}

/** Sync over real loopback HTTP, through a Kotlin transport on java.net.http (G5, G6, G7). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SyncTest {
    private val serverDir = TempDir("jobseal-dispatch")
    private lateinit var server: DispatchServer
    private lateinit var dir: TempDir
    private lateinit var vault: JobVault
    private lateinit var transport: JavaHttpTransport

    @BeforeAll
    fun startServer() {
        val bin = System.getProperty("jobseal.dispatch.bin") ?: error("jobseal.dispatch.bin is not set")
        server = DispatchServer(bin, serverDir.resolve("dispatch.db"))
    }

    @AfterAll
    fun stopServer() {
        server.close()
        serverDir.close()
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
        val bundle = vault.enrolWithDispatch(transport, server.dispatchKeyHex, 5u)
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
        assertTrue(view.contains("\"field\":\"door_code\""), "dispatch holds the reveal audit events")
        assertTrue(Sheets.values.none { view.contains(it) }, "the operator view repeats no customer value")
    }

    @Test
    fun `dispatch cancelling a job shreds it on the device at the next sync`() {
        val bundle = vault.enrolWithDispatch(transport, null, 5u)
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
        val bundle = vault.enrolWithDispatch(transport, server.dispatchKeyHex, 3u)
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
    fun `enrolment refuses a dispatch that answers with another key`() {
        val wrong = dispatchKeygen().publicKeyHex
        assertThrows<JobsealException.Enrolment> { vault.enrolWithDispatch(transport, wrong, 3u) }
        assertThrows<JobsealException.Enrolment> { vault.sync(transport) }
    }
}
