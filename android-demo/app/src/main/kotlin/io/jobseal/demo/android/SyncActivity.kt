package io.jobseal.demo.android

import android.app.Activity
import android.os.Bundle
import android.text.InputType
import android.view.View
import android.widget.EditText
import android.widget.TextView
import io.jobseal.demo.Outcome
import io.jobseal.demo.SyncModel
import io.jobseal.demo.SyncPresenter

/**
 * Sync status: enrolment, what waits in the outbox, the last sync, offline and the next retry.
 * "Sync now" runs on the background executor; a production app schedules sync with WorkManager
 * (network constraint, backoff from `syncStatus().nextAttemptAtMs`) and a periodic `sweep()`.
 */
class SyncActivity : Activity() {
    private lateinit var services: Services
    // Built on first use, on the background executor: building it opens the vault.
    private val presenter by lazy { SyncPresenter(services.vault, services.transport, services.texts) }
    private lateinit var lines: TextView
    private lateinit var offline: TextView
    private lateinit var message: TextView
    private lateinit var enrol: View
    private lateinit var code: EditText

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        services = Services.get(this)
        title = "Sync"
        val root = column()
        root.text(size = 22f, bold = true).text = "Sync with dispatch"
        lines = root.text("sync-status")
        offline = root.text("offline")
        code = EditText(this).apply {
            tag = "enrolment-code"
            hint = "Enrolment code from dispatch (XXXXX-XXXXX-XXXXX-XXXXX)"
            inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_FLAG_CAP_CHARACTERS or
                InputType.TYPE_TEXT_FLAG_NO_SUGGESTIONS
            root.addView(this)
        }
        enrol = root.button("Enrol this phone", "enrol") {
            val typed = code.text.toString()
            act { presenter.enrol(services.dispatchKeyHex, typed).map { "Enrolled." } }
        }
        root.button("Sync now", "sync") {
            act { presenter.syncNow().map { report -> presenter.summary(report) } }
        }
        message = root.text("message")
    }

    override fun onResume() {
        super.onResume()
        services.background({ presenter.load() }, ::render)
    }

    /** Runs [work] in the background, shows its message, then the fresh status. */
    private fun act(work: () -> Outcome<String>) {
        message.text = "Working…"
        services.background(work) { result ->
            message.text = when (result) {
                is Outcome.Ok -> result.value
                is Outcome.Failed -> result.message
            }
            services.background({ presenter.load() }, ::render)
        }
    }

    private fun render(outcome: Outcome<SyncModel>) {
        when (outcome) {
            is Outcome.Failed -> lines.text = outcome.message
            is Outcome.Ok -> {
                val m = outcome.value
                lines.text = listOfNotNull(m.enrolment, m.deviceId?.let { "Device $it" }, m.outbox, m.lastSync)
                    .joinToString("\n")
                offline.text = m.offline ?: ""
                offline.visibility = if (m.offline == null) View.GONE else View.VISIBLE
                enrol.visibility = if (m.enrolled) View.GONE else View.VISIBLE
                code.visibility = enrol.visibility
            }
        }
    }
}

private inline fun <T, R> Outcome<T>.map(f: (T) -> R): Outcome<R> = when (this) {
    is Outcome.Ok -> Outcome.Ok(f(value))
    is Outcome.Failed -> this
}
