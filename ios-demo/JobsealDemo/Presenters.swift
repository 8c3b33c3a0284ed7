// The screens' logic over the vault, the Swift twin of android-demo/core-ui. Every method that
// calls the vault blocks: the views call them from `Services.run` (a background queue), except
// enrolment and sync, which are async (`enrolWithDispatchAsync`, `syncAsync`).
import Foundation
import Jobseal

struct JobRow: Identifiable, Equatable {
    let id: String          // the job id
    let workOrder: String
    let summary: String
    let area: String
    let slot: String
    let state: String
    let access: String
}

struct TodayModel: Equatable {
    var toDo: [JobRow] = []
    var done: [JobRow] = []
    var later = 0
}

struct TodayPresenter {
    let vault: JobVault
    var texts = Texts()

    func load() throws -> TodayModel {
        // Trusted time, not the phone's clock.
        let now = try vault.trustedNowMs()
        return model(try vault.listJobs(), now: now)
    }

    func model(_ jobs: [JobInfo], now: Int64) -> TodayModel {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = texts.timeZone
        func day(_ ms: Int64) -> Date { calendar.startOfDay(for: Date(timeIntervalSince1970: Double(ms) / 1000)) }
        let today = day(now)
        let live = jobs.filter { $0.state.isLive }
        let toDo = live.filter { day($0.window.startMs) <= today }.sorted { $0.window.startMs < $1.window.startMs }
        let done = jobs.filter { !$0.state.isLive && day($0.shreddedAtMs ?? $0.updatedAtMs) == today }
            .sorted { $0.window.startMs < $1.window.startMs }
        return TodayModel(toDo: toDo.map { row($0, now) }, done: done.map { row($0, now) }, later: live.count - toDo.count)
    }

    func row(_ j: JobInfo, _ now: Int64) -> JobRow {
        JobRow(id: j.jobId, workOrder: j.workOrder, summary: j.work?.summary ?? "(no work details)",
               area: j.siteArea ?? "", slot: texts.slot(j.window.startMs, j.window.endMs),
               state: texts.state(j.state), access: accessText(j, now))
    }

    func accessText(_ j: JobInfo, _ now: Int64) -> String {
        if let shredded = j.shreddedAtMs { return "Customer data destroyed at \(texts.time(shredded))" }
        if !j.state.isLive { return "Closed" }
        if now < j.access.opensAtMs { return "Customer details from \(texts.time(j.access.opensAtMs))" }
        if now < j.access.closesAtMs {
            return "Customer details until \(texts.time(j.access.closesAtMs)) (\(texts.minutes(j.access.closesAtMs - now)) left)"
        }
        return "Access window closed at \(texts.time(j.access.closesAtMs))"
    }
}

enum JobAction: String, CaseIterable, Identifiable {
    case enRoute = "En route", onSite = "On site", close = "Close with report"
    var id: String { rawValue }
    var target: JobState? {
        switch self {
        case .enRoute: return .enRoute
        case .onSite: return .onSite
        case .close: return nil
        }
    }

    static func forState(_ s: JobState) -> [JobAction] {
        switch s {
        case .assigned: return [.enRoute, .onSite]
        case .enRoute: return [.onSite, .close]
        case .onSite: return [.close]
        default: return []
        }
    }
}

struct JobModel: Equatable {
    let workOrder: String
    let state: String
    let slot: String
    let area: String
    let summary: String
    let tasks: [String]
    let equipment: [String]
    let access: String
    let fieldLabels: [String]
    let actions: [JobAction]
    let canReveal: Bool
    let report: String?
}

/// One customer field as shown; `value` only while it may be seen. `description` never prints it.
struct FieldRow: Identifiable, CustomStringConvertible {
    let id: String          // the field name
    let label: String
    let value: String?
    let status: String
    var description: String { "FieldRow(\(id), visible=\(value != nil), status=\(status))" }
}

/// The answer of one tap on "Show customer details". Holds revealed values: keep it only in the
/// view showing them (`@State` of the job screen), drop it when the screen goes or the app
/// leaves the foreground. Time runs on the monotonic clock from the reveal's trusted instant.
struct RevealedJob: CustomStringConvertible {
    let reveal: Reveal
    let revealedAtMonotonicMs: Int64
    let texts: Texts

    func rows(at monotonicMs: Int64) -> [FieldRow] {
        let now = reveal.atMs + max(0, monotonicMs - revealedAtMonotonicMs)
        return reveal.fields.map { f in
            let label = texts.kind(f.kind)
            switch f.access {
            case let .visible(value, untilMs):
                return now < untilMs
                    ? FieldRow(id: f.name, label: label, value: value, status: "Hidden in \(texts.countdown(untilMs - now))")
                    : FieldRow(id: f.name, label: label, value: nil, status: "Access window closed at \(texts.time(untilMs))")
            case let .hidden(reason):
                return FieldRow(id: f.name, label: label, value: nil, status: texts.denial(reason))
            }
        }
    }

    func anyVisible(at monotonicMs: Int64) -> Bool { rows(at: monotonicMs).contains { $0.value != nil } }

