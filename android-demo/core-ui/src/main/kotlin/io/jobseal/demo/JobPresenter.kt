package io.jobseal.demo

import io.jobseal.FieldAccess
import io.jobseal.JobInfo
import io.jobseal.JobState
import io.jobseal.JobVaultInterface
import io.jobseal.Reveal
import io.jobseal.ShredOutcome

/** A button on the job screen. */
enum class JobAction(val label: String, val target: JobState?) {
    EN_ROUTE("En route", JobState.EN_ROUTE),
    ON_SITE("On site", JobState.ON_SITE),
    CLOSE("Close with report", null),
}

/** The job screen without any customer value: work details, state, buttons, field names. */
data class JobModel(
    val jobId: String,
    val workOrder: String,
    val state: String,
    val slot: String,
    val area: String,
    val summary: String,
    val tasks: List<String>,
    val equipment: List<String>,
    val access: String,
    /** Labels of the customer fields the sheet holds ("Phone", "Door code"), never their values. */
    val fieldLabels: List<String>,
    val actions: List<JobAction>,
    /** Whether "Show customer details" is offered (live jobs only; closed ones have nothing left). */
    val canReveal: Boolean,
    val report: String?,
)

/** Buttons by state: the lifecycle the core enforces (Assigned -> EnRoute/OnSite -> close). */
fun actionsFor(state: JobState): List<JobAction> = when (state) {
    JobState.ASSIGNED -> listOf(JobAction.EN_ROUTE, JobAction.ON_SITE)
    JobState.EN_ROUTE -> listOf(JobAction.ON_SITE, JobAction.CLOSE)
    JobState.ON_SITE -> listOf(JobAction.CLOSE)
    else -> emptyList()
}

/** One customer field as shown. [value] is non-null only while the field may be seen. */
class FieldRow(val name: String, val label: String, val value: String?, val status: String) {
    val visible: Boolean get() = value != null
    // Never prints the value: rows may end up in a debugger, a crash report or a test failure.
    override fun toString(): String = "FieldRow($name, visible=$visible, status=$status)"
}

/**
 * The answer of one tap on "Show customer details", turned into rows that hide themselves on
 * time. It holds the revealed values: keep it only in the screen showing them (a local of the
 * activity or view, never a ViewModel field, saved state or an Intent), and drop it when the
 * screen stops.
 *
 * Time runs on a monotonic clock from the moment of the reveal ([revealedAtMonotonicMs]): the
 * reveal's own trusted instant plus the elapsed monotonic time, so changing the phone's clock
 * while the screen is open extends nothing.
 */
class RevealedJob(
    private val reveal: Reveal,
    private val revealedAtMonotonicMs: Long,
    private val texts: Texts,
) {
    val jobId: String get() = reveal.jobId

    /** Trusted time at monotonic instant [monotonicMs]. */
    fun trustedAt(monotonicMs: Long): Long = reveal.atMs + (monotonicMs - revealedAtMonotonicMs).coerceAtLeast(0)

    /** The rows at monotonic instant [monotonicMs]: values past their `untilMs` are gone. */
    fun rows(monotonicMs: Long): List<FieldRow> {
        val now = trustedAt(monotonicMs)
        return reveal.fields.map { f ->
            val label = texts.kind(f.kind)
            when (val a = f.access) {
                is FieldAccess.Visible ->
                    if (now < a.untilMs) {
                        FieldRow(f.name, label, a.value, "Hidden in ${texts.countdown(a.untilMs - now)}")
                    } else {
                        FieldRow(f.name, label, null, "Access window closed at ${texts.time(a.untilMs)}")
                    }
                is FieldAccess.Hidden -> FieldRow(f.name, label, null, texts.denial(a.reason))
            }
        }
    }

    /** Whether anything is still shown at [monotonicMs]; the screen stops ticking when not. */
    fun anyVisible(monotonicMs: Long): Boolean = rows(monotonicMs).any { it.visible }

    override fun toString(): String = "RevealedJob($jobId, fields=${reveal.fields.size})"
}

/** What [JobPresenter.checkReport] says about a completion report. */
sealed class ReportCheck {
    data class Ok(val report: String) : ReportCheck()
    data class Invalid(val message: String) : ReportCheck()
}

/**
 * The job screen: loads the job, reveals its customer data on demand, moves it along its
 * lifecycle and closes it with a report (which shreds its customer data at once). Every method
 * blocks on the vault: call them off the main thread.
 *
 * [monotonicMs] is the platform's monotonic clock (`SystemClock.elapsedRealtime` on Android).
 */
class JobPresenter(
    private val vault: JobVaultInterface,
    private val jobId: String,
    private val monotonicMs: () -> Long,
    private val texts: Texts = Texts(),
) {
    fun load(): Outcome<JobModel> = texts.attempt { model(vault.job(jobId), vault.trustedNowMs()) }

    fun model(job: JobInfo, nowMs: Long) = JobModel(
        jobId = job.jobId,
        workOrder = job.workOrder,
        state = texts.state(job.state),
        slot = texts.slot(job.window.startMs, job.window.endMs),
        area = job.siteArea ?: "",
        summary = job.work?.summary ?: "(no work details)",
        tasks = job.work?.tasks ?: emptyList(),
        equipment = job.work?.equipment ?: emptyList(),
        access = TodayPresenter(vault, texts).accessText(job, nowMs),
        fieldLabels = job.fields.map { texts.kind(it.kind) },
        actions = actionsFor(job.state),
        canReveal = job.state.isLive() && job.fields.isNotEmpty(),
        report = job.report,
    )

    /**
     * Asks the vault for the customer data. Every field shown or refused is audited by the vault
     * (one event per field), so call this on the technician's tap, not on every screen refresh.
     * A closed job answers [Outcome.Failed] with the "destroyed" reason.
     */
    fun reveal(): Outcome<RevealedJob> = texts.attempt {
        val at = monotonicMs()
        RevealedJob(vault.reveal(jobId), at, texts)
    }

    /**
     * Moves the job to [action]'s state (not for [JobAction.CLOSE]); returns the updated screen.
     * On failure (a Conflict when a sync moved the job meanwhile) the screen reloads with [load].
     */
    fun perform(action: JobAction): Outcome<JobModel> {
        val target = requireNotNull(action.target) { "close goes through close(report)" }
        return texts.attempt {
            model(vault.advance(jobId, target), vault.trustedNowMs())
        }
    }

    /** Validates a completion report: 1 to 4000 characters once trimmed (the core's rule). */
    fun checkReport(text: String): ReportCheck = check(text)

    /**
     * Closes the job with [text] as its report after [checkReport]; the vault shreds the
     * customer data before returning, without waiting for the network. The report and the shred
     * receipt reach dispatch at the next sync.
     */
    fun close(text: String): Outcome<ShredOutcome> = when (val check = checkReport(text)) {
        is ReportCheck.Invalid -> Outcome.Failed(
            check.message,
            io.jobseal.JobsealException.InvalidInput("report: ${check.message}"),
        )
        is ReportCheck.Ok -> texts.attempt { vault.closeJob(jobId, check.report) }
    }

    companion object {
        const val MAX_REPORT = 4000

        /** [checkReport] without a presenter (it needs no vault): for the main thread. */
        fun check(text: String): ReportCheck {
            val report = text.trim()
            val length = report.codePointCount(0, report.length)
            return when {
                length == 0 -> ReportCheck.Invalid("Write what was done before closing the job.")
                length > MAX_REPORT -> ReportCheck.Invalid("The report is too long: $length characters, at most $MAX_REPORT.")
                else -> ReportCheck.Ok(report)
            }
        }
    }
}
