// A measurement, not a test: one reveal through the Kotlin bindings on the JVM, timed on the
// same workload as the Rust benchmark `reveal/jobseal` (benches/jobseal-bench): a vault with 20
// live jobs, one of them on site, revealed again and again, five fields each time.
//
// Tagged "benchmark" and excluded from the normal run (pom.xml, jobseal.excludedGroups), so
// run-tests.sh never runs it. benches/run.sh runs it against the release library with
//   mvn test -Djobseal.excludedGroups=none -Dgroups=benchmark -Dtest=RevealBenchmark -Djobseal.lib=.../libjobseal_ffi.so
// and reads the JSON it writes to $JOBSEAL_BENCH_OUT. Fake data only.
package io.jobseal

import io.jobseal.testing.MemoryKeyStore
import io.jobseal.testing.TestClock
import java.io.File
import java.time.Instant
import java.util.UUID
import org.junit.jupiter.api.Tag
import org.junit.jupiter.api.Test

@Tag("benchmark")
class RevealBenchmark {
    private fun sheet(jobId: String, n: Int): String = """
        {"format":"jobseal.sheet.v1","job_id":"$jobId","version":1,"work_order":"WO-BENCH-${"%06d".format(n)}",
         "window":{"start":"2030-03-04T08:00:00Z","end":"2030-03-04T10:00:00Z"},
         "access":{"open_before_minutes":30,"close_after_minutes":60,"hard_expiry":"2030-03-04T14:00:00Z"},
         "work":{"summary":"Install fibre terminal","tasks":["Splice drop cable","Activate line"],"equipment":["ONT"]},
         "site_area":"Lyon 3e",
         "customer":[
          {"name":"customer_name","kind":"name","value":"Test Customer ${"%06d".format(n)}","reveal_in":["en-route","on-site"]},
          {"name":"phone","kind":"relay-phone","value":"+33 1 00 00 00 01","reveal_in":["en-route","on-site"]},
          {"name":"address","kind":"address","value":"1 rue de l'Exemple, 69003 Lyon","reveal_in":["en-route","on-site"]},
          {"name":"door_code","kind":"door-code","value":"0000A-FAKE","reveal_in":["on-site"]},
          {"name":"note","kind":"note","value":"Fake note: dog in the garden","reveal_in":["assigned","en-route","on-site"]}]}
    """.trimIndent()

    @Test
    fun `reveal through the bindings`() {
        val warmup = System.getenv("JOBSEAL_BENCH_WARMUP")?.toInt() ?: 500
        val iterations = System.getenv("JOBSEAL_BENCH_ITERATIONS")?.toInt() ?: 2000
        // The same disk as the Rust benchmarks when run.sh says where; a temp folder otherwise.
        val base = System.getenv("JOBSEAL_BENCH_SCRATCH")?.let { File(it).apply { mkdirs() }.toPath() }
        val dir = if (base != null) java.nio.file.Files.createTempDirectory(base, "kotlin-") else java.nio.file.Files.createTempDirectory("kotlin-bench")
        try {
            val vault = JobVault.open(dir.resolve("vault").toString(), MemoryKeyStore(), TestClock(Instant.parse("2030-03-04T08:30:00Z")))
            val ids = (0 until 20).map { n -> UUID.randomUUID().toString().also { vault.ingestSheetJson(sheet(it, n)) } }
            val id = ids[10]
            vault.advance(id, JobState.EN_ROUTE)
            vault.advance(id, JobState.ON_SITE)
            check(vault.reveal(id).fields.all { it.access is FieldAccess.Visible })
            repeat(warmup) { vault.reveal(id) }
            val samples = LongArray(iterations)
            var sink = 0
            for (i in 0 until iterations) {
                val t = System.nanoTime()
                val r = vault.reveal(id)
                samples[i] = System.nanoTime() - t
                sink += r.fields.size
            }
            check(sink == 5 * iterations)
            vault.close()
            samples.sort()
            val median = samples[iterations / 2]
            val json = """{"name":"reveal/kotlin_jvm","iterations":$iterations,"warmup":$warmup,""" +
                """"median_ns":$median,"p10_ns":${samples[iterations / 10]},"p90_ns":${samples[iterations * 9 / 10]},""" +
                """"java":"${System.getProperty("java.version")}"}"""
            println("== reveal through the Kotlin bindings: median ${median / 1000.0} µs over $iterations")
            System.getenv("JOBSEAL_BENCH_OUT")?.let { File(it).writeText(json + "\n") }
        } finally {
            dir.toFile().deleteRecursively()
        }
    }
}
