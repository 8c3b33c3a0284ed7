// JUnit tests of the coroutine API against the real library: the suspend twins, events() as a
// Flow, the async transport against the reference dispatch server, and cancelling a sync in
// flight. kotlinx-coroutines-test drives the coroutines; waits on the library's own threads run
// on Dispatchers.IO so that real time, not the test scheduler's virtual time, bounds them.
package io.jobseal

import io.jobseal.testing.DispatchServer
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.Sheets
import io.jobseal.testing.Slot
import io.jobseal.testing.SystemTestClock
import io.jobseal.testing.TempDir
import io.jobseal.testing.TestClock
import java.net.http.HttpClient
import java.time.Duration
import java.time.Instant
import java.util.UUID
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.future.await
import kotlinx.coroutines.launch
import kotlinx.coroutines.test.runTest
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

/**
 * A suspending transport on java.net.http's async client, the shape an OkHttp or Ktor one takes:
 * cancelling the coroutine cancels the request (CompletableFuture.await cancels the future).
 */
class JavaAsyncTransport(private val baseUrl: String) : PlatformAsyncTransport {
    private val client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5)).build()
    val requests = AtomicInteger()

    override suspend fun send(request: HttpRequest): HttpResponse {
        requests.incrementAndGet()
        return try {
            val answer = client.sendAsync(javaRequest(baseUrl, request), java.net.http.HttpResponse.BodyHandlers.ofByteArray()).await()
            HttpResponse(answer.statusCode().toUShort(), answer.body())
        } catch (e: java.io.IOException) {
            throw noAnswer(e)
        }
    }
}

