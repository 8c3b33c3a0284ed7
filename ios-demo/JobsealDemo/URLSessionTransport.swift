// The vault's transport on URLSession: every HTTP status is an answer, only "no answer" throws
// JobsealError.Network. Nothing is logged (bodies hold reports, the authorization header the
// device token). `send` blocks its caller: the vault calls it from `sync`, which the app runs on
// a background queue, never on the main thread.
import Foundation
import Jobseal

final class URLSessionTransport: PlatformTransport, @unchecked Sendable {
    private let base: URL
    // Ephemeral: no cookie store, no URL cache on disk.
    private let session = URLSession(configuration: .ephemeral)

    init(base: URL) { self.base = base }

    func send(request: HttpRequest) throws -> HttpResponse {
        guard request.path.hasPrefix("/"), let url = URL(string: base.absoluteString.trimmingTrailingSlash + request.path) else {
            throw JobsealError.InvalidInput(detail: "bad request path")
        }
        var r = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 30)
        r.httpMethod = request.method
        for h in request.headers { r.setValue(h.value, forHTTPHeaderField: h.name) }
        if request.method == "POST" { r.httpBody = request.body }

        let done = DispatchSemaphore(value: 0)
        var answer: HttpResponse?
        session.dataTask(with: r) { data, response, _ in
            if let http = response as? HTTPURLResponse {
                answer = HttpResponse(status: UInt16(clamping: http.statusCode), body: data ?? Data())
            }
            done.signal()
        }.resume()
        done.wait()
        guard let answer else { throw JobsealError.Network(detail: "no answer from dispatch") }
        return answer
    }
    // Production: pin the dispatch server's key (NSPinnedDomains in Info.plist, or compare the
    // server key's SHA-256 in a URLSessionDelegate), with a backup pin. HTTPS only.
}

private extension String {
    var trimmingTrailingSlash: String { hasSuffix("/") ? String(dropLast()) : self }
}
