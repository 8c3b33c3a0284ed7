// Hand-written, shipped in the package: the vault's events as a Swift `AsyncStream`, so that a
// screen can `for await` them instead of implementing the generated `VaultListener` protocol and
// remembering to remove it. The listener is added when the stream is created and removed when the
// stream terminates (consumer's task cancelled, loop left, or stream dropped).
//
// Built on the generated `JobVault.addListener(listener:) -> UInt64`, `removeListener(id:) -> Bool`
// and `protocol VaultListener { func onEvent(event: VaultEvent) throws }` (bindings/src/asynchronous.rs).
// Not compiled in this repository (no Swift toolchain here).
import Foundation

extension JobVault {
    /// How many undelivered events `events()` keeps by default when its consumer is slower than
    /// the vault: the newest 64.
    public static let defaultEventBuffer = 64

    /// The vault's events (job received, job changed, job shredded, sync status changed) as an
    /// `AsyncStream`.
    ///
    /// ```swift
    /// for await event in vault.events() {
    ///     switch event {
    ///     case .jobReceived, .jobChanged, .jobShredded: await reloadJobs()
    ///     case let .syncStatusChanged(status): show(status)
    ///     }
    /// }
    /// ```
    ///
    /// Buffering: `.bufferingNewest(64)` by default. Events are notifications to refresh, not the
    /// data itself: each carries the latest `JobInfo`, `ShredOutcome` or `SyncStatus`, and the vault
    /// can always be asked again (`listJobsAsync()`, `syncStatusAsync()`). So when a consumer falls
    /// behind, dropping the oldest undelivered events and keeping the newest loses nothing that a
    /// re-read does not give back, while memory stays bounded; an unbounded buffer would grow
    /// without limit behind a stalled consumer. Pass `.unbounded` if every event must be seen.
    ///
    /// Events carry no customer value (job metadata only). The listener is called on the thread
    /// of the vault call that caused the event; it only yields to the stream, so it never blocks
    /// the vault nor calls back into it.
    ///
    /// Each call adds one listener, removed when the stream terminates; the stream does not keep
    /// the vault alive, and finishes when the vault releases the listener (e.g. the vault is
    /// deallocated).
    public func events(
        bufferingPolicy: AsyncStream<VaultEvent>.Continuation.BufferingPolicy = .bufferingNewest(JobVault.defaultEventBuffer)
    ) -> AsyncStream<VaultEvent> {
        AsyncStream(VaultEvent.self, bufferingPolicy: bufferingPolicy) { continuation in
            let id = self.addListener(listener: StreamListener(continuation))
            continuation.onTermination = { [weak self] _ in
                _ = self?.removeListener(id: id)
            }
        }
    }
}

/// The `VaultListener` behind `JobVault.events()`: yields each event to the stream's continuation.
private final class StreamListener: VaultListener, @unchecked Sendable {
    private let continuation: AsyncStream<VaultEvent>.Continuation

    init(_ continuation: AsyncStream<VaultEvent>.Continuation) { self.continuation = continuation }

    /// The vault released this listener (removed, or the vault itself went away): end the stream
    /// so that a consumer does not wait forever. Finishing an already terminated stream is a no-op.
    deinit { continuation.finish() }

    func onEvent(event: VaultEvent) {
        continuation.yield(event)
    }
}