    var description: String { "RevealedJob(\(reveal.jobId), fields=\(reveal.fields.count))" }
}

enum ReportCheck: Equatable {
    case ok(String)
    case invalid(String)
}

struct JobPresenter {
    let vault: JobVault
    let jobId: String
    let monotonicMs: () -> Int64
    var texts = Texts()
    static let maxReport = 4000

    func load() throws -> JobModel { model(try vault.job(jobId: jobId), now: try vault.trustedNowMs()) }

    func model(_ j: JobInfo, now: Int64) -> JobModel {
        JobModel(workOrder: j.workOrder, state: texts.state(j.state), slot: texts.slot(j.window.startMs, j.window.endMs),
                 area: j.siteArea ?? "", summary: j.work?.summary ?? "(no work details)",
                 tasks: j.work?.tasks ?? [], equipment: j.work?.equipment ?? [],
                 access: TodayPresenter(vault: vault, texts: texts).accessText(j, now),
                 fieldLabels: j.fields.map { texts.kind($0.kind) }, actions: JobAction.forState(j.state),
                 canReveal: j.state.isLive && !j.fields.isEmpty, report: j.report)
    }

    /// Every field shown or refused is audited by the vault: call on the technician's tap only.
    func reveal() throws -> RevealedJob {
        let at = monotonicMs()
        return RevealedJob(reveal: try vault.reveal(jobId: jobId), revealedAtMonotonicMs: at, texts: texts)
    }

    func perform(_ action: JobAction) throws -> JobModel {
        guard let target = action.target else { preconditionFailure("close goes through close(report:)") }
        return model(try vault.advance(jobId: jobId, to: target), now: try vault.trustedNowMs())
    }

    /// 1 to 4000 characters (Unicode scalars, as the core counts them) once trimmed. Needs no vault.
    static func check(_ text: String) -> ReportCheck {
        let report = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let length = report.unicodeScalars.count
        if length == 0 { return .invalid("Write what was done before closing the job.") }
        if length > Self.maxReport { return .invalid("The report is too long: \(length) characters, at most \(Self.maxReport).") }
        return .ok(report)
    }

    func close(report: String) throws -> ShredOutcome { try vault.closeJob(jobId: jobId, report: report) }
}

struct SyncModel: Equatable {
    let enrolled: Bool
    let enrolment: String
    let outbox: String
    let lastSync: String
    let offline: String?
    /// This phone's device id once enrolled (what dispatch assigns jobs to); not customer data.
    var deviceId: String? = nil
}

struct SyncPresenter {
    let vault: JobVault
    /// Enrolment and sync use the async API (`enrolWithDispatchAsync`, `syncAsync`): the screen
    /// awaits them instead of parking a thread on the network.
    let transport: PlatformAsyncTransport
    var texts = Texts()

    func load() throws -> SyncModel {
        let status = try vault.syncStatus()
        let deviceId: String? = try status.enrolled ? vault.deviceBundle().deviceId : nil
        return model(status, now: try vault.trustedNowMs(), deviceId: deviceId)
    }

    func model(_ s: SyncStatus, now: Int64, deviceId: String? = nil) -> SyncModel {
        let outbox: String
        switch s.pendingEvents {
        case 0: outbox = "Everything sent"
        case 1: outbox = "1 update waiting to be sent"
        default: outbox = "\(s.pendingEvents) updates waiting to be sent"
        }
        var offline: String?
        if s.consecutiveFailures > 0 {
            let attempts = s.consecutiveFailures == 1 ? "1 failed sync" : "\(s.consecutiveFailures) failed syncs"
            let retry = s.nextAttemptAtMs.map { $0 > now ? "Next try at \(texts.time($0))" : "Retry now" } ?? "Retry now"
            offline = "Offline: \(attempts). Nothing is lost. \(retry)."
        }
        return SyncModel(enrolled: s.enrolled, enrolment: s.enrolled ? "Enrolled with dispatch" : "Not enrolled",
                         outbox: outbox, lastSync: s.lastSuccessAtMs.map { "Last sync at \(texts.time($0))" } ?? "Never synced",
                         offline: offline, deviceId: deviceId)
    }

    /// `code`: the one-time enrolment code the operator gave the technician (needed the first
    /// time; empty is allowed when retrying after a lost answer).
    func enrol(dispatchKeyHex: String?, code: String?) async throws {
        let key = dispatchKeyHex.flatMap { $0.isEmpty ? nil : $0 }
        let typed = code.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 }
        _ = try await vault.enrolWithDispatchAsync(transport: transport, dispatchKeyHex: key, prekeys: 20, enrolmentCode: typed)
    }

    func syncNow() async throws -> String {
        let r = try await vault.syncAsync(transport: transport)
        var parts = [r.received.count == 1 ? "1 new job" : "\(r.received.count) new jobs"]
        if !r.revoked.isEmpty { parts.append("\(r.revoked.count) withdrawn by dispatch") }
        if !r.rejected.isEmpty { parts.append("\(r.rejected.count) refused") }
        parts.append(r.pending == 0 ? "everything sent" : "\(r.pending) still waiting")
        return parts.joined(separator: ", ")
    }
}
