// Test doubles: an in-memory keystore on CryptoKit AES-GCM (the package's KeychainKeyStore has
// the same shape but needs a signed process on macOS), a clock the test controls, fake job sheets
// and the reference dispatch server. The transport is the package's URLSessionTransport.
// Every customer value here is obviously fake. These tests need an XCFramework built with
// `build-xcframework.sh debug --test-support` (they ingest and seal sheets locally).
import CryptoKit
import Foundation
import Jobseal
import XCTest

final class MemoryKeyStore: PlatformKeyStore, @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [String: SymmetricKey] = [:]
    private var _failing = false

    /// Makes every call throw, as a keystore does when the key is unusable.
    var failing: Bool {
        get { lock.lock(); defer { lock.unlock() }; return _failing }
        set { lock.lock(); _failing = newValue; lock.unlock() }
    }

    var aliases: Set<String> { lock.lock(); defer { lock.unlock() }; return Set(keys.keys) }

    private func key(_ alias: String) throws -> SymmetricKey {
        lock.lock(); defer { lock.unlock() }
        if _failing { throw JobsealError.KeyStore(detail: "key is not usable: user not authenticated") }
        guard let k = keys[alias] else { throw JobsealError.KeyStore(detail: "no key under alias \(alias)") }
        return k
    }

    func generate(alias: String) throws {
        lock.lock(); defer { lock.unlock() }
        if _failing { throw JobsealError.KeyStore(detail: "key is not usable: user not authenticated") }
        guard keys[alias] == nil else { throw JobsealError.KeyStore(detail: "alias \(alias) already exists") }
        keys[alias] = SymmetricKey(size: .bits256)
    }

    func wrap(alias: String, plaintext: Data) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: try key(alias), authenticating: Data(alias.utf8))
        return box.combined!
    }

    func unwrap(alias: String, wrapped: Data) throws -> Data {
        let k = try key(alias)
        do {
            return try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: k, authenticating: Data(alias.utf8))
        } catch {
            throw JobsealError.KeyStore(detail: "key \(alias) cannot unwrap these bytes")
        }
    }

    func delete(alias: String) throws {
        lock.lock(); defer { lock.unlock() }
        if _failing { throw JobsealError.KeyStore(detail: "key is not usable: user not authenticated") }
        keys[alias] = nil
    }
}

final class TestClock: PlatformClock, @unchecked Sendable {
    private let lock = NSLock()
    private var wall: Int64

    init(_ start: Date) { wall = Int64(start.timeIntervalSince1970 * 1000) }

    func set(_ t: Date) { lock.lock(); wall = Int64(t.timeIntervalSince1970 * 1000); lock.unlock() }
    func wallNowMs() throws -> Int64 { lock.lock(); defer { lock.unlock() }; return wall }
    func bootElapsedMs() throws -> Int64? { nil }
    func bootId() throws -> String? { nil }
}

enum Sheets {
    static let name = "Fake Customer"
    static let phone = "+33 6 00 00 00 00"
    static let doorCode = "0000A"
    static let values = [name, phone, doorCode]

    static func json(jobId: String = UUID().uuidString.lowercased(), version: Int = 1, start: Date) -> String {
        let f = ISO8601DateFormatter()
        let end = start.addingTimeInterval(2 * 3600)
        return """
        {"format": "jobseal.sheet.v1", "job_id": "\(jobId)", "version": \(version), "work_order": "WO-TEST-0001",
         "window": {"start": "\(f.string(from: start))", "end": "\(f.string(from: end))"},
         "access": {"open_before_minutes": 60, "close_after_minutes": 120,
                    "hard_expiry": "\(f.string(from: end.addingTimeInterval(10 * 3600)))"},
         "work": {"summary": "Fibre installation (test job)", "tasks": [], "equipment": []},
         "site_area": "Lyon 3e",
         "customer": [
           {"name": "customer_name", "kind": "name", "value": "\(name)", "reveal_in": ["en-route", "on-site"]},
           {"name": "phone", "kind": "phone", "value": "\(phone)", "reveal_in": ["en-route", "on-site"]},
           {"name": "door_code", "kind": "door-code", "value": "\(doorCode)", "reveal_in": ["on-site"]}]}
        """
    }
}

enum Slot {
    static let start = ISO8601DateFormatter().date(from: "2030-06-12T08:00:00Z")!
    static let before = start.addingTimeInterval(-2 * 3600)
    static let inside = start.addingTimeInterval(30 * 60)
    static let afterClose = start.addingTimeInterval(4 * 3600 + 60)
}

func tempDir() -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("jobseal-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

extension Reveal {
    func visible(_ field: String) -> String? {
        guard case let .visible(value, _) = fields.first(where: { $0.name == field })?.access else { return nil }
        return value
    }

    func hidden(_ field: String) -> DenialReason? {
        guard case let .hidden(reason) = fields.first(where: { $0.name == field })?.access else { return nil }
        return reason
    }
}

/// `jobseal-dispatch serve` on a free loopback port, from the repository's target/debug.
final class DispatchServer {
    let process = Process()
    let operatorToken = UUID().uuidString + UUID().uuidString
    private(set) var baseUrl = ""
    private(set) var dispatchKeyHex = ""

    init(db: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../..").standardized
        let bin = ProcessInfo.processInfo.environment["JOBSEAL_DISPATCH_BIN"]
            ?? root.appendingPathComponent("target/debug/jobseal-dispatch").path
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            throw XCTSkip("no dispatch server at \(bin): cargo build -p jobseal-dispatch")
        }
        process.executableURL = URL(fileURLWithPath: bin)
        process.arguments = ["serve", "--db", db, "--addr", "127.0.0.1:0"]
        // The token goes in the environment, never on the command line (where `ps` shows it).
        var env = ProcessInfo.processInfo.environment
        env["JOBSEAL_OPERATOR_TOKEN"] = operatorToken
        process.environment = env
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(text.contains("listening on ") && text.contains("dispatch key ")) {
            text += String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        }
        for line in text.split(separator: "\n") {
            if let r = line.range(of: "listening on ") { baseUrl = String(line[r.upperBound...]) }
            if let r = line.range(of: "dispatch key ") { dispatchKeyHex = String(line[r.upperBound...]) }
        }
        guard !baseUrl.isEmpty, !dispatchKeyHex.isEmpty else {
            process.terminate()
            throw XCTSkip("the dispatch server did not start")
        }
    }

    func operatorCall(_ method: String, _ path: String, _ body: String = "") throws -> (Int, String) {
        var r = URLRequest(url: URL(string: baseUrl + path)!)
        r.httpMethod = method
        r.setValue("Bearer \(operatorToken)", forHTTPHeaderField: "authorization")
        r.setValue("application/json", forHTTPHeaderField: "content-type")
        if method == "POST" { r.httpBody = Data(body.utf8) }
        let done = DispatchSemaphore(value: 0)
        var result = (0, "")
        URLSession.shared.dataTask(with: r) { data, response, _ in
            result = ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data ?? Data(), as: UTF8.self))
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    /// Issues a one-time enrolment code, as a dispatcher's console does.
    func issueCode() throws -> String {
        let (status, body) = try operatorCall("POST", "/v1/operator/enrolment-codes", "{}")
        guard status == 200, let r = body.range(of: "\"code\":\"") else { throw XCTSkip("no enrolment code: HTTP \(status)") }
        return String(body[r.upperBound...].prefix { $0 != "\"" })
    }

    deinit { process.terminate() }
}
