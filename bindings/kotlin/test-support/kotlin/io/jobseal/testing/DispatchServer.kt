// The reference dispatch server (`jobseal-dispatch serve`) as a subprocess, for the sync tests of
// the bindings (bindings/kotlin SyncTest) and the demo's flow tests (android-demo/jvm-tests
// TechnicianFlowTest). Shared, like Support.kt, so that both start and drive it the same way.
package io.jobseal.testing

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.time.Duration
import java.util.UUID
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * `jobseal-dispatch serve` on a free loopback port, with its operator API standing in for a
 * dispatcher's console; made by [start]. [operatorToken] is also what scripts the tests run need
 * (android-demo/post-demo-job.sh reads it from JOBSEAL_OPERATOR_TOKEN).
 */
class DispatchServer private constructor(binary: String, private val dbDir: TempDir) : AutoCloseable {
    val operatorToken = UUID.randomUUID().toString().replace("-", "") + UUID.randomUUID().toString().replace("-", "")
    private val process: Process
    val baseUrl: String
    val dispatchKeyHex: String
    private val http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()

    init {
        check(File(binary).canExecute()) { "dispatch server binary not found at $binary (cargo build -p jobseal-dispatch)" }
        // The token goes in the environment, never on the command line (where `ps` shows it).
        process = ProcessBuilder(binary, "serve", "--db", dbDir.resolve("dispatch.db"), "--addr", "127.0.0.1:0")
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .also { it.environment()["JOBSEAL_OPERATOR_TOKEN"] = operatorToken }
            .start()
        val lines = LinkedBlockingQueue<String>()
        Thread {
            process.errorStream.bufferedReader().forEachLine { lines.add(it) }
        }.apply { isDaemon = true }.start()
        var url: String? = null
        var key: String? = null
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while ((url == null || key == null) && System.nanoTime() < deadline) {
            val line = lines.poll(200, TimeUnit.MILLISECONDS) ?: continue
            line.substringAfter("listening on ", "").takeIf { it.isNotEmpty() }?.let { url = it.trim() }
            line.substringAfter("dispatch key ", "").takeIf { it.isNotEmpty() }?.let { key = it.trim() }
        }
        if (url == null || key == null) {
            process.destroyForcibly()
            error("the dispatch server did not announce its address and key")
        }
        baseUrl = url!!
        dispatchKeyHex = key!!
    }

    /** An operator call; returns (status, body). */
    fun operator(method: String, path: String, body: String? = null): Pair<Int, String> {
        val b = java.net.http.HttpRequest.newBuilder(URI.create(baseUrl.trimEnd('/') + path))
            .header("authorization", "Bearer $operatorToken")
            .header("content-type", "application/json")
            .timeout(Duration.ofSeconds(20))
        if (method == "POST") b.POST(java.net.http.HttpRequest.BodyPublishers.ofString(body ?: "")) else b.GET()
        val r = http.send(b.build(), java.net.http.HttpResponse.BodyHandlers.ofString())
        return r.statusCode() to r.body()
    }

    /** Assigns a job to a device; dispatch seals it to one of the device's prekeys. */
    fun createJob(deviceId: String, sheetJson: String) {
        val (status, body) = operator("POST", "/v1/operator/jobs", """{"device_id":"$deviceId","sheet":$sheetJson}""")
        check(status == 200) { "create job: HTTP $status ${body.take(300)}" }
    }

    /**
     * Issues a one-time enrolment code (for [deviceId] only, when given), as a dispatcher's
     * console does; returns the code the technician types.
     */
    fun issueCode(deviceId: String? = null): String {
        val body = if (deviceId == null) "{}" else """{"device_id":"$deviceId"}"""
        val (status, answer) = operator("POST", "/v1/operator/enrolment-codes", body)
        check(status == 200) { "issue enrolment code: HTTP $status ${answer.take(300)}" }
        return Regex("\"code\":\"([0-9A-Z-]+)\"").find(answer)?.groupValues?.get(1)
            ?: error("no code in the answer")
    }

    /** Stops the server, then deletes its database. */
    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly()
        dbDir.close()
    }

    companion object {
        /**
         * The server the Maven build names (system property jobseal.dispatch.bin, which
         * bindings/kotlin/run-tests.sh and android-demo/run-jvm-tests.sh set), on a fresh database
         * in a temporary directory of its own, deleted by [close].
         */
        fun start(): DispatchServer {
            val binary = System.getProperty("jobseal.dispatch.bin") ?: error("jobseal.dispatch.bin is not set")
            val dbDir = TempDir("jobseal-dispatch")
            return try {
                DispatchServer(binary, dbDir)
            } catch (e: Throwable) {
                dbDir.close()
                throw e
            }
        }
    }
}
