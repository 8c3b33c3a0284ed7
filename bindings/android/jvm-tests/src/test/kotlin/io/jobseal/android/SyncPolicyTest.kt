// Why this file: the background sync's timing and failure rules decide whether a phone retries in
// seconds, in minutes or never; they are pure functions, checked here case by case.
package io.jobseal.android

import io.jobseal.JobsealException
import io.jobseal.SyncStatus
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

class SyncPolicyTest {
    private fun status(enrolled: Boolean = true, next: Long? = null) =
        SyncStatus(enrolled = enrolled, pendingEvents = 0uL, lastSuccessAtMs = null, consecutiveFailures = 0u, nextAttemptAtMs = next)

    @Test
    fun `due when enrolled and the backoff has passed, or forced`() {
        val now = 1_000_000L
        assertTrue(SyncPolicy.isDue(status(next = null), now, force = false))
        assertTrue(SyncPolicy.isDue(status(next = now), now, force = false))
        assertFalse(SyncPolicy.isDue(status(next = now + 1), now, force = false))
        assertTrue(SyncPolicy.isDue(status(next = now + 1), now, force = true))
        assertFalse(SyncPolicy.isDue(status(enrolled = false), now, force = true))
    }

    @Test
    fun `delay is the vault's next attempt minus now, within bounds`() {
        val now = 5_000_000L
        assertEquals(42_000L, SyncPolicy.delayMs(now + 42_000, now))
        assertEquals(SyncPolicy.MIN_DELAY_MS, SyncPolicy.delayMs(now + 1_000, now))
        assertEquals(SyncPolicy.MIN_DELAY_MS, SyncPolicy.delayMs(now - 60_000, now))
        assertEquals(SyncPolicy.MIN_DELAY_MS, SyncPolicy.delayMs(null, now))
        assertEquals(SyncPolicy.MAX_DELAY_MS, SyncPolicy.delayMs(now + 100 * 3_600_000L, now))
    }

    @Test
    fun `failures map to retry or stop`() {
        val now = 0L
        val next = 30_000L
        assertEquals(SyncPlan.RetryIn(30_000, "network"), SyncPolicy.afterFailure(JobsealException.Network("x"), next, now))
        assertEquals(SyncPlan.RetryIn(30_000, "dispatch 503"), SyncPolicy.afterFailure(JobsealException.Dispatch(503u, "x"), next, now))
        assertEquals(SyncPlan.RetryIn(30_000, "dispatch 429"), SyncPolicy.afterFailure(JobsealException.Dispatch(429u, "x"), next, now))
        assertEquals(SyncPlan.Stop("dispatch refused (401)"), SyncPolicy.afterFailure(JobsealException.Dispatch(401u, "x"), next, now))
        assertEquals(SyncPlan.RetryIn(SyncPolicy.KEYSTORE_RETRY_MS, "keystore"), SyncPolicy.afterFailure(JobsealException.KeyStore("x"), next, now))
        assertEquals(SyncPlan.Stop("not enrolled"), SyncPolicy.afterFailure(JobsealException.Enrolment("x"), next, now))
        assertEquals(SyncPlan.Stop("sync failed: InvalidInput"), SyncPolicy.afterFailure(JobsealException.InvalidInput("x"), next, now))
        // The vault could not answer after the failure: the shortest wait.
        assertEquals(SyncPlan.RetryIn(SyncPolicy.MIN_DELAY_MS, "network"), SyncPolicy.afterFailure(JobsealException.Network("x"), null, null))
        for (s in listOf(408, 429, 500, 599)) assertTrue(SyncPolicy.retryableStatus(s), "$s")
        for (s in listOf(400, 401, 403, 404, 409, 600)) assertFalse(SyncPolicy.retryableStatus(s), "$s")
    }
}
