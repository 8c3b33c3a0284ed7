// Tests of the package's hand-written platform pieces: the scheduling rule of the background
// helper, the clock's tick conversion and live readings, the URLSession transport's requests and
// its "no answer" contract, cutting a sync short with CancellableTransport, the Keychain keystore
// (where the process may use the Keychain), and the async API and event stream against the real
// library. macOS only (`swift test` after `build-xcframework.sh debug --test-support`); never
// compiled on this repository's Linux machine. BackgroundSync itself is iOS-only (BackgroundTasks):
// its rule is SyncSchedule, tested here.
import Foundation
@testable import Jobseal
import XCTest

final class SyncScheduleTests: XCTestCase {
    let now: Int64 = 1_900_000_000_000
    let policy = SyncSchedule.Policy(minimumDelay: 60, pendingDelay: 90, idleInterval: 900, maximumDelay: 21_600)

    func delay(enrolled: Bool = true, pending: UInt64 = 0, next: Int64? = nil, expiries: [Int64] = []) -> TimeInterval? {
        SyncSchedule.nextRunDelay(nowMs: now, enrolled: enrolled, pendingEvents: pending, nextAttemptAtMs: next,
                                  openHardExpiriesMs: expiries, policy: policy)
    }

    func testNothingToDoWhenNotEnrolledAndNoOpenJob() {
        XCTAssertNil(delay(enrolled: false))
    }

    func testIdlePollWhenNothingPending() {
        XCTAssertEqual(delay(), 900)
    }

    func testSoonWhenTheOutboxHasEvents() {
        XCTAssertEqual(delay(pending: 3), 90)
    }

    func testBackoffIsRespected() {
        XCTAssertEqual(delay(pending: 3, next: now + 600_000), 600)
    }

    func testBackoffInThePastMeansDueNow() {
        XCTAssertEqual(delay(pending: 0, next: now - 1), 900)
        XCTAssertEqual(delay(pending: 2, next: now - 1), 90)
    }

    func testHardExpiryComesFirstWhenEarlier() {
        XCTAssertEqual(delay(next: now + 3_600_000, expiries: [now + 300_000, now + 7_200_000]), 300)
    }

    func testHardExpiryAloneSchedulesASweepWhenNotEnrolled() {
        XCTAssertEqual(delay(enrolled: false, expiries: [now + 120_000]), 120)
    }

    func testClampedToMinimumAndMaximum() {
        XCTAssertEqual(delay(expiries: [now - 5_000]), 60, "an expiry already passed: sweep at the minimum delay")
        XCTAssertEqual(delay(next: now + 86_400_000), 21_600, "a day of backoff is capped")
        XCTAssertEqual(delay(next: Int64.max), 21_600, "no overflow")
        XCTAssertEqual(delay(enrolled: false, expiries: [Int64.min]), 60, "no overflow")
    }

    func testFromTheVaultsRecords() {
        let status = SyncStatus(enrolled: true, pendingEvents: 0, lastSuccessAtMs: nil, consecutiveFailures: 2,
                                nextAttemptAtMs: now + 240_000)
        XCTAssertEqual(SyncSchedule.nextRunDelay(nowMs: now, status: status, jobs: [], policy: policy), 240)
    }

    func testSyncDue() {
        XCTAssertFalse(SyncSchedule.syncDue(nowMs: now, enrolled: false, nextAttemptAtMs: nil))
        XCTAssertTrue(SyncSchedule.syncDue(nowMs: now, enrolled: true, nextAttemptAtMs: nil))
        XCTAssertTrue(SyncSchedule.syncDue(nowMs: now, enrolled: true, nextAttemptAtMs: now))
        XCTAssertFalse(SyncSchedule.syncDue(nowMs: now, enrolled: true, nextAttemptAtMs: now + 1))
    }
}

final class ClockTests: XCTestCase {
    func testTickConversion() {
        XCTAssertEqual(SystemPlatformClock.milliseconds(ticks: 1_000_000_000, numer: 1, denom: 1), 1000, "Intel: ticks are ns")
        XCTAssertEqual(SystemPlatformClock.milliseconds(ticks: 24_000_000, numer: 125, denom: 3), 1000, "Apple silicon: 24 MHz")
        // floor((2^64 - 1) * 125 / 3 / 10^6), computed with Python's integers.
        XCTAssertEqual(SystemPlatformClock.milliseconds(ticks: UInt64.max, numer: 125, denom: 3), 768_614_336_404_564,
                       "full width: no overflow")
        XCTAssertNil(SystemPlatformClock.milliseconds(ticks: 5, numer: 0, denom: 1))
        XCTAssertNil(SystemPlatformClock.milliseconds(ticks: 5, numer: 1, denom: 0))
        XCTAssertNil(SystemPlatformClock.milliseconds(ticks: UInt64.max, numer: UInt32.max, denom: 1), "beyond Int64")
    }

