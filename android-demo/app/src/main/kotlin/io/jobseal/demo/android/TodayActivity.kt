package io.jobseal.demo.android

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import android.widget.TextView
import io.jobseal.demo.JobRow
import io.jobseal.demo.Outcome
import io.jobseal.demo.TodayModel
import io.jobseal.demo.TodayPresenter

/** Today's jobs: work order, slot, state and where the access window stands. No customer value. */
class TodayActivity : Activity() {
    private lateinit var services: Services
    private lateinit var status: TextView
    private lateinit var toDo: LinearLayout
    private lateinit var done: LinearLayout

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        services = Services.get(this)
        title = "Today"
        val root = column()
        root.text(size = 22f, bold = true).text = "Today's jobs"
        status = root.text("status")
        root.button("Sync", "open-sync") { startActivity(Intent(this, SyncActivity::class.java)) }
        root.text(size = 18f, bold = true).text = "To do"
        toDo = root.section("to-do")
        root.text(size = 18f, bold = true).text = "Done today"
        done = root.section("done")
    }

    override fun onResume() {
        super.onResume()
        refresh()
    }

    fun refresh() {
        status.text = "Loading…"
        services.background({ TodayPresenter(services.vault, services.texts).load() }, ::render)
    }

    private fun render(outcome: Outcome<TodayModel>) {
        when (outcome) {
            is Outcome.Failed -> status.text = outcome.message
            is Outcome.Ok -> {
                val m = outcome.value
                status.text = when {
                    m.isEmpty && m.later == 0 -> "No jobs. Sync to receive today's jobs."
                    m.later > 0 -> "${m.later} more on later days"
                    else -> ""
                }
                toDo.removeAllViews()
                done.removeAllViews()
                m.toDo.forEach { row(toDo, it) }
                m.done.forEach { row(done, it) }
            }
        }
    }

    private fun row(parent: LinearLayout, job: JobRow) {
        val card = parent.section("job:${job.jobId}")
        card.text(bold = true).text = "${job.slot}  ${job.workOrder}  ·  ${job.state}"
        card.text().text = job.summary
        card.text(size = 14f).text = listOf(job.area, job.access).filter { it.isNotEmpty() }.joinToString("  ·  ")
        val pad = (8 * resources.displayMetrics.density).toInt()
        card.setPadding(0, pad, 0, pad)
        card.isClickable = true
        card.setOnClickListener {
            startActivity(Intent(this, JobActivity::class.java).putExtra(JobActivity.EXTRA_JOB_ID, job.jobId))
        }
    }
}
