// Why this file: the WorkManager wiring of the background sync: a periodic run for the expiry
// sweep (which must run offline too) and one-time syncs timed by the vault's own backoff. It is a
// thin adapter: every decision is SyncRunner's (plain Kotlin, tested on the JVM); this file only
// turns SyncPlan into WorkManager requests, which needs a device to run.
package io.jobseal.android.work

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.Data
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequest
import androidx.work.PeriodicWorkRequest
import androidx.work.WorkManager
import androidx.work.Worker
import androidx.work.WorkerParameters
import io.jobseal.JobVaultInterface
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import io.jobseal.android.SyncPlan
import io.jobseal.android.SyncPolicy
import io.jobseal.android.SyncRunner
import java.util.concurrent.TimeUnit

/**
 * What the app gives the background sync: implement it on your `Application` class. WorkManager
 * may start the process only to run the worker, so both must be usable from `Application.onCreate`
 * on (open the vault lazily, once per process, as for the screens).
 */
interface JobsealWorkHost {
    /** The process's single vault. May be opened on the first call (this runs on a worker thread). */
    fun jobsealVault(): JobVaultInterface

    /** The transport to dispatch. */
    fun jobsealTransport(): PlatformTransport
}

/**
 * Runs [SyncRunner] for WorkManager: the sweep, then a sync if it is due, then schedules what the
 * [SyncPlan] says. Calls the blocking `vault.sync(transport)` on WorkManager's background thread.
 * Schedule it with [JobsealSync]; never construct it yourself.
 */
class JobsealSyncWorker(context: Context, params: WorkerParameters) : Worker(context, params) {
    /** One run; see the class comment. Never logs. */
    override fun doWork(): Result {
        val host = applicationContext as? JobsealWorkHost
            ?: return Result.failure(reason("Application does not implement JobsealWorkHost"))
        val retryWorker = inputData.getBoolean(KEY_RETRY, false)
        val plan = try {
            SyncRunner(host.jobsealVault(), host.jobsealTransport())
                .run(sweep = true, force = inputData.getBoolean(KEY_FORCE, false))
        } catch (e: JobsealException) {
            // Opening the vault failed (keystore busy or locked, storage): try again later.
            SyncPolicy.afterFailure(e, nextAttemptAtMs = null, nowMs = null)
        }
        return when (plan) {
            SyncPlan.Done -> Result.success()
            is SyncPlan.RetryIn -> {
                JobsealSync.scheduleRetry(applicationContext, plan.delayMs, fromRetryWorker = retryWorker)
                Result.success(reason(plan.reason))
            }
            is SyncPlan.Stop -> Result.failure(reason(plan.reason))
        }
    }

    private fun reason(text: String) = Data.Builder().putString(KEY_REASON, text).build()

    /** Input and output keys. */
    companion object {
        /** Input: ignore the vault's backoff (user asked). */
        const val KEY_FORCE: String = "io.jobseal.force"

        /** Input: this run is the one-time retry (it reschedules itself after it finishes). */
        const val KEY_RETRY: String = "io.jobseal.retry"

        /** Output: why the run retried or stopped (never customer data). */
        const val KEY_REASON: String = "io.jobseal.reason"
    }
}

/**
 * Schedules the background sync. Call [schedule] once at every app start (it keeps the existing
 * periodic work); [syncNow] for a user's "sync now".
 *
 * - Periodic work [PERIODIC_WORK] (default every 15 minutes, no constraint): the expiry sweep, so
 *   that jobs past their hard expiry shred even offline and with the app closed, then a sync if the
 *   vault's backoff has passed.
 * - One-time work [RETRY_WORK] (network connected): a sync after the delay the vault's
 *   `syncStatus().nextAttemptAtMs` asks for ([SyncPolicy.delayMs]).
 */
object JobsealSync {
    /** Unique name of the periodic sweep + sync. */
    const val PERIODIC_WORK: String = "io.jobseal.sync.periodic"

    /** Unique name of the one-time sync (retries and "sync now"). */
    const val RETRY_WORK: String = "io.jobseal.sync.retry"

    /** Enqueues the periodic sweep + sync, keeping an existing one's schedule (UPDATE). */
    fun schedule(context: Context, everyMinutes: Long = 15) {
        val request = PeriodicWorkRequest.Builder(JobsealSyncWorker::class.java, everyMinutes, TimeUnit.MINUTES)
            .build()
        WorkManager.getInstance(context).enqueueUniquePeriodicWork(PERIODIC_WORK, ExistingPeriodicWorkPolicy.UPDATE, request)
    }

    /** A sync as soon as the network is connected, ignoring the vault's backoff. */
    fun syncNow(context: Context) {
        WorkManager.getInstance(context).enqueueUniqueWork(RETRY_WORK, ExistingWorkPolicy.REPLACE, oneTime(0, force = true))
    }

    /**
     * A sync after [delayMs] when the network is connected. From the retry worker itself
     * ([fromRetryWorker]) the new run is appended after the current one (replacing would cancel
     * the run that is scheduling it); from anywhere else it replaces the pending one, whose time
     * came from an older backoff.
     */
    fun scheduleRetry(context: Context, delayMs: Long, fromRetryWorker: Boolean) {
        val policy = if (fromRetryWorker) ExistingWorkPolicy.APPEND_OR_REPLACE else ExistingWorkPolicy.REPLACE
        WorkManager.getInstance(context).enqueueUniqueWork(RETRY_WORK, policy, oneTime(delayMs, force = false))
    }

    /** Cancels both (e.g. when the app deletes its vault). */
    fun cancel(context: Context) {
        WorkManager.getInstance(context).apply {
            cancelUniqueWork(PERIODIC_WORK)
            cancelUniqueWork(RETRY_WORK)
        }
    }

    private fun oneTime(delayMs: Long, force: Boolean): OneTimeWorkRequest =
        OneTimeWorkRequest.Builder(JobsealSyncWorker::class.java)
            .setInitialDelay(delayMs.coerceAtLeast(0), TimeUnit.MILLISECONDS)
            .setConstraints(Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build())
            // Only used if the worker itself crashes; normal retries are scheduled from the plan.
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, SyncPolicy.MIN_DELAY_MS, TimeUnit.MILLISECONDS)
            .setInputData(Data.Builder().putBoolean(JobsealSyncWorker.KEY_FORCE, force).putBoolean(JobsealSyncWorker.KEY_RETRY, true).build())
            .build()
}
