// Why this file: the production PlatformClock for Android (elapsedRealtime + BOOT_COUNT), in the
// library so that apps do not each get the reboot and clock-rollback rules wrong.
package io.jobseal.android

import android.content.ContentResolver
import android.os.SystemClock
import android.provider.Settings
import io.jobseal.PlatformClock

/**
 * The phone's clocks: wall time; `elapsedRealtime`, which counts through deep sleep and cannot be
 * set by the user; and the boot count, which tells the vault a reboot happened. The vault anchors
 * the boot clock to dispatch's clock at each sync, so setting the phone's clock back never reopens
 * an access window, and a reboot never makes an old anchor look current. Call [init] once with the
 * application's content resolver before opening the vault.
 */
object AndroidClock : PlatformClock {
    @Volatile private var resolver: ContentResolver? = null

    /** Gives the clock the content resolver it reads `Settings.Global.BOOT_COUNT` through. */
    fun init(contentResolver: ContentResolver) {
        resolver = contentResolver
    }

    /** The phone's wall clock (settable by the user; the vault checks it against the boot clock). */
    override fun wallNowMs(): Long = System.currentTimeMillis()

    /** Milliseconds since boot, deep sleep included. */
    override fun bootElapsedMs(): Long = SystemClock.elapsedRealtime()

    /** The boot count as a string, or null before [init] or where the setting is missing. */
    override fun bootId(): String? =
        resolver?.let { Settings.Global.getInt(it, Settings.Global.BOOT_COUNT, -1) }?.takeIf { it >= 0 }?.toString()

    /** The monotonic clock (`elapsedRealtime`) for countdowns on screen: setting the wall clock moves nothing. */
    fun monotonicMs(): Long = SystemClock.elapsedRealtime()
}