    func testLiveReadings() throws {
        let clock = SystemPlatformClock()
        let a = try XCTUnwrap(try clock.bootElapsedMs())
        let id = try XCTUnwrap(try clock.bootId())
        Thread.sleep(forTimeInterval: 0.05)
        let b = try XCTUnwrap(try clock.bootElapsedMs())
        XCTAssertGreaterThanOrEqual(b - a, 40)
        XCTAssertEqual(try clock.bootId(), id, "same boot, same id")
        XCTAssertLessThan(abs(try clock.wallNowMs() - Int64(Date().timeIntervalSince1970 * 1000)), 1000)
        XCTAssertEqual(SystemPlatformClock.bootId(seconds: 1_700_000_000, microseconds: 42), "1700000000.42")
    }
}

final class TransportTests: XCTestCase {
    func testRequestShape() throws {
        let t = URLSessionTransport(baseURL: URL(string: "https://dispatch.example.test/")!, timeout: 12)
        let r = try t.urlRequest(HttpRequest(method: "POST", path: "/v1/sync",
                                             headers: [HttpHeader(name: "content-type", value: "application/json")],
                                             body: Data("{}".utf8)))
        XCTAssertEqual(r.url?.absoluteString, "https://dispatch.example.test/v1/sync")
        XCTAssertEqual(r.httpMethod, "POST")
        XCTAssertEqual(r.value(forHTTPHeaderField: "content-type"), "application/json")
        XCTAssertEqual(r.httpBody, Data("{}".utf8))
        XCTAssertEqual(r.timeoutInterval, 12)
        let get = try t.urlRequest(HttpRequest(method: "GET", path: "/v1/time", headers: [], body: Data()))
        XCTAssertNil(get.httpBody)
        XCTAssertThrowsError(try t.urlRequest(HttpRequest(method: "GET", path: "v1/no-slash", headers: [], body: Data())))
    }

    func testNoAnswerIsNetworkInBothShapes() async throws {
        let t = URLSessionTransport(baseURL: URL(string: "http://127.0.0.1:9")!, timeout: 5)
        let request = HttpRequest(method: "GET", path: "/v1/time", headers: [], body: Data())
        do {
            _ = try await t.send(request: request)
            XCTFail("no error")
        } catch JobsealError.Network {
        }
        XCTAssertThrowsError(try t.blocking.send(request: request)) { e in
            guard case JobsealError.Network = e else { return XCTFail("not Network: \(e)") }
        }
    }

    /// A transport that answers after `seconds`, as a slow network does.
    final class SlowTransport: PlatformAsyncTransport, @unchecked Sendable {
        let seconds: Double
        init(_ seconds: Double) { self.seconds = seconds }
        func send(request: HttpRequest) async throws -> HttpResponse {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            return HttpResponse(status: 200, body: Data())
        }
    }

    func testCancellableTransportCutsARequestShort() async throws {
        let scoped = CancellableTransport(SlowTransport(10))
        let request = HttpRequest(method: "GET", path: "/v1/time", headers: [], body: Data())
        let started = Date()
        let pending = Task { try await scoped.send(request: request) }
        try await Task.sleep(nanoseconds: 100_000_000)
        scoped.cancel()
        do {
            _ = try await pending.value
            XCTFail("no error")
        } catch JobsealError.Network {
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the slow request was cancelled, not waited for")
        do {
            _ = try await scoped.send(request: request)
            XCTFail("a cancelled transport sends nothing")
        } catch JobsealError.Network {
        }
        let quick = try await CancellableTransport(SlowTransport(0)).send(request: request)
        XCTAssertEqual(quick.status, 200)
    }
}

final class KeychainKeyStoreTests: XCTestCase {
    /// Unsigned `swift test` runners may not use the data-protection keychain
    /// (errSecMissingEntitlement, -34018): then the test is skipped, and the keystore runs in the
    /// demo's UI tests on the simulator instead.
    func testRoundTripAndRealDelete() throws {
        let store = KeychainKeyStore(service: "io.jobseal.tests", namespace: "t-\(UUID().uuidString)-", preferSecureEnclave: false)
        do {
            try store.generate(alias: "jobseal-kek-1")
        } catch let JobsealError.KeyStore(detail) where detail.contains("-34018") || detail.contains("-25308") {
            throw XCTSkip("this test process may not use the Keychain (\(detail))")
        }
        defer { try? store.delete(alias: "jobseal-kek-1"); try? store.delete(alias: "jobseal-kek-2") }
        let secret = Data((0..<32).map { UInt8($0) })
        let wrapped = try store.wrap(alias: "jobseal-kek-1", plaintext: secret)
        XCTAssertNil(wrapped.range(of: secret), "wrapped bytes do not contain the key")
        XCTAssertEqual(try store.unwrap(alias: "jobseal-kek-1", wrapped: wrapped), secret)
        XCTAssertThrowsError(try store.generate(alias: "jobseal-kek-1"), "alias exists")

        try store.generate(alias: "jobseal-kek-2")
        XCTAssertThrowsError(try store.unwrap(alias: "jobseal-kek-2", wrapped: wrapped), "another alias cannot unwrap") { e in
            XCTAssertFalse("\(e)".contains(secret.map { String(format: "%02x", $0) }.joined()), "no key material in errors")
        }

        try store.delete(alias: "jobseal-kek-1")
        XCTAssertFalse(try store.contains(alias: "jobseal-kek-1"))
        XCTAssertThrowsError(try store.unwrap(alias: "jobseal-kek-1", wrapped: wrapped), "deleted: gone for good")
        XCTAssertNoThrow(try store.delete(alias: "jobseal-kek-1"), "deleting a missing alias succeeds")
    }
}

/// The async API and the event stream, against the real library (contract of issue 13 part 4).
final class AsyncApiTests: XCTestCase {
    var dir = ""

