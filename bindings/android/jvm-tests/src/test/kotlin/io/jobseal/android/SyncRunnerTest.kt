// Why this file: what the WorkManager worker does on a phone is SyncRunner's answer; these runs use
// the real library, the real jobseal-dispatch server on loopback and the library's own
// HttpUrlConnectionTransport, so the delays checked are the vault's own backoff.
package io.jobseal.android

import io.jobseal.HttpRequest
import io.jobseal.HttpResponse
import io.jobseal.JobVault
import io.jobseal.PlatformTransport
import io.jobseal.testing.DispatchServer
import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.SystemTestClock
import io.jobseal.testing.TempDir
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import java.net.ServerSocket
import java.util.concurrent.atomic.AtomicInteger

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SyncRunnerTest {
    private lateinit var server: DispatchServer
    private lateinit var dir: TempDir
    private lateinit var vault: JobVault

    /** Counts the requests that reach [inner]. */
    private class Counting(private val inner: PlatformTransport) : PlatformTransport {
        val calls = AtomicInteger()
        override fun send(request: HttpRequest): HttpResponse {
            calls.incrementAndGet()
            return inner.send(request)
        }
    }

    private fun answering(status: Int) = Counting(object : PlatformTransport {
        override fun send(request: HttpRequest) = HttpResponse(status.toUShort(), "{}".toByteArray())
    })

    private fun online() = Counting(HttpUrlConnectionTransport(server.baseUrl))
    private fun offline() = Counting(HttpUrlConnectionTransport("http://127.0.0.1:${ServerSocket(0).use { it.localPort }}"))

    private fun enrol() {
        vault.enrolWithDispatch(HttpUrlConnectionTransport(server.baseUrl), server.dispatchKeyHex, 5u, server.issueCode())
    }

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
    }

    @AfterEach
    fun close() {
        vault.close()
        dir.close()
    }

    @Test
    fun `not enrolled - sweep only, no request`() {
        val t = online()
        assertEquals(SyncPlan.Done, SyncRunner(vault, t).run(sweep = true, force = true))
        assertEquals(0, t.calls.get())
    }

    @Test
    fun `enrolled - syncs with dispatch and is done`() {
        enrol()
        val t = online()
        assertEquals(SyncPlan.Done, SyncRunner(vault, t).run(sweep = true, force = false))
        assertTrue(t.calls.get() > 0)
        assertNotNull(vault.syncStatus().lastSuccessAtMs)
        assertEquals(0u, vault.syncStatus().consecutiveFailures)
    }

    @Test
    fun `no answer - retry when the vault's backoff ends, and no request before`() {
        enrol()
        val t = offline()
        var plan: SyncPlan = SyncPlan.Done
        repeat(3) { plan = SyncRunner(vault, t).run(sweep = false, force = true) }
        assertEquals(3, t.calls.get())
        val status = vault.syncStatus()
        assertEquals(3u, status.consecutiveFailures)
        val next = checkNotNull(status.nextAttemptAtMs)
        val expected = next - vault.trustedNowMs()
        // Third failure: 20 s plus up to 20 % jitter, above the 10 s floor.
        plan as SyncPlan.RetryIn
        assertEquals("network", plan.reason)
        assertTrue(plan.delayMs in 15_000..24_000, "delay ${plan.delayMs}")
        assertTrue(kotlin.math.abs(plan.delayMs - expected) < 2_000, "delay ${plan.delayMs}, vault says $expected")

        // The periodic run inside the backoff sends nothing and answers the remaining wait.
        val periodic = SyncRunner(vault, t).run(sweep = true, force = false)
        assertEquals(3, t.calls.get())
        periodic as SyncPlan.RetryIn
        assertEquals("backoff", periodic.reason)
        assertTrue(periodic.delayMs <= plan.delayMs && periodic.delayMs >= SyncPolicy.MIN_DELAY_MS, "delay ${periodic.delayMs}")

        // Back online, a forced run (the user's "sync now") goes through and clears the backoff.
        assertEquals(SyncPlan.Done, SyncRunner(vault, online()).run(sweep = true, force = true))
        assertEquals(0u, vault.syncStatus().consecutiveFailures)
    }

    @Test
    fun `dispatch 503 retries, 401 stops`() {
        enrol()
        val busy = SyncRunner(vault, answering(503)).run(sweep = false, force = true)
        assertEquals("dispatch 503", (busy as SyncPlan.RetryIn).reason)
        assertEquals(SyncPlan.Stop("dispatch refused (401)"), SyncRunner(vault, answering(401)).run(sweep = false, force = true))
    }
}
