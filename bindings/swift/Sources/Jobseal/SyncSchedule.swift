// Hand-written, shipped in the package: when the next background run (sweep + sync) should be,
// as a pure function of numbers, so that XCTest checks it on macOS without BackgroundTasks (which
// macOS does not have) and without a device. BackgroundSync (iOS) turns its answer into a
// BGTaskRequest.earliestBeginDate. Not compiled in this repository (no Swift toolchain here).
import Foundation

/// The scheduling rule of `BackgroundSync`, pure and testable.
///
/// The next run is the earliest of:
/// - sync: at `SyncStatus.nextAttemptAtMs` when the vault is backing off after failures; soon
///   (`pendingDelay`) when events wait in the outbox; otherwise after `idleInterval`, to pick up
///   new jobs and revocations. Only when enrolled.
/// - sweep: at the earliest hard expiry of a job not yet shredded, so that it is shredded even if
///   nobody opens the app.
///
/// clamped to `[minimumDelay, maximumDelay]`; `nil` when there is nothing to do (not enrolled and
/// no open job).
public enum SyncSchedule {
    /// The delays of the rule, in seconds.
    public struct Policy: Sendable, Equatable {
        /// Never schedule sooner than this (iOS does not run refresh tasks more often anyway).
        public var minimumDelay: TimeInterval
        /// Delay when events wait in the outbox and no backoff applies.
        public var pendingDelay: TimeInterval
        /// Delay between runs when there is nothing to push: the poll for new jobs.
        public var idleInterval: TimeInterval
        /// Never schedule later than this, even during a long backoff, so that expiry sweeps and
        /// clock anchoring keep happening.
        public var maximumDelay: TimeInterval

        /// Defaults: at least 1 minute, 1 minute when the outbox is not empty, 15 minutes when
        /// idle, at most 6 hours.
        public init(minimumDelay: TimeInterval = 60, pendingDelay: TimeInterval = 60,
                    idleInterval: TimeInterval = 15 * 60, maximumDelay: TimeInterval = 6 * 3600) {
            self.minimumDelay = minimumDelay
            self.pendingDelay = pendingDelay
            self.idleInterval = idleInterval
            self.maximumDelay = max(maximumDelay, minimumDelay)
        }
    }

    /// Seconds from `nowMs` until the next run, or `nil` when there is nothing to schedule.
    ///
    /// - Parameters:
    ///   - nowMs: now, in the same time base as the other times (the vault's or the wall clock).
    ///   - enrolled, pendingEvents, nextAttemptAtMs: from `SyncStatus`.
    ///   - openHardExpiriesMs: the hard expiries of the jobs not yet shredded.
    public static func nextRunDelay(nowMs: Int64, enrolled: Bool, pendingEvents: UInt64, nextAttemptAtMs: Int64?,
                                    openHardExpiriesMs: [Int64], policy: Policy = Policy()) -> TimeInterval? {
        var candidates: [TimeInterval] = []
        if enrolled {
            if let next = nextAttemptAtMs, next > nowMs {
                candidates.append(seconds(next, after: nowMs))
            } else if pendingEvents > 0 {
                candidates.append(policy.pendingDelay)
            } else {
                candidates.append(policy.idleInterval)
            }
        }
        if let expiry = openHardExpiriesMs.min() {
            candidates.append(seconds(expiry, after: nowMs))
        }
        guard let earliest = candidates.min() else { return nil }
        return min(max(earliest, policy.minimumDelay), policy.maximumDelay)
    }

    /// `nextRunDelay` from the vault's own records: its `SyncStatus` and its jobs (those with no
    /// `shreddedAtMs` are open).
    public static func nextRunDelay(nowMs: Int64, status: SyncStatus, jobs: [JobInfo],
                                    policy: Policy = Policy()) -> TimeInterval? {
        nextRunDelay(nowMs: nowMs, enrolled: status.enrolled, pendingEvents: status.pendingEvents,
                     nextAttemptAtMs: status.nextAttemptAtMs,
                     openHardExpiriesMs: jobs.filter { $0.shreddedAtMs == nil }.map { $0.access.hardExpiryMs },
                     policy: policy)
    }

    /// Whether a sync is due now: enrolled, and no backoff pending past `nowMs`.
    public static func syncDue(nowMs: Int64, enrolled: Bool, nextAttemptAtMs: Int64?) -> Bool {
        guard enrolled else { return false }
        guard let next = nextAttemptAtMs else { return true }
        return next <= nowMs
    }

    private static func seconds(_ atMs: Int64, after nowMs: Int64) -> TimeInterval {
        let (diff, overflow) = atMs.subtractingReportingOverflow(nowMs)
        if overflow { return atMs > nowMs ? .greatestFiniteMagnitude : 0 }
        return max(0, TimeInterval(diff) / 1000)
    }
}
