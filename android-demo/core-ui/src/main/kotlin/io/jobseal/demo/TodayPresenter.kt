package io.jobseal.demo

import io.jobseal.JobInfo
import io.jobseal.JobState
import io.jobseal.JobVaultInterface
import java.time.Instant
import java.time.LocalDate

/** One line of today's list. No customer value: the list is built from [JobInfo] only. */
data class JobRow(
    val jobId: String,
    val workOrder: String,
    val summary: String,
    val area: String,
    val slot: String,
    val state: String,
    /** Where the customer details stand: "Customer details from 07:00", "... until 12:00", "Closed". */
    val access: String,
    val live: Boolean,
)

/** Today's jobs: the live ones due today or overdue, then the ones finished today. */
data class TodayModel(
    val date: LocalDate,
    val toDo: List<JobRow>,
    val done: List<JobRow>,
    /** Live jobs booked for a later day, not listed. */
    val later: Int,
) {
    val isEmpty: Boolean get() = toDo.isEmpty() && done.isEmpty()
}

fun JobState.isLive(): Boolean = this == JobState.ASSIGNED || this == JobState.EN_ROUTE || this == JobState.ON_SITE

/** The "today's jobs" screen. Blocking calls: run [load] off the main thread. */
class TodayPresenter(private val vault: JobVaultInterface, private val texts: Texts = Texts()) {

    fun load(): Outcome<TodayModel> = texts.attempt {
        // Trusted time, not the phone's clock: a clock set back does not change what "today" is.
        val now = vault.trustedNowMs()
        model(vault.listJobs(), now)
    }

    fun model(jobs: List<JobInfo>, nowMs: Long): TodayModel {
        val today = day(nowMs)
        val live = jobs.filter { it.state.isLive() }
        val toDo = live.filter { !day(it.window.startMs).isAfter(today) }.sortedBy { it.window.startMs }
        val done = jobs.filter { !it.state.isLive() && day(it.shreddedAtMs ?: it.updatedAtMs) == today }
            .sortedBy { it.window.startMs }
        return TodayModel(today, toDo.map { row(it, nowMs) }, done.map { row(it, nowMs) }, live.size - toDo.size)
    }

    fun row(job: JobInfo, nowMs: Long) = JobRow(
        jobId = job.jobId,
        workOrder = job.workOrder,
        summary = job.work?.summary ?: "(no work details)",
        area = job.siteArea ?: "",
        slot = texts.slot(job.window.startMs, job.window.endMs),
        state = texts.state(job.state),
        access = accessText(job, nowMs),
        live = job.state.isLive(),
    )

    /** The access window as the technician needs it, at trusted time [nowMs]. */
    fun accessText(job: JobInfo, nowMs: Long): String = when {
        job.shreddedAtMs != null -> "Customer data destroyed at ${texts.time(job.shreddedAtMs!!)}"
        !job.state.isLive() -> "Closed"
        nowMs < job.access.opensAtMs -> "Customer details from ${texts.time(job.access.opensAtMs)}"
        nowMs < job.access.closesAtMs ->
            "Customer details until ${texts.time(job.access.closesAtMs)} (${texts.minutes(job.access.closesAtMs - nowMs)} left)"
        else -> "Access window closed at ${texts.time(job.access.closesAtMs)}"
    }

    private fun day(ms: Long): LocalDate = Instant.ofEpochMilli(ms).atZone(texts.zone).toLocalDate()
}
