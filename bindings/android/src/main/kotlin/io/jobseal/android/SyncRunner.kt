// Why this file: every decision the background sync makes (sweep, whether a sync is due, what to do
// after each kind of failure, how long to wait) as plain Kotlin over the vault's interface, so that
// the JVM tests check it against the real library without WorkManager. The WorkManager adapter
// (work/JobsealSyncWorker.kt) only runs this and schedules what it answers.
package io.jobseal.android

import io.jobseal.JobVaultInterface
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import io.jobseal.SyncStatus

/** What the background sync does next, decided by [SyncRunner.run]. */
sealed class SyncPlan {
    /** Nothing more to do until the next periodic run. */
    data object Done : SyncPlan()

    /**
     * Run a one-time sync after [delayMs] (network connected), replacing any one-time sync already
     * scheduled. [reason] names the cause for logs and metrics; it never holds customer data.
     */
    data class RetryIn(val delayMs: Long, val reason: String) : SyncPlan()

    /** Automatic retries would not help: the app must act (enrol, update, report a bug). */
    data class Stop(val reason: String) : SyncPlan()
}

/**
 * The background sync's rules. Times are the vault's trusted milliseconds
 * ([JobVaultInterface.trustedNowMs]), the clock [SyncStatus.nextAttemptAtMs] is written in, so
 * a phone clock set forward or back changes no delay.
 */
object SyncPolicy {
    /** Shortest wait before a retry (WorkManager's own minimum backoff is 10 s). */
    const val MIN_DELAY_MS: Long = 10_000

    /** Longest wait before a retry; the vault's own backoff stops at 15 minutes plus jitter. */
    const val MAX_DELAY_MS: Long = 6 * 60 * 60 * 1000L

    /** Wait after a keystore failure (typically a locked StrongBox or a busy Keystore). */
    const val KEYSTORE_RETRY_MS: Long = 15 * 60 * 1000L

    /** Whether a sync should run now: enrolled, and [force] or the vault's backoff has passed. */
    fun isDue(status: SyncStatus, nowMs: Long, force: Boolean): Boolean {
        if (!status.enrolled) return false
        val next = status.nextAttemptAtMs ?: return true
        return force || next <= nowMs
    }

    /**
     * The wait until [nextAttemptAtMs] (the vault's backoff) from [nowMs], within
     * [MIN_DELAY_MS]..[MAX_DELAY_MS]; [MIN_DELAY_MS] when the vault names no time.
     */
    fun delayMs(nextAttemptAtMs: Long?, nowMs: Long): Long {
        val wait = if (nextAttemptAtMs == null) 0L else (nextAttemptAtMs - nowMs)
        return wait.coerceIn(MIN_DELAY_MS, MAX_DELAY_MS)
    }

    /** Whether dispatch's HTTP [status] is worth retrying automatically (timeouts, throttling, 5xx). */
    fun retryableStatus(status: Int): Boolean = status == 408 || status == 429 || status in 500..599

    /**
     * The plan after `sync` threw [error]. [nextAttemptAtMs] and [nowMs] come from the vault after
     * the failure (it advances its backoff on every failed sync), or null when it could not answer.
     */
    fun afterFailure(error: JobsealException, nextAttemptAtMs: Long?, nowMs: Long?): SyncPlan {
        val vaultDelay = if (nowMs == null) MIN_DELAY_MS else delayMs(nextAttemptAtMs, nowMs)
        return when (error) {
            is JobsealException.Network -> SyncPlan.RetryIn(vaultDelay, "network")
            is JobsealException.Dispatch ->
                if (retryableStatus(error.status.toInt())) SyncPlan.RetryIn(vaultDelay, "dispatch ${error.status}")
                else SyncPlan.Stop("dispatch refused (${error.status})")
            is JobsealException.KeyStore -> SyncPlan.RetryIn(maxOf(vaultDelay, KEYSTORE_RETRY_MS), "keystore")
            // An answer that failed its checks, a race with another call, a busy database: the
            // vault changed nothing; the next attempt may well succeed.
            is JobsealException.Tampered -> SyncPlan.RetryIn(vaultDelay, "tampered answer")
            is JobsealException.Conflict -> SyncPlan.RetryIn(vaultDelay, "conflict")
            is JobsealException.Storage -> SyncPlan.RetryIn(vaultDelay, "storage")
            is JobsealException.Enrolment -> SyncPlan.Stop("not enrolled")
            else -> SyncPlan.Stop("sync failed: ${error.javaClass.simpleName}")
        }
    }
}

/**
 * One background run over [vault]: the expiry sweep (when [sweep]), then a sync through
 * [transport] if [SyncPolicy.isDue]. Blocking: call it on a background thread (WorkManager's
 * `Worker.doWork` is one). Never throws a [JobsealException]; the answer says what to schedule.
 */
class SyncRunner(private val vault: JobVaultInterface, private val transport: PlatformTransport) {
    /**
     * Runs once. [force] ignores the vault's backoff (a user's "sync now", or a retry that was
     * scheduled for exactly that time); the periodic run passes false.
     */
    fun run(sweep: Boolean, force: Boolean): SyncPlan {
        try {
            // Shreds every expired job, whether or not dispatch can be reached.
            if (sweep) vault.sweep()
            val now = vault.trustedNowMs()
            val status = vault.syncStatus()
            if (!status.enrolled) return SyncPlan.Done
            if (!SyncPolicy.isDue(status, now, force)) {
                return SyncPlan.RetryIn(SyncPolicy.delayMs(status.nextAttemptAtMs, now), "backoff")
            }
            val report = vault.sync(transport)
            // More events than the rounds of one sync carry, and dispatch is taking them: go on
            // soon. (Events it did not acknowledge wait for the next periodic run.)
            return if (report.pending > 0uL && report.acknowledged > 0u) {
                SyncPlan.RetryIn(SyncPolicy.MIN_DELAY_MS, "outbox not empty")
            } else {
                SyncPlan.Done
            }
        } catch (e: JobsealException) {
            val after = try {
                vault.trustedNowMs() to vault.syncStatus().nextAttemptAtMs
            } catch (_: JobsealException) {
                null
            }
            return SyncPolicy.afterFailure(e, after?.second, after?.first)
        }
    }
}
