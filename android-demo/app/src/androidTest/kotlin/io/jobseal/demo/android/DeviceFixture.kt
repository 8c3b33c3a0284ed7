package io.jobseal.demo.android

import android.content.Context
import androidx.test.core.app.ApplicationProvider
import androidx.test.espresso.IdlingRegistry
import androidx.test.espresso.IdlingResource
import io.jobseal.HttpRequest
import io.jobseal.HttpResponse
import io.jobseal.JobVault
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import io.jobseal.android.AndroidClock
import io.jobseal.android.AndroidKeystoreKeyStore
import io.jobseal.dispatchKeygen
import io.jobseal.sealJobSheet
import java.io.File
import java.time.Duration
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.UUID

/**
 * A vault for one device test: in its own directory, with the real Android Keystore (StrongBox
 * where the emulator or device has it) under a fresh alias namespace, and the real clocks.
 * Installed as the app's [Services], so the activities under test use it.
 */
class DeviceFixture(transport: PlatformTransport = Offline) : AutoCloseable {
    val context: Context = ApplicationProvider.getApplicationContext()
    private val dir = File(context.cacheDir, "jobseal-test-${UUID.randomUUID()}")
    val keystore = AndroidKeystoreKeyStore(context, namespace = "test-${UUID.randomUUID()}-")
    val vault = JobVault.open(dir.path, keystore, AndroidClock.also { it.init(context.contentResolver) })
    val services = Services({ vault }, transport, null)
    private val idling = BusyIdlingResource(services)

    init {
        Services.install(services)
        IdlingRegistry.getInstance().register(idling)
    }

    /**
     * A fake job delivered as dispatch delivers it (sealed to a one-time prekey), without a
     * server: the test plays dispatch with `dispatchKeygen` and `sealJobSheet`.
     */
    fun deliverJob(workOrder: String = "WO-DEVICE-0001"): String {
        val dispatch = dispatchKeygen()
        val bundle = vault.enrol(dispatch.publicKeyHex, 3u)
        val jobId = UUID.randomUUID().toString()
        val sheet = FakeSheet.json(jobId, Instant.now().minus(Duration.ofMinutes(30)).truncatedTo(ChronoUnit.SECONDS), workOrder)
        vault.receive(sealJobSheet(dispatch.secretKeyHex, bundle.json, bundle.prekeyIds.first(), sheet))
        return jobId
    }

    override fun close() {
        IdlingRegistry.getInstance().unregister(idling)
        vault.close()
        keystore.deleteAll()
        dir.deleteRecursively()
    }

    object Offline : PlatformTransport {
        override fun send(request: HttpRequest): HttpResponse = throw JobsealException.Network("offline (test)")
    }
}

/** Espresso waits while the demo's background executor has calls in flight. */
class BusyIdlingResource(private val services: Services) : IdlingResource {
    @Volatile private var callback: IdlingResource.ResourceCallback? = null
    override fun getName() = "jobseal-services"
    override fun isIdleNow(): Boolean = (services.busy.get() == 0).also { if (it) callback?.onTransitionToIdle() }
    override fun registerIdleTransitionCallback(callback: IdlingResource.ResourceCallback) {
        this.callback = callback
    }
}

/** Obviously fake customer data. */
object FakeSheet {
    const val NAME = "Fake Customer"
    const val DOOR_CODE = "0000A"

    fun json(jobId: String, start: Instant, workOrder: String) = """
        {"format": "jobseal.sheet.v1", "job_id": "$jobId", "version": 1, "work_order": "$workOrder",
         "window": {"start": "$start", "end": "${start.plus(Duration.ofHours(2))}"},
         "access": {"open_before_minutes": 60, "close_after_minutes": 120, "hard_expiry": "${start.plus(Duration.ofHours(12))}"},
         "work": {"summary": "Fibre installation (device test)", "tasks": ["Fit the optical outlet"], "equipment": []},
         "site_area": "Lyon 3e",
         "customer": [
           {"name": "customer_name", "kind": "name", "value": "$NAME", "reveal_in": ["en-route", "on-site"]},
           {"name": "door_code", "kind": "door-code", "value": "$DOOR_CODE", "reveal_in": ["on-site"]}
         ]}
    """.trimIndent()
}
