// Test doubles in the shape an app's own implementations take: a keystore on javax.crypto
// AES-GCM (what an Android Keystore implementation does, minus the hardware), a clock the test
// controls, a transport on java.net.http, and fake job sheets. No real customer data anywhere:
// every value below is obviously fake.
package io.jobseal

import java.net.URI
import java.net.http.HttpClient
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
 * docs/integration-android.md).
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

/** A clock the test sets. The boot clock moves with the wall clock unless the test says otherwise. */
class TestClock(start: Instant, boot: Long? = null) : PlatformClock {
    private val wall = AtomicLong(start.toEpochMilli())
    private val bootMs = AtomicLong(boot ?: -1)

    override fun wallNowMs(): Long = wall.get()
    override fun bootElapsedMs(): Long? = bootMs.get().takeIf { it >= 0 }

    fun set(t: Instant) = wall.set(t.toEpochMilli())
    fun advance(d: Duration) {
        wall.addAndGet(d.toMillis())
        bootMs.getAndUpdate { if (it >= 0) it + d.toMillis() else it }
    }
}

/** The host's clocks, as an app supplies them (nanoTime stands in for elapsedRealtime). */
class SystemTestClock : PlatformClock {
    override fun wallNowMs(): Long = System.currentTimeMillis()
    override fun bootElapsedMs(): Long? = System.nanoTime() / 1_000_000
}

/**
 * A transport on java.net.http, the shape an OkHttp one takes on Android: any HTTP status comes
 * back as a response; only a failure to get an answer throws, as JobsealException.Network.
 */
class JavaHttpTransport(private val baseUrl: String) : PlatformTransport {
    private val client = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build()
    val requests = AtomicInteger()

    override fun send(request: HttpRequest): HttpResponse {
        requests.incrementAndGet()
        val builder = java.net.http.HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + request.path))
            .timeout(Duration.ofSeconds(20))
        for (h in request.headers) builder.header(h.name, h.value)
        when (request.method) {
            "GET" -> builder.GET()
            "POST" -> builder.POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(request.body))
            else -> throw JobsealException.InvalidInput("unsupported method ${request.method}")
        }
        return try {
            val answer = client.send(builder.build(), java.net.http.HttpResponse.BodyHandlers.ofByteArray())
            HttpResponse(answer.statusCode().toUShort(), answer.body())
        } catch (e: java.io.IOException) {
            // The exception's class only: its message may name the URL.
            throw JobsealException.Network("no answer from dispatch (${e.javaClass.simpleName})")
        }
    }
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
    ): String = """
        {
          "format": "jobseal.sheet.v1",
          "job_id": "$jobId",
          "version": $version,
          "work_order": "WO-TEST-0001",
          "window": { "start": "$start", "end": "$end" },
          "access": {
            "open_before_minutes": $openBeforeMinutes,
            "close_after_minutes": $closeAfterMinutes,
            "hard_expiry": "$hardExpiry"
          },
          "work": {
            "summary": "Fibre installation (test job)",
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

/** Every file under [root] whose bytes contain any of [needles]. */
fun filesContaining(root: Path, needles: List<String>): List<Path> =
    Files.walk(root).use { paths ->
        paths.filter { Files.isRegularFile(it) }.toList().filter { file ->
            val bytes = Files.readAllBytes(file)
            needles.any { indexOf(bytes, it.toByteArray()) >= 0 }
        }
    }

private fun indexOf(haystack: ByteArray, needle: ByteArray): Int {
    outer@ for (i in 0..haystack.size - needle.size) {
        for (j in needle.indices) if (haystack[i + j] != needle[j]) continue@outer
        return i
    }
    return -1
}

/** The value of a visible field; fails the test (without printing the value) otherwise. */
fun Reveal.visible(name: String): String {
    val access = fields.single { it.name == name }.access
    check(access is FieldAccess.Visible) { "field $name is not visible: $access" }
    return access.value
}

/** The denial of a hidden field; fails the test otherwise. */
fun Reveal.hidden(name: String): DenialReason {
    val access = fields.single { it.name == name }.access
    check(access is FieldAccess.Hidden) { "field $name is not hidden" }
    return access.reason
}