/** The coroutine API: suspend twins, events(), async transport, cancellation (G5, G7, G8). */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AsyncTest {
    private lateinit var server: DispatchServer
    private lateinit var dir: TempDir

    @BeforeAll
    fun startServer() {
        server = DispatchServer.start()
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    /** Ids of the probe listeners [othersListening] added to this test's vault. */
    private val probes = mutableSetOf<ULong>()

    @BeforeEach
    fun newDir() {
        dir = TempDir()
        probes.clear()
    }

    @AfterEach
    fun removeDir() {
        dir.close()
    }

    /** Waits in real time (the library answers from its own threads). */
    private suspend fun <T> real(seconds: Long = 20, block: suspend () -> T): T =
        withContext(Dispatchers.IO) { withTimeout(seconds * 1000) { block() } }

    @Test
    fun `the suspend twins do what the blocking calls do, and events tell each change`() = runTest {
        val clock = TestClock(Slot.before, boot = 1_000)
        val vault = real { JobVault.openAsync(dir.resolve("vault"), MemoryKeyStore(), clock) }
        vault.use {
            val seen = async(Dispatchers.IO) { vault.events().take(4).toList() }
            // The listener is added when collection starts (on another thread): wait until it is.
            val collector = real { othersListening(vault, 1) }.single()

            val jobId = UUID.randomUUID().toString()
            vault.ingestSheetJson(Sheets.json(jobId = jobId, start = Slot.start))
            clock.set(Slot.inside)
            assertEquals(JobState.EN_ROUTE, real { vault.advanceAsync(jobId, JobState.EN_ROUTE) }.state)
            assertEquals(JobState.ON_SITE, real { vault.advanceAsync(jobId, JobState.ON_SITE) }.state)
            assertEquals(Sheets.DOOR_CODE, real { vault.revealAsync(jobId) }.visible("door_code"))
            assertEquals(listOf(jobId), real { vault.listJobsAsync() }.map { it.jobId })
            val outcome = real { vault.closeJobAsync(jobId, "Line activated (test report).") }
            assertEquals(JobState.COMPLETED, outcome.state)
            val denied = runCatching { real { vault.revealAsync(jobId) } }.exceptionOrNull()
            assertTrue(denied is JobsealException.AccessDenied, "a shredded job is denied: $denied")
            assertTrue(real { vault.verifyAuditAsync() }.valid)
            assertTrue(real { vault.auditLogAsync(jobId) }.isNotEmpty())
            assertTrue(real { vault.sweepAsync() }.isEmpty())

            val events = real { seen.await() }
            assertEquals(
                listOf("JobReceived", "JobChanged", "JobChanged", "JobShredded"),
                events.map { it::class.simpleName },
            )
            assertEquals(JobState.ASSIGNED, (events[0] as VaultEvent.JobReceived).job.state)
            assertEquals(JobState.ON_SITE, (events[2] as VaultEvent.JobChanged).job.state)
            assertEquals(outcome, (events[3] as VaultEvent.JobShredded).outcome)
            assertTrue(Sheets.values.none { v -> events.toString().contains(v) }, "events carry no customer value")
            // The collection ended (take(4)) and removed its listener.
            assertFalse(vault.removeListener(collector), "the Flow removed its listener when collection ended")
        }
    }

    /**
     * Listener ids grow by one per `addListener`, from 1, per vault (each test opens its own).
     * Adds and removes probes until [n] listeners other than the probes were ever added (by
     * `events()` collections starting on other threads); returns the ids those others got.
     */
    private suspend fun othersListening(vault: JobVault, n: Int): List<ULong> {
        while (true) {
            val id = vault.addListener(object : VaultListener { override fun onEvent(event: VaultEvent) {} })
            assertTrue(vault.removeListener(id))
            probes += id
            val others = (1uL..id).filter { it !in probes }
            if (others.size >= n) return others
            delay(5)
        }
    }

    /** A start time whose access window is open now (trusted time follows dispatch's clock). */
    private fun windowOpenNow(): Instant =
        Instant.now().minus(Duration.ofMinutes(30)).truncatedTo(java.time.temporal.ChronoUnit.SECONDS)

    /** Enrols [vault] over [transport] and has dispatch create one job for it, not yet synced. */
    private suspend fun enrolledWithAJob(vault: JobVault, transport: PlatformAsyncTransport): Pair<DeviceBundle, String> {
        val bundle = real { vault.enrolWithDispatchAsync(transport, server.dispatchKeyHex, 5u, server.issueCode()) }
        val jobId = UUID.randomUUID().toString()
        server.createJob(bundle.deviceId, Sheets.json(jobId = jobId, start = windowOpenNow()))
        return bundle to jobId
    }

    @Test
    fun `a whole day over the async transport, told as events`() = runTest {
        val vault = real { JobVault.openAsync(dir.resolve("vault"), MemoryKeyStore(), SystemTestClock()) }
        vault.use {
            val transport = JavaAsyncTransport(server.baseUrl)
            val (bundle, jobId) = enrolledWithAJob(vault, transport)

            val received = async(Dispatchers.IO) { vault.events().first { it is VaultEvent.JobReceived } }
            val synced = async(Dispatchers.IO) { vault.events().first { it is VaultEvent.SyncStatusChanged } }
            real { othersListening(vault, 2) }
            val report = real { vault.syncAsync(transport) }
            assertEquals(listOf(jobId), report.received)
            assertEquals(jobId, (real { received.await() } as VaultEvent.JobReceived).job.jobId)
            assertEquals(0u, (real { synced.await() } as VaultEvent.SyncStatusChanged).status.consecutiveFailures)

            real { vault.advanceAsync(jobId, JobState.ON_SITE) }
            real { vault.closeJobAsync(jobId, "Line activated (test report).") }
            assertEquals(0uL, real { vault.syncAsync(transport) }.pending)
            val (code, view) = server.operator("GET", "/v1/operator/jobs/$jobId")
            assertEquals(200, code)
            assertTrue(view.contains("\"verified\":true"), "dispatch verified the shred receipt")

            // Dispatch withdraws a second job: the sync that applies it tells the shred.
            val second = UUID.randomUUID().toString()
            server.createJob(bundle.deviceId, Sheets.json(jobId = second, start = windowOpenNow()))
            assertEquals(listOf(second), real { vault.syncAsync(transport) }.received)
            val revoked = async(Dispatchers.IO) { vault.events().first { it is VaultEvent.JobShredded } }
            real { othersListening(vault, 3) }
            assertEquals(200, server.operator("POST", "/v1/operator/jobs/$second/cancel", "").first)
            assertEquals(listOf(second), real { vault.syncAsync(transport) }.revoked.map { it.jobId })
            val told = (real { revoked.await() } as VaultEvent.JobShredded).outcome
            assertEquals(second to JobState.REVOKED, told.jobId to told.state)
        }
    }

    @Test
    fun `cancelling a sync in flight cancels the request, loses nothing and the next sync delivers once`() = runTest {
        val vault = real { JobVault.openAsync(dir.resolve("vault"), MemoryKeyStore(), SystemTestClock()) }
        vault.use {
            val transport = JavaAsyncTransport(server.baseUrl)
            val (_, jobId) = enrolledWithAJob(vault, transport)
            assertEquals(listOf(jobId), real { vault.syncAsync(transport) }.received)
            real { vault.advanceAsync(jobId, JobState.EN_ROUTE) }
            val pending = real { vault.syncStatusAsync() }.pendingEvents
            assertTrue(pending > 0u)

            // The request reaches dispatch, which applies it; its answer never comes back (the
            // network drops it) and the request hangs until it is cancelled.
            val started = CompletableDeferred<Unit>()
            val requestCancelled = CompletableDeferred<Unit>()
            val hanging = object : PlatformAsyncTransport {
                override suspend fun send(request: HttpRequest): HttpResponse {
                    transport.send(request)
                    started.complete(Unit)
                    try {
                        awaitCancellation()
                    } finally {
                        requestCancelled.complete(Unit)
                    }
                }
            }
            val sync = launch(Dispatchers.IO) { vault.syncAsync(hanging) }
            real { started.await() }
            sync.cancelAndJoin()
            assertTrue(sync.isCancelled)
            // The platform's request was cancelled too, not left hanging.
            real(10) { requestCancelled.await() }

            // The sync ended as a failed attempt, with the outbox kept.
            val after = real { waitFor { vault.syncStatusAsync().takeIf { it.consecutiveFailures == 1u } } }
            assertEquals(pending, after.pendingEvents)
            assertNotNull(after.nextAttemptAtMs)
            // Dispatch applied the change already; the device does not know. The vault is usable
            // at once, and the next sync sends the change again: dispatch applies it once.
            val applied = server.operator("GET", "/v1/operator/jobs/$jobId").second
            assertEquals(1, Regex("\"to\":\"en-route\"").findAll(applied).count(), "the lost answer's request was applied")
            assertEquals(JobState.EN_ROUTE, real { vault.jobAsync(jobId) }.state)
            assertEquals(0uL, real { vault.syncAsync(transport) }.pending)
            val (_, view) = server.operator("GET", "/v1/operator/jobs/$jobId")
            assertEquals(1, Regex("\"to\":\"en-route\"").findAll(view).count(), "applied once: $view")
        }
    }

    private suspend fun <T : Any> waitFor(probe: suspend () -> T?): T {
        while (true) {
            probe()?.let { return it }
            delay(20)
        }
    }
}