    override func setUp() { dir = tempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testAsyncTwinsAndEvents() async throws {
        let clock = TestClock(Slot.inside)
        let vault = try JobVault.open(dir: dir + "/vault", keystore: MemoryKeyStore(), clock: clock)
        let events = vault.events()
        let collected = Task { () -> [VaultEvent] in
            var seen: [VaultEvent] = []
            for await e in events {
                seen.append(e)
                if case .jobShredded = e { break }
            }
            return seen
        }

        let job = try vault.ingestSheetJson(sheetJson: Sheets.json(start: Slot.start))
        let listed = try await vault.listJobsAsync()
        XCTAssertEqual(listed.map(\.jobId), [job.jobId])
        try vault.advance(jobId: job.jobId, to: .onSite)
        let reveal = try await vault.revealAsync(jobId: job.jobId)
        XCTAssertEqual(reveal.visible("door_code"), Sheets.doorCode)
        let outcome = try await vault.closeJobAsync(jobId: job.jobId, report: "Done (test report).")
        XCTAssertEqual(outcome.state, .completed)
        let status = try await vault.syncStatusAsync()
        XCTAssertFalse(status.enrolled)

        let timeout = Task { try await Task.sleep(nanoseconds: 10_000_000_000); collected.cancel() }
        let seen = await collected.value
        timeout.cancel()
        XCTAssertTrue(seen.contains { if case let .jobShredded(o) = $0 { return o.jobId == job.jobId }; return false },
                      "the close arrived as jobShredded")
        for e in seen {
            XCTAssertFalse(Sheets.values.contains { "\(e)".contains($0) }, "events carry no customer value")
        }
    }

    func testSyncAsyncWithTheReferenceDispatchServer() async throws {
        let server = try DispatchServer(db: dir + "/dispatch.db")
        let vault = try JobVault.open(dir: dir + "/live", keystore: MemoryKeyStore(), clock: SystemPlatformClock())
        let transport = URLSessionTransport(baseURL: URL(string: server.baseUrl)!)
        let bundle = try await vault.enrolWithDispatchAsync(transport: transport, dispatchKeyHex: server.dispatchKeyHex,
                                                             prekeys: 5, enrolmentCode: try server.issueCode())
        let jobId = UUID().uuidString.lowercased()
        let sheet = Sheets.json(jobId: jobId, start: Date().addingTimeInterval(-30 * 60))
        let (code, _) = try server.operatorCall("POST", "/v1/operator/jobs", "{\"device_id\":\"\(bundle.deviceId)\",\"sheet\":\(sheet)}")
        XCTAssertEqual(code, 200)
        let report = try await vault.syncAsync(transport: transport)
        XCTAssertEqual(report.received, [jobId])

        // A sync cut short: the transport fails, the vault reports Network and loses nothing.
        let scoped = CancellableTransport(transport)
        scoped.cancel()
        do {
            _ = try await vault.syncAsync(transport: scoped)
            XCTFail("no error")
        } catch JobsealError.Network {
        }
        let status = try await vault.syncStatusAsync()
        XCTAssertEqual(status.consecutiveFailures, 1)
        XCTAssertNotNil(status.nextAttemptAtMs)
    }
}
