package io.jobseal.demo.android

import android.content.Context
import android.content.pm.PackageManager
import android.os.Handler
import android.os.Looper
import io.jobseal.JobVault
import io.jobseal.JobVaultInterface
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import io.jobseal.android.AndroidClock
import io.jobseal.android.AndroidKeystoreKeyStore
import io.jobseal.android.HttpUrlConnectionTransport
import io.jobseal.demo.Outcome
import io.jobseal.demo.Texts
import java.io.File
import java.util.concurrent.Executor
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger

/**
 * What the screens share: one vault for the whole process, the transport to dispatch, the
 * monotonic clock, and a background executor (every vault call blocks). Tests replace it with
 * [install] before starting an activity.
 */
class Services(
    openVault: () -> JobVaultInterface,
    val transport: PlatformTransport,
    /** The dispatch public key to pin at enrolment (hex), or null to trust the key dispatch announces (demo only). */
    val dispatchKeyHex: String?,
    val monotonicMs: () -> Long = AndroidClock::monotonicMs,
    val texts: Texts = Texts(),
    private val io: Executor = Executors.newSingleThreadExecutor(),
) {
    private val main = Handler(Looper.getMainLooper())

    /** Opened on first use, which is always on the background executor (opening unwraps a key). */
    val vault: JobVaultInterface by lazy(openVault)

    /** Calls in flight, for the instrumented tests' idling resource. */
    val busy = AtomicInteger()

    /**
     * Runs [work] off the main thread, then [done] on it with the result. A [JobsealException]
     * thrown outside the presenters (opening the vault, on the first call) becomes a failed
     * outcome too; anything else is a bug and is rethrown on the main thread.
     */
    fun <T> background(work: () -> Outcome<T>, done: (Outcome<T>) -> Unit) {
        busy.incrementAndGet()
        io.execute {
            val result = try {
                work()
            } catch (e: JobsealException) {
                Outcome.Failed(texts.error(e), e)
            } catch (e: RuntimeException) {
                main.post {
                    busy.decrementAndGet()
                    throw e
                }
                return@execute
            }
            main.post {
                try {
                    done(result)
                } finally {
                    busy.decrementAndGet()
                }
            }
        }
    }

    companion object {
        @Volatile private var current: Services? = null

        /** Replaces the services (tests). */
        fun install(services: Services) {
            current = services
        }

        /**
         * The services of the process. The vault lives in `noBackupFilesDir` (never backed up;
         * see res/xml/data_extraction_rules.xml) and opens on the first background call.
         */
        fun get(context: Context): Services = current ?: synchronized(this) {
            current ?: open(context.applicationContext).also { current = it }
        }

        private fun open(app: Context): Services {
            val dir = File(app.noBackupFilesDir, "jobseal")
            val meta = app.packageManager.getApplicationInfo(app.packageName, PackageManager.GET_META_DATA).metaData
            val url = meta?.getString("io.jobseal.demo.DISPATCH_URL").orEmpty().ifEmpty { "http://10.0.2.2:8787" }
            val key = meta?.getString("io.jobseal.demo.DISPATCH_KEY")?.takeIf { it.isNotBlank() }
            AndroidClock.init(app.contentResolver)
            return Services({ JobVault.open(dir.path, AndroidKeystoreKeyStore(app), AndroidClock) }, HttpUrlConnectionTransport(url), key)
        }
    }
}
