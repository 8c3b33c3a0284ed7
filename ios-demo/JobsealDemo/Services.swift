// What the screens share: one vault for the app, the transport, the monotonic clock, the
// background sync helper and a serial background queue for the blocking vault calls (SQLite,
// Keychain). The keystore, clock, transport and background helper are the Jobseal package's
// (KeychainKeyStore, SystemPlatformClock, URLSessionTransport, BackgroundSync); the app only
// chooses where the vault lives and how it reaches dispatch.
//
// Test seeding (a vault with one fake job sealed locally) uses the library's test-support entry
// points (dispatchKeygen, sealJobSheet), which only an XCFramework built with
// `build-xcframework.sh ... --test-support` has. It compiles only when JOBSEAL_TEST_SUPPORT is set,
// which project.yml sets for the Debug configuration alone: the Release configuration never
// references those functions and builds against the production XCFramework.
import Foundation
import Jobseal

final class Services: @unchecked Sendable {
    static let shared = Services()

    /// The BGTaskScheduler identifier, also in Info.plist (project.yml).
    static let backgroundTaskId = "io.jobseal.demo.sync"

    let clock = SystemPlatformClock()
    let texts = Texts()
    let transport: URLSessionTransport
    let dispatchKeyHex: String?
    /// Sweep + sync in the background; nil in UI tests (no dispatch there).
    private(set) var background: BackgroundSync?
    private let queue = DispatchQueue(label: "io.jobseal.demo.vault", qos: .userInitiated)
    private let openVault: () throws -> JobVault
    private var opened: JobVault?   // touched on `queue` only

    private init() {
        let info = Bundle.main.infoDictionary ?? [:]
        let url = (info["JobsealDispatchURL"] as? String).flatMap(URL.init(string:)) ?? URL(string: "http://127.0.0.1:8787")!
        let key = (info["JobsealDispatchKey"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        #if DEBUG && JOBSEAL_TEST_SUPPORT
        if ProcessInfo.processInfo.arguments.contains("-ui-testing") {
            let env = ProcessInfo.processInfo.environment
            transport = URLSessionTransport(baseURL: env["JOBSEAL_DISPATCH_URL"].flatMap(URL.init(string:)) ?? URL(string: "http://127.0.0.1:9")!)
            dispatchKeyHex = nil
            openVault = { try UITestSeed.openSeededVault(clock: SystemPlatformClock()) }
            return
        }
        #endif
        transport = URLSessionTransport(baseURL: url)
        dispatchKeyHex = key
        // AfterFirstUnlockThisDeviceOnly (the package's default) so that a background sweep can
        // finish a shred while the phone is locked in a pocket.
        openVault = {
            try JobVault.open(dir: try Services.vaultDirectory().path,
                              keystore: KeychainKeyStore(service: "io.jobseal.demo.kek"), clock: SystemPlatformClock())
        }
        background = BackgroundSync(identifier: Services.backgroundTaskId, transport: transport) {
            try await Services.shared.vault()
        }
    }

    /// Application Support/jobseal, excluded from iCloud and iTunes/Finder backups, protected
    /// until first unlock. `isExcludedFromBackup` is set again at every launch.
    static func vaultDirectory() throws -> URL {
        let support = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask,
                                                  appropriateFor: nil, create: true)
        var dir = support.appendingPathComponent("jobseal", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true,
            attributes: [.protectionKey: FileProtectionType.completeUntilFirstUserAuthentication])
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try dir.setResourceValues(values)
        return dir
    }

    /// The monotonic clock of the countdowns: mach_continuous_time, through the package's clock.
    func monotonicMs() -> Int64 { (try? clock.bootElapsedMs()) ?? Int64(ProcessInfo.processInfo.systemUptime * 1000) }

    /// The app's one vault, opened on the background queue on first use (for async callers: the
    /// background helper, the event stream, the sync screen).
    func vault() async throws -> JobVault {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result {
                    if self.opened == nil { self.opened = try self.openVault() }
                    return self.opened!
                })
            }
        }
    }

    /// Runs `work` with the vault on the background queue, then `done` on the main queue.
    func run<T>(_ work: @escaping (JobVault) throws -> T, done: @escaping (Result<T, Error>) -> Void) {
        queue.async {
            let result = Result { () throws -> T in
                if self.opened == nil { self.opened = try self.openVault() }
                return try work(self.opened!)
            }
            DispatchQueue.main.async { done(result) }
        }
    }
}

#if DEBUG && JOBSEAL_TEST_SUPPORT
/// The UI tests' vault: a fresh temporary directory, a fresh Keychain namespace, and one fake job
/// delivered the way dispatch delivers it (sealed to a one-time prekey), with no server.
enum UITestSeed {
    static let name = "Fake Customer"
    static let doorCode = "0000A"

    static func openSeededVault(clock: PlatformClock) throws -> JobVault {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jobseal-uitest-\(UUID().uuidString)")
        let vault = try JobVault.open(dir: dir.path,
                                      keystore: KeychainKeyStore(service: "io.jobseal.demo.kek", namespace: "uitest-\(UUID().uuidString)-"),
                                      clock: clock)
        let dispatch = try dispatchKeygen()
        let bundle = try vault.enrol(dispatchKeyHex: dispatch.publicKeyHex, prekeys: 3)
        let jobId = UUID().uuidString.lowercased()
        let start = Date().addingTimeInterval(-30 * 60)
        let envelope = try sealJobSheet(dispatchSecretHex: dispatch.secretKeyHex, bundleJson: bundle.json,
                                        prekeyId: bundle.prekeyIds.first, sheetJson: sheet(jobId: jobId, start: start))
        _ = try vault.receive(envelope: envelope)
        if ProcessInfo.processInfo.arguments.contains("-seed-closed") {
            _ = try vault.advance(jobId: jobId, to: .onSite)
            _ = try vault.closeJob(jobId: jobId, report: "Closed by the UI test seed.")
        }
        return vault
    }

    static func sheet(jobId: String, start: Date) -> String {
        let iso = ISO8601DateFormatter()
        func t(_ d: Date) -> String { iso.string(from: d) }
        return """
        {"format": "jobseal.sheet.v1", "job_id": "\(jobId)", "version": 1, "work_order": "WO-UITEST-0001",
         "window": {"start": "\(t(start))", "end": "\(t(start.addingTimeInterval(7200)))"},
         "access": {"open_before_minutes": 60, "close_after_minutes": 120, "hard_expiry": "\(t(start.addingTimeInterval(43200)))"},
         "work": {"summary": "Fibre installation (UI test)", "tasks": ["Fit the optical outlet"], "equipment": []},
         "site_area": "Lyon 3e",
         "customer": [
           {"name": "customer_name", "kind": "name", "value": "\(name)", "reveal_in": ["en-route", "on-site"]},
           {"name": "door_code", "kind": "door-code", "value": "\(doorCode)", "reveal_in": ["on-site"]}
         ]}
        """
    }
}
#endif
