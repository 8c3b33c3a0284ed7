package io.jobseal.demo

import io.jobseal.JobVaultInterface
import io.jobseal.PlatformTransport
import io.jobseal.SyncReport
import io.jobseal.SyncStatus

/** The sync status screen. */
data class SyncModel(
    val enrolled: Boolean,
    /** "Enrolled with dispatch" / "Not enrolled". */
    val enrolment: String,
    /** "Everything sent" / "3 updates waiting to be sent". */
    val outbox: String,
    /** "Last sync at 08:12" / "Never synced". */
    val lastSync: String,
    /** Null when the last sync worked; else "Offline: 2 failed syncs. Nothing is lost. Next try at 08:14". */
    val offline: String?,
    /** This phone's device id once enrolled (what dispatch assigns jobs to); not customer data. */
    val deviceId: String? = null,
)

/**
 * Enrolment, "sync now" and the sync status. [enrol] and [syncNow] block on the network: call
 * them from a background worker (WorkManager in production, a plain executor in the demo).
 */
class SyncPresenter(
    private val vault: JobVaultInterface,
    private val transport: PlatformTransport,
    private val texts: Texts = Texts(),
) {
    fun load(): Outcome<SyncModel> = texts.attempt {
        val status = vault.syncStatus()
        model(status, vault.trustedNowMs(), if (status.enrolled) vault.deviceBundle().deviceId else null)
    }

    fun model(s: SyncStatus, nowMs: Long, deviceId: String? = null): SyncModel {
        val pending = s.pendingEvents.toLong()
        val failures = s.consecutiveFailures.toInt()
        val next = s.nextAttemptAtMs
        return SyncModel(
            enrolled = s.enrolled,
            enrolment = if (s.enrolled) "Enrolled with dispatch" else "Not enrolled",
            outbox = when (pending) {
                0L -> "Everything sent"
                1L -> "1 update waiting to be sent"
                else -> "$pending updates waiting to be sent"
            },
            lastSync = s.lastSuccessAtMs?.let { "Last sync at ${texts.time(it)}" } ?: "Never synced",
            offline = if (failures == 0) {
                null
            } else {
                val attempts = if (failures == 1) "1 failed sync" else "$failures failed syncs"
                val retry = if (next != null && next > nowMs) "Next try at ${texts.time(next)}" else "Retry now"
                "Offline: $attempts. Nothing is lost. $retry."
            },
            deviceId = deviceId,
        )
    }

    /**
     * Enrols this phone with dispatch over the transport, pinning [dispatchKeyHex] (from the
     * app's configuration; null trusts the key dispatch announces on first use, for the demo only).
     * [code] is the one-time enrolment code the operator gave the technician (needed the first
     * time; blank is allowed when retrying after a lost answer).
     */
    fun enrol(dispatchKeyHex: String?, code: String?, prekeys: UInt = 20u): Outcome<SyncModel> = texts.attempt {
        val bundle = vault.enrolWithDispatch(
            transport,
            dispatchKeyHex?.takeIf { it.isNotBlank() },
            prekeys,
            code?.takeIf { it.isNotBlank() },
        )
        model(vault.syncStatus(), vault.trustedNowMs(), bundle.deviceId)
    }

    /** Pushes the outbox and pulls new jobs and withdrawals. On failure nothing is lost. */
    fun syncNow(): Outcome<SyncReport> = texts.attempt { vault.sync(transport) }

    /** One line for a toast after a sync, value-free. */
    fun summary(r: SyncReport): String = buildList {
        add(if (r.received.size == 1) "1 new job" else "${r.received.size} new jobs")
        if (r.revoked.isNotEmpty()) add("${r.revoked.size} withdrawn by dispatch")
        if (r.rejected.isNotEmpty()) add("${r.rejected.size} refused")
        add(if (r.pending == 0uL) "everything sent" else "${r.pending} still waiting")
    }.joinToString(", ")
}
