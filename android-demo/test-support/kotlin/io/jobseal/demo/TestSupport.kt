// Test doubles shared by the JVM presenter tests (jvm-tests) and the Robolectric screen tests
// (screen-tests): an AES-GCM keystore in memory (the shape of the app's Android Keystore one,
// minus the hardware), clocks the test controls and fake job sheets. Every value below is
// obviously fake. Plain Kotlin, no test framework.
package io.jobseal.demo

import io.jobseal.JobsealException
import io.jobseal.PlatformClock
import io.jobseal.PlatformKeyStore
import java.nio.file.Files
import java.nio.file.Path
import java.security.SecureRandom
import java.time.Duration
import java.time.Instant
import java.time.ZoneOffset
import java.util.Comparator
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** Texts in UTC, so that the expected strings do not depend on the machine's zone. */
val utc = Texts(ZoneOffset.UTC)

/** One AES-256 key per alias in memory, AES/GCM with the alias as associated data. */
class MemoryKeyStore : PlatformKeyStore {
    private val keys = ConcurrentHashMap<String, SecretKey>()
    private val random = SecureRandom()

    private fun key(alias: String): SecretKey = keys[alias] ?: throw JobsealException.KeyStore("no key under alias $alias")

    override fun generate(alias: String) {
        val key = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()
        if (keys.putIfAbsent(alias, key) != null) throw JobsealException.KeyStore("alias $alias already exists")
    }

    override fun wrap(alias: String, plaintext: ByteArray): ByteArray {
        val iv = ByteArray(12).also(random::nextBytes)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key(alias), GCMParameterSpec(128, iv))
        cipher.updateAAD(alias.toByteArray())
        return iv + cipher.doFinal(plaintext)
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(alias), GCMParameterSpec(128, wrapped, 0, 12))
        cipher.updateAAD(alias.toByteArray())
        return try {
            cipher.doFinal(wrapped, 12, wrapped.size - 12)
        } catch (e: javax.crypto.AEADBadTagException) {
            throw JobsealException.KeyStore("key $alias cannot unwrap these bytes")
        }
    }

    override fun delete(alias: String) {
        keys.remove(alias)
    }
}

/**
 * A wall clock and a monotonic clock the test moves together ([advance]), like a phone's
 * `currentTimeMillis` and `elapsedRealtime`.
 */
class TestClock(start: Instant) : PlatformClock {
    private val wall = AtomicLong(start.toEpochMilli())
    private val boot = AtomicLong(1_000_000)

    override fun wallNowMs(): Long = wall.get()
    override fun bootElapsedMs(): Long = boot.get()

    /** The monotonic clock, for the presenters' countdowns. */
    fun monotonicMs(): Long = boot.get()

    fun advance(d: Duration) {
        wall.addAndGet(d.toMillis())
        boot.addAndGet(d.toMillis())
    }
}

/** Fake job sheets (format jobseal.sheet.v1, docs/job-sheet.md). */
object Sheets {
    const val NAME = "Fake Customer"
    const val PHONE = "+33 6 00 00 00 00"
    const val ADDRESS = "1 rue de l'Exemple, 69003 Lyon"
    const val DOOR_CODE = "0000A"
    val values = listOf(NAME, PHONE, ADDRESS, DOOR_CODE)

    fun json(
        jobId: String = UUID.randomUUID().toString(),
        start: Instant,
        workOrder: String = "WO-DEMO-0001",
        summary: String = "Fibre installation (demo job)",
    ): String = """
        {
          "format": "jobseal.sheet.v1",
          "job_id": "$jobId",
          "version": 1,
          "work_order": "$workOrder",
          "window": { "start": "$start", "end": "${start.plus(Duration.ofHours(2))}" },
          "access": { "open_before_minutes": 60, "close_after_minutes": 120, "hard_expiry": "${start.plus(Duration.ofHours(12))}" },
          "work": {
            "summary": "$summary",
            "tasks": ["Fit the optical outlet", "Activate the line"],
            "equipment": ["Optical outlet"]
          },
          "site_area": "Lyon 3e",
          "customer": [
            { "name": "customer_name", "kind": "name", "value": "$NAME", "reveal_in": ["en-route", "on-site"] },
            { "name": "phone", "kind": "phone", "value": "$PHONE", "reveal_in": ["en-route", "on-site"] },
            { "name": "address", "kind": "address", "value": "$ADDRESS", "reveal_in": ["en-route", "on-site"] },
            { "name": "door_code", "kind": "door-code", "value": "$DOOR_CODE", "reveal_in": ["on-site"] }
          ]
        }
    """.trimIndent()
}

/** 2030-06-12, slot 08:00-10:00 UTC, customer details from 07:00 to 12:00. */
object Slot {
    val start: Instant = Instant.parse("2030-06-12T08:00:00Z")
    val before: Instant = Instant.parse("2030-06-12T06:30:00Z")
    val inside: Instant = Instant.parse("2030-06-12T08:30:00Z")
}

/** A temporary directory deleted by [close]. */
class TempDir(prefix: String = "jobseal-demo") : AutoCloseable {
    val path: Path = Files.createTempDirectory(prefix)
    fun resolve(name: String): String = path.resolve(name).toString()
    override fun close() {
        if (Files.exists(path)) Files.walk(path).sorted(Comparator.reverseOrder()).forEach { Files.deleteIfExists(it) }
    }
}

fun <T> Outcome<T>.ok(): T = when (this) {
    is Outcome.Ok -> value
    is Outcome.Failed -> throw AssertionError("expected success, got: $message ($error)")
}

fun Outcome<*>.failed(): Outcome.Failed = when (this) {
    is Outcome.Failed -> this
    is Outcome.Ok -> throw AssertionError("expected a failure, got a success")
}
