// Hand-written, shipped in the package (iOS only): the BGTaskScheduler wiring that every app
// using the vault needs, so that expired jobs are shredded and the outbox is pushed while the app
// is not open. It registers one task identifier, runs sweep + sync when iOS launches it, and
// schedules the next run from the vault's own sync status (SyncSchedule, the tested pure rule).
//
// Cancellation: UniFFI 0.32's Swift futures do not forward task cancellation into Rust (a vault
// call in flight runs to its end), so on expiration the helper fails the transport instead: the
// request in flight is cancelled and every later one throws `Network`, which makes `syncAsync`
// stop with nothing lost. Not compiled in this repository (no Swift toolchain here); BackgroundTasks
// exists on iOS, not on macOS, so this file is empty in `swift test` builds.
#if os(iOS) && canImport(BackgroundTasks)
import BackgroundTasks
import Foundation

/// Background sweep + sync with `BGTaskScheduler`.
///
/// In the app (before launch finishes, e.g. in `App.init` or
/// `application(_:didFinishLaunchingWithOptions:)`):
///
/// ```swift
/// let background = BackgroundSync(identifier: "com.example.app.jobseal-sync",
///                                 transport: URLSessionTransport(baseURL: dispatchURL)) {
///     try await AppVault.shared.vault()          // opens the vault once, returns it
/// }
/// background.register()
/// // and when the app goes to the background:
/// Task { _ = try? await background.schedule() }
/// ```
///
/// Info.plist: the identifier in `BGTaskSchedulerPermittedIdentifiers`, and `UIBackgroundModes`
/// with `fetch` (for `.appRefresh`) or `processing` (for `.processing`).
///
/// iOS decides when (and whether) to launch the task; `earliestBeginDate` is only a lower bound.
/// Also run `run()` when the app becomes active: background runs are a complement, not a
/// guarantee.
public final class BackgroundSync: @unchecked Sendable {
    /// Which kind of background task to request.
    public enum Kind: Sendable {
        /// `BGAppRefreshTaskRequest`: short (about 30 seconds), the usual choice.
        case appRefresh
        /// `BGProcessingTaskRequest` with network required: longer, but typically run only while
        /// the device is idle (and charging, at the system's discretion).
        case processing
    }

    /// What one run did.
    public struct RunResult: Sendable {
        /// Jobs shredded by the sweep (hard expiry passed).
        public let shredded: [ShredOutcome]
        /// The sync's report; `nil` when no sync was due (not enrolled, or backing off).
        public let sync: SyncReport?
    }

    /// The task identifier, as listed in `BGTaskSchedulerPermittedIdentifiers`.
    public let identifier: String
    /// The kind of request `schedule()` submits.
    public let kind: Kind
    /// The scheduling rule's delays.
    public let policy: SyncSchedule.Policy
    private let transport: PlatformAsyncTransport
    private let openVault: @Sendable () async throws -> JobVault

    /// - Parameters:
    ///   - identifier: the task identifier (also in Info.plist).
    ///   - kind: `.appRefresh` (default) or `.processing`.
    ///   - policy: the delays of `SyncSchedule`.
    ///   - transport: how to reach dispatch, e.g. `URLSessionTransport`.
    ///   - vault: returns the app's one `JobVault` (opening it on first use). Called on a
    ///     background task; must not return a second instance for the same directory.
    public init(identifier: String, kind: Kind = .appRefresh, policy: SyncSchedule.Policy = SyncSchedule.Policy(),
                transport: PlatformAsyncTransport, vault: @escaping @Sendable () async throws -> JobVault) {
        self.identifier = identifier
        self.kind = kind
        self.policy = policy
        self.transport = transport
        self.openVault = vault
    }

    /// Registers the launch handler. Call once, before the app finishes launching; returns
    /// `BGTaskScheduler`'s answer (false if the identifier is not permitted in Info.plist).
    @discardableResult
    public func register() -> Bool {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { [self] task in
            handle(task)
        }
    }

    /// Submits the next run per `SyncSchedule` (replacing a pending request for the same
    /// identifier) and returns its earliest date; cancels the pending request and returns `nil`
    /// when there is nothing to do. Throws the vault's errors and `BGTaskScheduler`'s
    /// (`.unavailable` on the simulator and when Background App Refresh is off).
    @discardableResult
    public func schedule() async throws -> Date? {
        let vault = try await openVault()
        let status = try await vault.syncStatusAsync()
        let jobs = try await vault.listJobsAsync()
        // Wall clock: the vault's times are trusted time, which differs from it only when the
        // device clock is off; the policy's clamp bounds the error to its maximum delay.
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        guard let delay = SyncSchedule.nextRunDelay(nowMs: nowMs, status: status, jobs: jobs, policy: policy) else {
            BGTaskScheduler.shared.cancel(taskRequestWithIdentifier: identifier)
            return nil
        }
        let request: BGTaskRequest
        switch kind {
        case .appRefresh:
            request = BGAppRefreshTaskRequest(identifier: identifier)
        case .processing:
            let processing = BGProcessingTaskRequest(identifier: identifier)
            processing.requiresNetworkConnectivity = true
            processing.requiresExternalPower = false
            request = processing
        }
        let at = Date(timeIntervalSinceNow: delay)
        request.earliestBeginDate = at
        try BGTaskScheduler.shared.submit(request)
        return at
    }

    /// One run, in the foreground or background: `sweepAsync()`, then `syncAsync` if a sync is due
    /// (enrolled and not backing off).
    public func run() async throws -> RunResult {
        try await run(over: CancellableTransport(transport))
    }

    private func run(over scoped: CancellableTransport) async throws -> RunResult {
        let vault = try await openVault()
        let shredded = try await vault.sweepAsync()
        try scoped.checkNotCancelled()
        let status = try await vault.syncStatusAsync()
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        guard SyncSchedule.syncDue(nowMs: nowMs, enrolled: status.enrolled, nextAttemptAtMs: status.nextAttemptAtMs) else {
            return RunResult(shredded: shredded, sync: nil)
        }
        let report = try await vault.syncAsync(transport: scoped)
        return RunResult(shredded: shredded, sync: report)
    }

    /// The launch handler: plan the next run first (in case the app is killed), run, plan again
    /// from the new status, complete exactly once. On expiration: fail the transport, cancel the
    /// task, complete unsuccessfully.
    private func handle(_ task: BGTask) {
        let scoped = CancellableTransport(transport)
        let completion = CompleteOnce(task)
        let work = Task {
            _ = try? await self.schedule()
            let ok: Bool
            do {
                _ = try await self.run(over: scoped)
                ok = true
            } catch {
                ok = false
            }
            _ = try? await self.schedule()
            completion.complete(success: ok && !Task.isCancelled)
        }
        task.expirationHandler = {
            scoped.cancel()
            work.cancel()
            completion.complete(success: false)
        }
    }
}

/// Calls `setTaskCompleted` once, whichever of the work and the expiration handler comes first.
private final class CompleteOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var task: BGTask?

    init(_ task: BGTask) { self.task = task }

    func complete(success: Bool) {
        lock.lock()
        let t = task
        task = nil
        lock.unlock()
        t?.setTaskCompleted(success: success)
    }
}
#endif
