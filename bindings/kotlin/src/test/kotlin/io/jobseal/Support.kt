// Test helpers only the bindings' JUnit suite uses: a transport on java.net.http (the demo tests
// use the app's own HttpURLConnection one), a scan of the vault's files for customer values, and
// shorthands over a Reveal. The doubles and fixtures the Android demo's tests use too (keystore,
// clocks, fake sheets, temporary directories, the dispatch server) are in the shared folder
// bindings/kotlin/test-support/kotlin (package io.jobseal.testing).
package io.jobseal

import java.net.URI
import java.net.http.HttpClient
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.atomic.AtomicInteger

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
        return try {
            val answer = client.send(javaRequest(baseUrl, request), java.net.http.HttpResponse.BodyHandlers.ofByteArray())
            HttpResponse(answer.statusCode().toUShort(), answer.body())
        } catch (e: java.io.IOException) {
            throw noAnswer(e)
        }
    }
}

/** [request] as java.net.http's request to [baseUrl] joined with its path. */
fun javaRequest(baseUrl: String, request: HttpRequest): java.net.http.HttpRequest {
    val builder = java.net.http.HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + request.path))
        .timeout(Duration.ofSeconds(20))
    for (h in request.headers) builder.header(h.name, h.value)
    when (request.method) {
        "GET" -> builder.GET()
        "POST" -> builder.POST(java.net.http.HttpRequest.BodyPublishers.ofByteArray(request.body))
        else -> throw JobsealException.InvalidInput("unsupported method ${request.method}")
    }
    return builder.build()
}

/** The Network error for a request that got no answer: the exception's class only (its message may name the URL). */
fun noAnswer(e: java.io.IOException) = JobsealException.Network("no answer from dispatch (${e.javaClass.simpleName})")

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
