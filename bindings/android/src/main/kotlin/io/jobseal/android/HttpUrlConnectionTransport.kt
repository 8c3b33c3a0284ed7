// Why this file: a PlatformTransport with no dependency beyond the platform's HttpURLConnection, so
// the library ships one that works on Android and on the JVM (the demo's JVM tests run it against
// jobseal-dispatch); apps that use OkHttp write their own (docs/integration-android.md).
package io.jobseal.android

import io.jobseal.HttpRequest
import io.jobseal.HttpResponse
import io.jobseal.JobsealException
import io.jobseal.PlatformTransport
import java.io.IOException
import java.net.HttpURLConnection
import java.net.URL

/**
 * The vault's transport on `java.net.HttpURLConnection`, which Android and the JVM share, so the
 * app and the JVM tests run the same code. Pass [baseUrl] without a trailing path.
 *
 * - Every HTTP status is an answer ([HttpResponse]); only "no answer" throws
 *   [JobsealException.Network], as the binding's contract asks.
 * - Nothing is logged: bodies hold completion reports, the `authorization` header the device token.
 * - TLS, certificate pinning and cleartext rules come from the platform: on Android the app's
 *   `network_security_config.xml` (cleartext only to the emulator's host loopback for the demo;
 *   pin the dispatch key in production).
 */
class HttpUrlConnectionTransport(
    baseUrl: String,
    private val connectTimeoutMs: Int = 10_000,
    private val readTimeoutMs: Int = 30_000,
) : PlatformTransport {
    private val base = baseUrl.trimEnd('/')

    init {
        require(base.startsWith("https://") || base.startsWith("http://")) { "dispatch URL must be http(s)" }
    }

    /** Sends [request] to `baseUrl + request.path`; see the class comment for what throws. */
    override fun send(request: HttpRequest): HttpResponse {
        if (!request.path.startsWith("/")) throw JobsealException.InvalidInput("request path must start with /")
        val connection = try {
            URL(base + request.path).openConnection() as HttpURLConnection
        } catch (e: IOException) {
            throw JobsealException.Network("no answer from dispatch (${e.javaClass.simpleName})")
        }
        try {
            connection.connectTimeout = connectTimeoutMs
            connection.readTimeout = readTimeoutMs
            connection.useCaches = false
            connection.instanceFollowRedirects = false
            connection.requestMethod = when (request.method) {
                "GET", "POST" -> request.method
                else -> throw JobsealException.InvalidInput("unsupported method ${request.method}")
            }
            for (h in request.headers) connection.setRequestProperty(h.name, h.value)
            if (request.method == "POST") {
                connection.doOutput = true
                connection.setFixedLengthStreamingMode(request.body.size)
                connection.outputStream.use { it.write(request.body) }
            }
            val status = connection.responseCode
            // 4xx/5xx bodies come on the error stream; both are answers for the vault to read.
            val stream = if (status >= 400) connection.errorStream else connection.inputStream
            val body = stream?.use { it.readBytes() } ?: ByteArray(0)
            return HttpResponse(status.toUShort(), body)
        } catch (e: IOException) {
            // The exception's class only: its message may name the host or carry server text.
            throw JobsealException.Network("no answer from dispatch (${e.javaClass.simpleName})")
        } finally {
            connection.disconnect()
        }
    }
}
