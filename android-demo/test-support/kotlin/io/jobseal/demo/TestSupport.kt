// Test helpers over the demo's presenters, shared by the JVM presenter tests (jvm-tests) and the
// Robolectric screen tests (screen-tests): texts in UTC, the demo's fake job sheet, and
// shorthands over an Outcome. They need core-ui, so they cannot live with the doubles every
// Kotlin suite shares (in-memory keystore, test clocks, fake sheets, the dispatch server), which
// are in ../bindings/kotlin/test-support/kotlin (package io.jobseal.testing); both Maven modules
// compile that folder too. Plain Kotlin, no test framework.
package io.jobseal.demo

import io.jobseal.testing.Sheets
import java.time.Instant
import java.time.ZoneOffset
import java.util.UUID

/** Texts in UTC, so that the expected strings do not depend on the machine's zone. */
val utc = Texts(ZoneOffset.UTC)

/** A fake sheet ([Sheets]) as the demo's jobs look: work order WO-DEMO-0001 unless told. */
fun demoSheet(
    jobId: String = UUID.randomUUID().toString(),
    start: Instant,
    workOrder: String = "WO-DEMO-0001",
): String = Sheets.json(jobId = jobId, start = start, workOrder = workOrder, summary = "Fibre installation (demo job)")

fun <T> Outcome<T>.ok(): T = when (this) {
    is Outcome.Ok -> value
    is Outcome.Failed -> throw AssertionError("expected success, got: $message ($error)")
}

fun Outcome<*>.failed(): Outcome.Failed = when (this) {
    is Outcome.Failed -> this
    is Outcome.Ok -> throw AssertionError("expected a failure, got a success")
}
