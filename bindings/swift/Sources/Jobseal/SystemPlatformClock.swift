// Hand-written, shipped in the package: the clocks an iOS app gives the vault. The vault's access
// windows must not reopen when the user sets the phone's clock back, so it needs a clock that the
// user cannot set (mach_continuous_time, which keeps counting during sleep) and an identity of the
// boot (kern.boottime) to know when that clock restarted. Everything that is not hand-written in
// this module is generated from the Rust library by UniFFI (Jobseal.swift).
//
// Privacy manifest: both are "system boot time" APIs; PrivacyInfo.xcprivacy declares them
// (35F9.1, 8FFB.1) and docs/integration-ios.md says why. Nothing read here leaves the device
// except as part of the vault's own event timestamps.
import Darwin
import Foundation

/// The device's clocks for `JobVault.open`: wall time from `Date()`, and the boot clock from
/// `mach_continuous_time`, which keeps counting while the device sleeps and cannot be set by the
/// user. The vault combines them with dispatch's time so that setting the phone's clock back
/// never reopens an access window.
///
/// Cheap, thread-safe, and never calls back into the vault (as `PlatformClock` requires).
public final class SystemPlatformClock: PlatformClock, @unchecked Sendable {
    private let timebase: mach_timebase_info_data_t

    /// Reads the Mach timebase once; every later reading is a multiplication.
    public init() {
        var info = mach_timebase_info_data_t()
        if mach_timebase_info(&info) != KERN_SUCCESS {
            info = mach_timebase_info_data_t(numer: 0, denom: 0)
        }
        timebase = info
    }

    /// Milliseconds since the Unix epoch from `Date()`: the clock the user can set. The vault
    /// never trusts it alone.
    public func wallNowMs() throws -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// `kern.boottime` (seconds and microseconds of the boot moment) as text: the same for the
    /// whole boot, different after every reboot. `nil` if `sysctl` fails.
    public func bootId() throws -> String? {
        var boottime = timeval()
        var size = MemoryLayout<timeval>.stride
        var mib: [Int32] = [CTL_KERN, KERN_BOOTTIME]
        guard sysctl(&mib, 2, &boottime, &size, nil, 0) == 0, size == MemoryLayout<timeval>.stride else {
            return nil
        }
        return Self.bootId(seconds: Int64(boottime.tv_sec), microseconds: Int64(boottime.tv_usec))
    }

    /// Milliseconds since boot from `mach_continuous_time`, including time asleep. `nil` if the
    /// timebase could not be read.
    public func bootElapsedMs() throws -> Int64? {
        Self.milliseconds(ticks: mach_continuous_time(), numer: timebase.numer, denom: timebase.denom)
    }

    /// The boot id's text form, `"<seconds>.<microseconds>"`; separate so that tests can check it.
    public static func bootId(seconds: Int64, microseconds: Int64) -> String {
        "\(seconds).\(microseconds)"
    }

    /// Converts Mach ticks to milliseconds with the timebase `numer/denom`, without overflow
    /// (full-width multiplication): `nil` for an unusable timebase or a result beyond `Int64`.
    /// Public and pure so that the conversion is tested on any Mac (timebase 1/1 on Intel,
    /// 125/3 on Apple silicon).
    public static func milliseconds(ticks: UInt64, numer: UInt32, denom: UInt32) -> Int64? {
        guard numer != 0, denom != 0 else { return nil }
        let product = ticks.multipliedFullWidth(by: UInt64(numer))
        let divisor = UInt64(denom) * 1_000_000
        // dividingFullWidth traps when the quotient does not fit: check first (high < divisor).
        guard product.high < divisor else { return nil }
        let (ms, _) = divisor.dividingFullWidth((high: product.high, low: product.low))
        return ms <= UInt64(Int64.max) ? Int64(ms) : nil
    }
}
