// Hand-written, shipped in the package: the vault's transport to dispatch on URLSession, in both
// shapes the vault takes (`PlatformAsyncTransport` for `syncAsync`, and through `.blocking` a
// `PlatformTransport` for `sync`), so that apps do not each re-implement the contract: every HTTP status is an
// answer, only "no answer" throws `JobsealError.Network`, nothing is logged (bodies hold reports,
// the authorization header the device token), and nothing is cached or stored in cookies.
//
// Two types rather than one class with a sync and an async `send(request:)`: Swift allows that
// overload, but a sync method can also witness an async protocol requirement, and we do not want
// to depend on how the compiler picks between them.
//
// Not compiled in this repository (no Swift toolchain here); `swift test` exercises it on the
// macOS lane.
import Foundation

/// Sends the vault's requests to dispatch with `URLSession`.
///
/// ```swift
/// let transport = URLSessionTransport(baseURL: URL(string: "https://dispatch.example.com")!)
/// let report = try await vault.syncAsync(transport: transport)
/// ```
///
/// - `send(request:)` suspends and is cancelled with its task. For the blocking calls (`sync`,
///   `enrolWithDispatch`) pass `transport.blocking`, which waits on a semaphore: call those off
///   the main thread.
/// - The session is `.ephemeral` by default: no cookie store, no URL cache on disk.
/// - Certificate pinning: pass a `delegate` implementing
///   `urlSession(_:didReceive:completionHandler:)`, or declare `NSPinnedDomains` in the app's
///   Info.plist. Keep App Transport Security on (HTTPS only).
public final class URLSessionTransport: PlatformAsyncTransport, @unchecked Sendable {
    /// Dispatch's base URL; request paths (which start with `/`) are appended to it.
    public let baseURL: URL
    /// Seconds before a request without an answer fails with `Network`.
    public let timeout: TimeInterval
    private let session: URLSession

    /// - Parameters:
    ///   - baseURL: dispatch's base URL, e.g. `https://dispatch.example.com` (a trailing `/` is ignored).
    ///   - configuration: `.ephemeral` unless you have a reason; a copy is used, with URL cache and
///     cookies turned off.
    ///   - delegate: for certificate pinning (server trust challenges); held strongly by the session.
    ///   - timeout: per request, in seconds.
    public init(baseURL: URL, configuration: URLSessionConfiguration = .ephemeral,
                delegate: URLSessionDelegate? = nil, timeout: TimeInterval = 30) {
        self.baseURL = baseURL
        self.timeout = timeout
        let configuration = (configuration.copy() as? URLSessionConfiguration) ?? .ephemeral
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
    }

    deinit { session.finishTasksAndInvalidate() }

    /// The same transport as a blocking `PlatformTransport`, for `JobVault.sync` and
    /// `enrolWithDispatch` (same session, same contract).
    public var blocking: PlatformTransport { BlockingURLSessionTransport(self) }

    /// Async send, for `JobVault.syncAsync` / `enrolWithDispatchAsync`: same contract; a cancelled
    /// task ends the request and throws `JobsealError.Network`.
    public func send(request: HttpRequest) async throws -> HttpResponse {
        let r = try urlRequest(request)
        if Task.isCancelled { throw JobsealError.Network(detail: "request cancelled") }
        do {
            let (data, response) = try await session.data(for: r)
            return try Self.answer(data: data, response: response, error: nil).get()
        } catch let e as JobsealError {
            throw e
        } catch is CancellationError {
            throw JobsealError.Network(detail: "request cancelled")
        } catch {
            throw Self.networkError(error)
        }
    }

    /// The `URLRequest` for one vault request: base URL + path, method, headers, body.
    /// Internal so that the tests can check it without a network.
    func urlRequest(_ request: HttpRequest) throws -> URLRequest {
        guard request.path.hasPrefix("/"),
              let url = URL(string: Self.trimmingTrailingSlash(baseURL.absoluteString) + request.path) else {
            throw JobsealError.InvalidInput(detail: "bad request path")
        }
        var r = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        r.httpMethod = request.method
        r.httpShouldHandleCookies = false
        for h in request.headers { r.setValue(h.value, forHTTPHeaderField: h.name) }
        if request.method != "GET" && request.method != "HEAD" { r.httpBody = request.body }
        return r
    }

    /// Blocking send (see `blocking`): waits for the data task's completion handler.
    func sendBlocking(_ request: HttpRequest) throws -> HttpResponse {
        let r = try urlRequest(request)
        let done = DispatchSemaphore(value: 0)
        let box = AnswerBox()
        session.dataTask(with: r) { data, response, error in
            box.set(Self.answer(data: data, response: response, error: error))
            done.signal()
        }.resume()
        done.wait()
        return try box.get()
    }

    private static func answer(data: Data?, response: URLResponse?, error: Error?) -> Result<HttpResponse, JobsealError> {
        if let http = response as? HTTPURLResponse {
            return .success(HttpResponse(status: UInt16(clamping: http.statusCode), body: data ?? Data()))
        }
        return .failure(networkError(error))
    }

    /// "No answer", with the `URLError` code only: its description may quote the URL.
    private static func networkError(_ error: Error?) -> JobsealError {
        if let code = (error as? URLError)?.code {
            return code == .cancelled
                ? JobsealError.Network(detail: "request cancelled")
                : JobsealError.Network(detail: "no answer from dispatch (URLError \(code.rawValue))")
        }
        return JobsealError.Network(detail: "no answer from dispatch")
    }

    private static func trimmingTrailingSlash(_ s: String) -> String { s.hasSuffix("/") ? String(s.dropLast()) : s }
}

/// `URLSessionTransport.blocking`: the blocking shape of the same transport.
public final class BlockingURLSessionTransport: PlatformTransport, @unchecked Sendable {
    private let transport: URLSessionTransport

    /// Wraps `transport`; usually obtained as `transport.blocking`.
    public init(_ transport: URLSessionTransport) { self.transport = transport }

    /// Returns every HTTP answer; throws `JobsealError.Network` only when none came. Blocks the
    /// calling thread until then (at most the transport's timeout): never call on the main thread.
    public func send(request: HttpRequest) throws -> HttpResponse { try transport.sendBlocking(request) }
}

/// The completion handler's result, handed to the waiting thread.
private final class AnswerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<HttpResponse, JobsealError> = .failure(.Network(detail: "no answer from dispatch"))

    func set(_ r: Result<HttpResponse, JobsealError>) { lock.lock(); result = r; lock.unlock() }
    func get() throws -> HttpResponse { lock.lock(); defer { lock.unlock() }; return try result.get() }
}
