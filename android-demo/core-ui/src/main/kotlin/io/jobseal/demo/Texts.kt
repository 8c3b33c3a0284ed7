// What the screens say, computed from the bindings' records. Plain Kotlin (no Android types), so
// the same code runs in the app and in the JVM test suite. Nothing here logs, and no function puts
// a customer value into a string that could reach a log: only field names, states, times and
// value-free error details.
package io.jobseal.demo

import io.jobseal.DenialReason
import io.jobseal.FieldKind
import io.jobseal.JobState
import io.jobseal.JobsealException
import java.time.Instant
import java.time.ZoneId
import java.time.format.DateTimeFormatter

/** Formats times in the technician's time zone, and everything else the screens spell out. */
class Texts(val zone: ZoneId = ZoneId.systemDefault()) {
    private val hhmm = DateTimeFormatter.ofPattern("HH:mm").withZone(zone)

    /** "08:30". */
    fun time(ms: Long): String = hhmm.format(Instant.ofEpochMilli(ms))

    /** "08:00–10:00". */
    fun slot(startMs: Long, endMs: Long): String = "${time(startMs)}–${time(endMs)}"

    fun state(state: JobState): String = when (state) {
        JobState.ASSIGNED -> "Assigned"
        JobState.EN_ROUTE -> "En route"
        JobState.ON_SITE -> "On site"
        JobState.COMPLETED -> "Completed"
        JobState.CANCELLED -> "Cancelled"
        JobState.REVOKED -> "Withdrawn by dispatch"
        JobState.EXPIRED -> "Expired"
    }

    fun kind(kind: FieldKind): String = when (kind) {
        FieldKind.NAME -> "Customer"
        FieldKind.PHONE -> "Phone"
        FieldKind.RELAY_PHONE -> "Phone (relay)"
        FieldKind.EMAIL -> "Email"
        FieldKind.ADDRESS -> "Address"
        FieldKind.FLOOR -> "Floor"
        FieldKind.DOOR_CODE -> "Door code"
        FieldKind.NOTE -> "Note"
        FieldKind.TEXT -> "Details"
    }

    /** Why a field is hidden, in the technician's words. */
    fun denial(reason: DenialReason): String = when (reason) {
        is DenialReason.NotYetOpen -> "Available from ${time(reason.opensAtMs)}"
        is DenialReason.WindowClosed -> "Access window closed at ${time(reason.closedAtMs)}"
        is DenialReason.WrongState ->
            "Shown when ${reason.allowed.joinToString(" or ") { state(it).lowercase() }}"
        is DenialReason.Shredded -> "Destroyed: job ${state(reason.state).lowercase()}"
    }

    /**
     * The time left before a shown value disappears: "4:59" under an hour, "1 h 05 min" above,
     * "0:00" once it is over. Rounded up to the second, so "0:00" means hidden.
     */
    fun countdown(remainingMs: Long): String {
        if (remainingMs <= 0) return "0:00"
        val seconds = (remainingMs + 999) / 1000
        return if (seconds >= 3600) {
            "%d h %02d min".format(seconds / 3600, (seconds % 3600) / 60)
        } else {
            "%d:%02d".format(seconds / 60, seconds % 60)
        }
    }

    /** A duration in whole minutes, rounded up: "1 h 05 min", "12 min". */
    fun minutes(ms: Long): String {
        val minutes = (ms.coerceAtLeast(0) + 59_999) / 60_000
        return if (minutes >= 60) "%d h %02d min".format(minutes / 60, minutes % 60) else "$minutes min"
    }

    /**
     * What the technician reads for a failed call. Built from the error's kind and its
     * value-free detail only (jobseal messages never carry customer data).
     */
    fun error(e: JobsealException): String = when (e) {
        is JobsealException.AccessDenied -> denial(e.reason)
        is JobsealException.NotFound -> "This job is no longer on this phone."
        is JobsealException.Conflict -> "This job changed meanwhile; it was reloaded."
        is JobsealException.Network -> "No connection to dispatch. Nothing is lost; it will be sent later."
        is JobsealException.Dispatch -> "Dispatch refused the request (HTTP ${e.status})."
        is JobsealException.Enrolment -> "This phone is not enrolled with dispatch."
        is JobsealException.KeyStore -> "The phone's keystore is unavailable. Unlock the phone and try again."
        is JobsealException.InvalidInput -> "Invalid input: ${e.detail}"
        is JobsealException.Tampered -> "A job sheet failed its integrity check and was discarded."
        is JobsealException.Storage -> "The job store failed; nothing was changed."
        is JobsealException.Internal -> "Unexpected error; nothing was changed."
    }
}

/** A call that either gave a value or failed with a message fit for the screen. */
sealed class Outcome<out T> {
    data class Ok<T>(val value: T) : Outcome<T>()
    data class Failed(val message: String, val error: JobsealException) : Outcome<Nothing>()
}

/** Runs [block], turning a [JobsealException] into [Outcome.Failed] with [Texts.error]'s message. */
inline fun <T> Texts.attempt(block: () -> T): Outcome<T> = try {
    Outcome.Ok(block())
} catch (e: JobsealException) {
    Outcome.Failed(error(e), e)
}
