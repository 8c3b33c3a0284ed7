package io.jobseal.demo.android

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

    override fun wallNowMs(): Long = System.currentTimeMillis()
    override fun bootElapsedMs(): Long = SystemClock.elapsedRealtime()
    override fun bootId(): String? =
        resolver?.let { Settings.Global.getInt(it, Settings.Global.BOOT_COUNT, -1) }?.takeIf { it >= 0 }?.toString()

    /** The monotonic clock the screens' countdowns run on. */
    fun monotonicMs(): Long = SystemClock.elapsedRealtime()
}
