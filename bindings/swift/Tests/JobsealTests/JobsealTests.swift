// The Kotlin suite's scenarios (bindings/kotlin/src/test), in Swift and compact, against the real
// library through the XCFramework (built with --test-support: ingestSheetJson, dispatchKeygen and
// sealJobSheet are test-support entry points). Runs on macOS only (`swift test`); never compiled
// in this repository's Linux machine.
import Foundation
import Jobseal
import XCTest

final class JobsealTests: XCTestCase {
    var dir = ""
    var clock = TestClock(Slot.before)
    var keystore = MemoryKeyStore()
    var vault: JobVault!

    override func setUpWithError() throws {
        dir = tempDir()
        clock = TestClock(Slot.before)
        keystore = MemoryKeyStore()
        vault = try JobVault.open(dir: dir + "/vault", keystore: keystore, clock: clock)
    }

    override func tearDown() {
        vault = nil
        try? FileManager.default.removeItem(atPath: dir)
    }

    func assertThrows(_ expected: (JobsealError) -> Bool, _ call: () throws -> Void, line: UInt = #line) {
        do {
            try call()
            XCTFail("no error", line: line)
        } catch let e as JobsealError {
            XCTAssertTrue(expected(e), "unexpected error kind", line: line)
            XCTAssertFalse(Sheets.values.contains { "\(e)".contains($0) }, "error carries a customer value", line: line)
        } catch {
            XCTFail("not a JobsealError", line: line)
        }
    }

    func testEnrolmentAndSealedDelivery() throws {
        let dispatch = try dispatchKeygen()
        XCTAssertFalse(dispatch.description.contains(dispatch.secretKeyHex))
        let bundle = try vault.enrol(dispatchKeyHex: dispatch.publicKeyHex, prekeys: 3)
        XCTAssertEqual(bundle.prekeyIds, [1, 2, 3])
        assertThrows({ if case .Enrolment = $0 { return true }; return false }) {
            _ = try self.vault.enrol(dispatchKeyHex: dispatch.publicKeyHex, prekeys: 3)
        }

        let envelope = try sealJobSheet(dispatchSecretHex: dispatch.secretKeyHex, bundleJson: bundle.json,
                                        prekeyId: 2, sheetJson: Sheets.json(start: Slot.start))
        var flipped = envelope
        flipped[flipped.count - 1] ^= 0x01
        assertThrows({ if case .Tampered = $0 { return true }; return false }) { _ = try self.vault.receive(envelope: flipped) }

        let job = try vault.receive(envelope: envelope)
        XCTAssertEqual(job.deliveredVia, .prekey(id: 2))
        XCTAssertEqual(try vault.deviceBundle().prekeyIds, [1, 3])
        assertThrows({ if case .Conflict = $0 { return true }; return false }) { _ = try self.vault.receive(envelope: envelope) }
    }

    func testRevealsFollowStateAndWindowThenCloseShreds() throws {
        let job = try vault.ingestSheetJson(sheetJson: Sheets.json(start: Slot.start))
        try vault.advance(jobId: job.jobId, to: .enRoute)
        guard case .notYetOpen? = try vault.reveal(jobId: job.jobId).hidden("customer_name") else {
            return XCTFail("expected not-yet-open")
        }
        clock.set(Slot.inside)
        var r = try vault.reveal(jobId: job.jobId)
        XCTAssertEqual(r.visible("customer_name"), Sheets.name)
        XCTAssertEqual(r.hidden("door_code"), .wrongState(state: .enRoute, allowed: [.onSite]))
        XCTAssertFalse(r.fields[0].access.description.contains(Sheets.name), "description must redact values")

        try vault.advance(jobId: job.jobId, to: .onSite)
        r = try vault.reveal(jobId: job.jobId)
        XCTAssertEqual(r.visible("door_code"), Sheets.doorCode)

        let outcome = try vault.closeJob(jobId: job.jobId, report: "Line activated (test report).")
        XCTAssertEqual(outcome.state, .completed)
        XCTAssertEqual(outcome.fieldsDestroyed, 3)
        XCTAssertEqual(keystore.aliases, ["jobseal-kek-\(outcome.epoch)"])
        assertThrows({ if case .AccessDenied(.shredded(.completed)) = $0 { return true }; return false }) {
            _ = try self.vault.reveal(jobId: job.jobId)
        }
        assertThrows({ if case .Conflict = $0 { return true }; return false }) {
            _ = try self.vault.closeJob(jobId: job.jobId, report: "again")
        }
        XCTAssertEqual(try vault.job(jobId: job.jobId).report, "Line activated (test report).")
        XCTAssertTrue(try vault.verifyAudit().valid)
        XCTAssertTrue(try vault.auditLog(jobId: job.jobId).contains { $0.kind == .reveal && $0.fieldsShown.contains("door_code") })
    }

