package io.jobseal.demo.android

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.os.Handler
import android.os.Looper
import android.text.InputType
import android.view.View
import android.view.WindowManager
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import io.jobseal.demo.JobAction
import io.jobseal.demo.JobModel
import io.jobseal.demo.JobPresenter
import io.jobseal.demo.Outcome
import io.jobseal.demo.ReportCheck
import io.jobseal.demo.RevealedJob

/**
 * One job: work details, the customer details on tap with the time left in the access window,
 * the state buttons and the close with a report.
 *
 * The window is FLAG_SECURE (no screenshot, screen recording, casting or recents thumbnail).
 * Revealed values live only in [revealed] and the views showing them: they are dropped when the
 * screen stops, hidden when their time is up, and never copied anywhere else.
 */
class JobActivity : Activity() {
    private lateinit var services: Services
    // Built on first use, which is on the background executor: building it opens the vault.
    private val presenter by lazy {
        JobPresenter(services.vault, jobId, services.monotonicMs, services.texts)
    }
    private lateinit var jobId: String
    private val ticker = Handler(Looper.getMainLooper())

    private lateinit var header: TextView
    private lateinit var access: TextView
    private lateinit var work: TextView
    private lateinit var fields: LinearLayout
    private lateinit var revealButton: View
    private lateinit var hideButton: View
    private lateinit var actions: LinearLayout
    private lateinit var closeSection: LinearLayout
    private lateinit var report: EditText
    private lateinit var message: TextView

    private var model: JobModel? = null
    /** The revealed values; null whenever nothing may be on screen. */
    private var revealed: RevealedJob? = null

    private val tick = object : Runnable {
        override fun run() {
            renderFields()
            if (revealed != null) ticker.postDelayed(this, 1000)
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        window.setFlags(WindowManager.LayoutParams.FLAG_SECURE, WindowManager.LayoutParams.FLAG_SECURE)
        if (Build.VERSION.SDK_INT >= 33) setRecentsScreenshotEnabled(false)
        services = Services.get(this)
        jobId = requireNotNull(intent.getStringExtra(EXTRA_JOB_ID)) { "JobActivity needs $EXTRA_JOB_ID" }
        title = "Job"

        val root = column()
        header = root.text("header", size = 20f, bold = true)
        access = root.text("access")
        work = root.text("work")
        root.text(size = 18f, bold = true).text = "Customer"
        fields = root.section("fields")
        revealButton = root.button("Show customer details", "reveal", ::reveal)
        hideButton = root.button("Hide", "hide") { drop() }
        actions = root.section("actions")
        closeSection = root.section("close-section")
        report = EditText(this).apply {
            tag = "report"
            hint = "Completion report (what was done)"
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_MULTI_LINE
            minLines = 3
            closeSection.addView(this)
        }
        closeSection.button("Close job", "close", ::closeJob)
        message = root.text("message")
    }

    override fun onStart() {
        super.onStart()
        load()
    }

    /** Leaving the screen drops every revealed value; coming back needs a new tap (and a new audit). */
    override fun onStop() {
        drop()
        super.onStop()
    }

    private fun load() {
        services.background({ presenter.load() }) { outcome ->
            when (outcome) {
                is Outcome.Ok -> render(outcome.value)
                is Outcome.Failed -> message.text = outcome.message
            }
        }
    }

    private fun render(m: JobModel) {
        model = m
        header.text = "${m.workOrder}  ·  ${m.state}"
        access.text = "${m.slot}  ·  ${m.area}\n${m.access}"
        work.text = buildString {
            append(m.summary)
            m.tasks.forEach { append("\n• ").append(it) }
            if (m.equipment.isNotEmpty()) append("\nEquipment: ").append(m.equipment.joinToString(", "))
            m.report?.let { append("\n\nReport: ").append(it) }
        }
        revealButton.visibility = if (m.canReveal) View.VISIBLE else View.GONE
        actions.removeAllViews()
        m.actions.filter { it != JobAction.CLOSE }.forEach { action ->
            actions.button(action.label, "action:${action.name}") { perform(action) }
        }
        closeSection.visibility = if (JobAction.CLOSE in m.actions) View.VISIBLE else View.GONE
        renderFields()
    }

    private fun reveal() {
        message.text = ""
        services.background({ presenter.reveal() }) { outcome ->
            when (outcome) {
                is Outcome.Ok -> {
                    revealed = outcome.value
                    ticker.removeCallbacks(tick)
                    tick.run()
                }
                is Outcome.Failed -> message.text = outcome.message
            }
        }
    }

    /** The field rows: values while revealed and in time, else the labels with why they are hidden. */
    private fun renderFields() {
        fields.removeAllViews()
        val current = revealed
        if (current == null) {
            model?.fieldLabels?.forEach { fields.text().text = "$it: hidden" }
            hideButton.visibility = View.GONE
            return
        }
        val now = services.monotonicMs()
        for (row in current.rows(now)) {
            fields.text(size = 14f).text = "${row.label} · ${row.status}"
            if (row.value != null) fields.secretText("value:${row.name}").text = row.value
        }
        if (!current.anyVisible(now)) {
            // Time is up for every field: drop the values; the hidden statuses stay on screen.
            revealed = null
            ticker.removeCallbacks(tick)
        }
        hideButton.visibility = if (revealed != null) View.VISIBLE else View.GONE
    }

    private fun drop() {
        ticker.removeCallbacks(tick)
        revealed = null
        if (this::fields.isInitialized) renderFields()
    }

    private fun perform(action: JobAction) {
        message.text = ""
        services.background({ presenter.perform(action) }) { outcome ->
            when (outcome) {
                is Outcome.Ok -> render(outcome.value)
                is Outcome.Failed -> {
                    message.text = outcome.message
                    load()
                }
            }
        }
    }

    private fun closeJob() {
        when (val check = JobPresenter.check(report.text.toString())) {
            is ReportCheck.Invalid -> message.text = check.message
            is ReportCheck.Ok -> {
                drop()
                services.background({ presenter.close(check.report) }) { outcome ->
                    when (outcome) {
                        is Outcome.Ok -> {
                            report.setText("")
                            message.text = "Job closed. Customer data destroyed (${outcome.value.fieldsDestroyed} fields)."
                            load()
                        }
                        is Outcome.Failed -> message.text = outcome.message
                    }
                }
            }
        }
    }

    companion object {
        const val EXTRA_JOB_ID = "io.jobseal.demo.JOB_ID"
    }
}
