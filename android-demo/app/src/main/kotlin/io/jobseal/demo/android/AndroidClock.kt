package io.jobseal.demo.android

import android.os.SystemClock
import io.jobseal.PlatformClock

/**
 * The phone's clocks: wall time, and `elapsedRealtime`, which counts through deep sleep and
 * cannot be set by the user. The vault anchors the second to dispatch's clock at each sync, so
 * setting the phone's clock back never reopens an access window.
 */
object AndroidClock : PlatformClock {
    override fun wallNowMs(): Long = System.currentTimeMillis()
    override fun bootElapsedMs(): Long = SystemClock.elapsedRealtime()

    /** The monotonic clock the screens' countdowns run on. */
    fun monotonicMs(): Long = SystemClock.elapsedRealtime()
}
