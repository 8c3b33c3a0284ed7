// Hand-written: the clocks an iOS app gives the vault. Everything else in this module is generated
// from the Rust library by UniFFI (Jobseal.swift).
import Darwin
import Foundation

/// The device's clocks for `JobVault.open`: wall time from `Date()`, and the boot clock from
/// `mach_continuous_time`, which keeps counting while the device sleeps and cannot be set by the
/// user. The vault combines them with dispatch's time so that setting the phone's clock back
/// never reopens an access window.
public final class SystemPlatformClock: PlatformClock {
    private let timebase: mach_timebase_info_data_t

    public init() {
        var info = mach_timebase_info_data_t()
        mach_timebase_info(&info)
        timebase = info
    }

    public func wallNowMs() throws -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// `kern.boottime`, the moment the system booted: different after every reboot.
    public func bootId() throws -> String? {
        var boottime = timeval()
        var size = MemoryLayout<timeval>.stride
        var mib: [Int32] = [CTL_KERN, KERN_BOOTTIME]
        guard sysctl(&mib, 2, &boottime, &size, nil, 0) == 0 else { return nil }
        return "\(boottime.tv_sec).\(boottime.tv_usec)"
    }

    public func bootElapsedMs() throws -> Int64? {
        let ticks = mach_continuous_time()
        let (nanos, overflow) = ticks.multipliedReportingOverflow(by: UInt64(timebase.numer))
        guard !overflow, timebase.denom != 0 else { return nil }
        return Int64(nanos / UInt64(timebase.denom) / 1_000_000)
    }
}
