// Test doubles and fixtures shared by every Kotlin test suite that runs on the JVM: the bindings'
// own JUnit suite (bindings/kotlin) and the Android demo's presenter and Robolectric screen tests
// (android-demo/jvm-tests, android-demo/screen-tests). One copy, compiled into each Maven module's
// tests as an extra test source folder (see their pom.xml). Only what needs nothing but the
// generated bindings and the JDK belongs here: helpers over the demo's presenters stay in
// android-demo/test-support. No real customer data anywhere: every value below is obviously fake.
package io.jobseal.testing

import io.jobseal.JobsealException
import io.jobseal.PlatformClock
import io.jobseal.PlatformKeyStore
import java.nio.file.Files
import java.nio.file.Path
import java.security.SecureRandom
import java.time.Duration
import java.time.Instant
import java.util.Comparator
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * A keystore holding one AES-256 key per alias in memory and wrapping with AES/GCM, the alias as
 * associated data so that bytes wrapped under one alias never unwrap under another. An Android
 * implementation has the same shape with the key in the Android Keystore (see
 * docs/integration-android.md and the demo's AndroidKeystoreKeyStore), minus the hardware.
 *
 * [failing] makes every call throw, as a keystore does when the user is not authenticated or a
 * key was invalidated; [throwUnexpected] makes it throw a plain RuntimeException instead of a
 * JobsealException.
 */
class MemoryKeyStore : PlatformKeyStore {
    private val keys = ConcurrentHashMap<String, SecretKey>()
    private val random = SecureRandom()
    @Volatile var failing = false
    @Volatile var throwUnexpected = false
    val calls = AtomicInteger()

    val aliases: Set<String> get() = keys.keys.toSet()

    private fun check() {
        calls.incrementAndGet()
        if (throwUnexpected) throw IllegalStateException("keystore backend crashed")
        if (failing) throw JobsealException.KeyStore("key is not usable: user not authenticated")
    }

    private fun key(alias: String): SecretKey =
        keys[alias] ?: throw JobsealException.KeyStore("no key under alias $alias")

    override fun generate(alias: String) {
        check()
        val kg = KeyGenerator.getInstance("AES").apply { init(256) }
        if (keys.putIfAbsent(alias, kg.generateKey()) != null) {
            throw JobsealException.KeyStore("alias $alias already exists")
        }
    }

    override fun wrap(alias: String, plaintext: ByteArray): ByteArray {
        check()
        val iv = ByteArray(12).also(random::nextBytes)
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key(alias), GCMParameterSpec(128, iv))
        cipher.updateAAD(alias.toByteArray())
        return iv + cipher.doFinal(plaintext)
    }

    override fun unwrap(alias: String, wrapped: ByteArray): ByteArray {
        check()
        if (wrapped.size < 12 + 16) throw JobsealException.KeyStore("wrapped key is too short")
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
        check()
        keys.remove(alias)
    }
}

/**
 * A clock the test sets: a wall clock and, when [boot] is given, a monotonic boot clock and a boot
 * id (a phone's `currentTimeMillis`, `elapsedRealtime` and `BOOT_COUNT`). [advance] moves both
 * clocks together; [set] moves the wall clock alone, as a user changing the phone's time does;
 * [reboot] restarts the boot clock under a new boot id.
 */
class TestClock(start: Instant, boot: Long? = null) : PlatformClock {
    private val wall = AtomicLong(start.toEpochMilli())
    private val bootMs = AtomicLong(boot ?: -1)
    private val boots = AtomicLong(0)

    override fun wallNowMs(): Long = wall.get()
    override fun bootElapsedMs(): Long? = bootMs.get().takeIf { it >= 0 }
    override fun bootId(): String? = if (bootMs.get() >= 0) "test-boot-${boots.get()}" else null

    /** Simulates a reboot: the boot clock restarts at [uptimeMs] and the boot id changes. */
    fun reboot(uptimeMs: Long) {
        boots.incrementAndGet()
        bootMs.set(uptimeMs)
    }

    /** The boot clock, for the demo presenters' countdowns; only for a clock made with [boot]. */
    fun monotonicMs(): Long = checkNotNull(bootElapsedMs()) { "this TestClock was made without a boot clock" }

    fun set(t: Instant) = wall.set(t.toEpochMilli())
    fun advance(d: Duration) {
        wall.addAndGet(d.toMillis())
        bootMs.getAndUpdate { if (it >= 0) it + d.toMillis() else it }
    }
}

/** The host's clocks, as an app supplies them (nanoTime stands in for elapsedRealtime). */
class SystemTestClock : PlatformClock {
    override fun wallNowMs(): Long = System.currentTimeMillis()
    override fun bootElapsedMs(): Long = monotonicMs()
    override fun bootId(): String = BOOT_ID

    private companion object {
        /** One per JVM: the JVM's nanoTime origin is what "boot" means for this clock. */
        val BOOT_ID: String = java.util.UUID.randomUUID().toString()
    }

    /** The boot clock, for the demo presenters' countdowns. */
    fun monotonicMs(): Long = System.nanoTime() / 1_000_000
}

/** Fake job sheets in the jobseal.sheet.v1 format (docs/job-sheet.md). */
object Sheets {
    const val NAME = "Fake Customer"
    const val PHONE = "+33 6 00 00 00 00"
    const val ADDRESS = "1 rue de l'Exemple, 69003 Lyon"
    const val DOOR_CODE = "0000A"

    /** Every customer value of [json], for scans. */
    val values = listOf(NAME, PHONE, ADDRESS, DOOR_CODE)

    fun json(
        jobId: String = UUID.randomUUID().toString(),
        version: Int = 1,
        start: Instant,
        end: Instant = start.plus(Duration.ofHours(2)),
        openBeforeMinutes: Int = 60,
        closeAfterMinutes: Int = 120,
        hardExpiry: Instant = end.plus(Duration.ofHours(10)),
        workOrder: String = "WO-TEST-0001",
        summary: String = "Fibre installation (test job)",
    ): String = """
        {
          "format": "jobseal.sheet.v1",
          "job_id": "$jobId",
          "version": $version,
          "work_order": "$workOrder",
          "window": { "start": "$start", "end": "$end" },
          "access": {
            "open_before_minutes": $openBeforeMinutes,
            "close_after_minutes": $closeAfterMinutes,
            "hard_expiry": "$hardExpiry"
          },
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

/** The appointment slot most tests use: 2030-06-12 08:00 to 10:00 UTC, window 07:00 to 12:00. */
object Slot {
    val start: Instant = Instant.parse("2030-06-12T08:00:00Z")
    val opens: Instant = Instant.parse("2030-06-12T07:00:00Z")
    val closes: Instant = Instant.parse("2030-06-12T12:00:00Z")
    val before: Instant = Instant.parse("2030-06-12T06:00:00Z")
    val inside: Instant = Instant.parse("2030-06-12T08:30:00Z")
}

/** A temporary directory deleted by [close]. */
class TempDir(prefix: String = "jobseal-test") : AutoCloseable {
    val path: Path = Files.createTempDirectory(prefix)
    fun resolve(name: String): String = path.resolve(name).toString()
    override fun close() {
        if (Files.exists(path)) {
            Files.walk(path).sorted(Comparator.reverseOrder()).forEach { Files.deleteIfExists(it) }
        }
    }
}
