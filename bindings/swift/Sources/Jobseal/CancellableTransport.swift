// Hand-written, shipped in the package: a way to stop a `syncAsync` in flight. UniFFI 0.32's Swift
// futures do not forward task cancellation into Rust (the template awaits Rust with a plain
// continuation), so cancelling the Swift task that awaits `syncAsync` does not stop the sync.
// What does stop it is its transport failing: `cancel()` cancels the request in flight and makes
// every later one throw `JobsealError.Network`; the vault then ends the sync as it does offline,
// with nothing lost (the outbox stays, the backoff applies). BackgroundSync uses it when iOS
// expires a background task. Not compiled in this repository (no Swift toolchain here).
import Foundation

/// Wraps a `PlatformAsyncTransport` so that a sync using it can be cut short.
///
/// ```swift
/// let scoped = CancellableTransport(transport)
/// let sync = Task { try await vault.syncAsync(transport: scoped) }
/// // later, e.g. when the user leaves the screen or background time runs out:
/// scoped.cancel()      // the sync ends soon with JobsealError.Network
/// ```
///
/// One instance per sync: once cancelled it stays cancelled.
public final class CancellableTransport: PlatformAsyncTransport, @unchecked Sendable {
    private let inner: PlatformAsyncTransport
    private let lock = NSLock()
    private var cancelled = false
    private var inFlight: [UInt64: Task<HttpResponse, Error>] = [:]
    private var nextId: UInt64 = 0

    /// Wraps `inner`; requests go through it until `cancel()`.
    public init(_ inner: PlatformAsyncTransport) { self.inner = inner }

    /// Whether `cancel()` was called.
    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    /// Cancels the request in flight (its task) and makes every later `send` throw `Network`.
    public func cancel() {
        lock.lock()
        cancelled = true
        let tasks = Array(inFlight.values)
        inFlight.removeAll()
        lock.unlock()
        tasks.forEach { $0.cancel() }
    }

    /// Throws `JobsealError.Network` once cancelled; for callers that do several steps.
    public func checkNotCancelled() throws {
        if isCancelled { throw JobsealError.Network(detail: "sync cancelled") }
    }

    /// Sends through the wrapped transport, unless cancelled; a cancellation while waiting ends
    /// the request and throws `Network`. Cancelling the calling task (as UniFFI does when the
    /// Rust side drops the call) cancels the request too.
    public func send(request: HttpRequest) async throws -> HttpResponse {
        let (id, task) = try begin(request)
        defer { end(id) }
        do {
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        } catch let e as JobsealError {
            throw isCancelled ? JobsealError.Network(detail: "sync cancelled") : e
        } catch {
            throw JobsealError.Network(detail: isCancelled || Task.isCancelled ? "sync cancelled" : "no answer from dispatch")
        }
    }

    // Locking lives in synchronous helpers: NSLock's lock() is unavailable from async contexts.
    private func begin(_ request: HttpRequest) throws -> (UInt64, Task<HttpResponse, Error>) {
        let inner = self.inner
        lock.lock()
        defer { lock.unlock() }
        if cancelled { throw JobsealError.Network(detail: "sync cancelled") }
        let id = nextId
        nextId += 1
        let task = Task { try await inner.send(request: request) }
        inFlight[id] = task
        return (id, task)
    }

    private func end(_ id: UInt64) {
        lock.lock()
        inFlight[id] = nil
        lock.unlock()
    }
}