    func testErrorKinds() throws {
        let job = try vault.ingestSheetJson(sheetJson: Sheets.json(start: Slot.start))
        assertThrows({ if case .NotFound = $0 { return true }; return false }) {
            _ = try self.vault.job(jobId: UUID().uuidString)
        }
        assertThrows({ if case .InvalidInput = $0 { return true }; return false }) {
            _ = try self.vault.reveal(jobId: "not-a-uuid")
        }
        assertThrows({ if case .InvalidInput = $0 { return true }; return false }) {
            _ = try self.vault.ingestSheetJson(sheetJson: "{ not json")
        }
        assertThrows({ if case .Conflict = $0 { return true }; return false }) {
            _ = try self.vault.closeJob(jobId: job.jobId, report: "too early")
        }

        clock.set(Slot.inside)
        try vault.advance(jobId: job.jobId, to: .onSite)
        keystore.failing = true
        assertThrows({ if case .KeyStore = $0 { return true }; return false }) {
            _ = try self.vault.closeJob(jobId: job.jobId, report: "Installed.")
        }
        keystore.failing = false
        XCTAssertEqual(try vault.job(jobId: job.jobId).state, .completed)
        let next = try vault.ingestSheetJson(sheetJson: Sheets.json(start: Slot.start))
        try vault.advance(jobId: next.jobId, to: .enRoute)
        XCTAssertEqual(try vault.reveal(jobId: next.jobId).visible("phone"), Sheets.phone)
    }

    func testEightThreadsShareOneVault() throws {
        clock.set(Slot.inside)
        let jobs = try (0..<8).map { _ in try vault.ingestSheetJson(sheetJson: Sheets.json(start: Slot.start)).jobId }
        let failures = NSLock()
        var failed = 0
        let vault = self.vault!
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            do {
                try vault.advance(jobId: jobs[t], to: .enRoute)
                for i in 0..<20 {
                    _ = try vault.reveal(jobId: jobs[t])
                    if i == 10 { try vault.advance(jobId: jobs[t], to: .onSite) }
                }
                if t % 2 == 0 { _ = try vault.closeJob(jobId: jobs[t], report: "Done by worker \(t).") }
            } catch {
                failures.lock(); failed += 1; failures.unlock()
            }
        }
        XCTAssertEqual(failed, 0)
        XCTAssertEqual(try vault.listJobs().filter { $0.state == .completed }.count, 4)
        XCTAssertEqual(vault.epoch(), 5)
        XCTAssertTrue(try vault.verifyAudit().valid)
    }

    func testSyncWithTheReferenceDispatchServer() throws {
        let server = try DispatchServer(db: dir + "/dispatch.db")
        let live = try JobVault.open(dir: dir + "/live", keystore: MemoryKeyStore(), clock: SystemPlatformClock())
        let transport = URLSessionTransport(baseURL: URL(string: server.baseUrl)!).blocking
        let bundle = try live.enrolWithDispatch(transport: transport, dispatchKeyHex: server.dispatchKeyHex, prekeys: 5, enrolmentCode: try server.issueCode())

        let jobId = UUID().uuidString.lowercased()
        let sheet = Sheets.json(jobId: jobId, start: Date().addingTimeInterval(-30 * 60))
        let (status, _) = try server.operatorCall("POST", "/v1/operator/jobs", "{\"device_id\":\"\(bundle.deviceId)\",\"sheet\":\(sheet)}")
        XCTAssertEqual(status, 200)
        XCTAssertEqual(try live.sync(transport: transport).received, [jobId])

        try live.advance(jobId: jobId, to: .onSite)
        XCTAssertEqual(try live.reveal(jobId: jobId).visible("door_code"), Sheets.doorCode)
        _ = try live.closeJob(jobId: jobId, report: "Line activated (test report).")
        XCTAssertEqual(try live.sync(transport: transport).pending, 0)

        let (code, view) = try server.operatorCall("GET", "/v1/operator/jobs/\(jobId)")
        XCTAssertEqual(code, 200)
        XCTAssertTrue(view.contains("\"verified\":true"))
        XCTAssertFalse(Sheets.values.contains { view.contains($0) })

        assertThrows({ if case .Network = $0 { return true }; return false }) {
            _ = try live.sync(transport: URLSessionTransport(baseURL: URL(string: "http://127.0.0.1:9")!).blocking)
        }
        XCTAssertEqual(try live.syncStatus().consecutiveFailures, 1)
    }
}
