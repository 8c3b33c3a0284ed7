// What the screens say, computed from the bindings' records. The same rules as the Android
// demo's presenters (android-demo/core-ui), which are tested on the JVM. Nothing here logs, and
// no function puts a customer value into a string: only field kinds, states, times and
// value-free error details.
import Foundation
import Jobseal

struct Texts {
    var timeZone: TimeZone = .current

    private var hhmm: DateFormatter {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_GB_POSIX")
        f.dateFormat = "HH:mm"
        f.timeZone = timeZone
        return f
    }

    func time(_ ms: Int64) -> String { hhmm.string(from: Date(timeIntervalSince1970: Double(ms) / 1000)) }

    func slot(_ start: Int64, _ end: Int64) -> String { "\(time(start))–\(time(end))" }

    func state(_ s: JobState) -> String {
        switch s {
        case .assigned: return "Assigned"
        case .enRoute: return "En route"
        case .onSite: return "On site"
        case .completed: return "Completed"
        case .cancelled: return "Cancelled"
        case .revoked: return "Withdrawn by dispatch"
        case .expired: return "Expired"
        }
    }

    func kind(_ k: FieldKind) -> String {
        switch k {
        case .name: return "Customer"
        case .phone: return "Phone"
        case .relayPhone: return "Phone (relay)"
        case .email: return "Email"
        case .address: return "Address"
        case .floor: return "Floor"
        case .doorCode: return "Door code"
        case .note: return "Note"
        case .text: return "Details"
        }
    }

    func denial(_ r: DenialReason) -> String {
        switch r {
        case let .notYetOpen(opensAtMs): return "Available from \(time(opensAtMs))"
        case let .windowClosed(closedAtMs): return "Access window closed at \(time(closedAtMs))"
        case let .wrongState(_, allowed): return "Shown when " + allowed.map { state($0).lowercased() }.joined(separator: " or ")
        case let .shredded(s): return "Destroyed: job \(state(s).lowercased())"
        }
    }

    /// "4:59" under an hour, "1 h 05 min" above, "0:00" when over (rounded up to the second).
    func countdown(_ remainingMs: Int64) -> String {
        guard remainingMs > 0 else { return "0:00" }
        let s = (remainingMs + 999) / 1000
        return s >= 3600 ? String(format: "%d h %02d min", s / 3600, (s % 3600) / 60)
                         : String(format: "%d:%02d", s / 60, s % 60)
    }

    func minutes(_ ms: Int64) -> String {
        let m = (max(ms, 0) + 59_999) / 60_000
        return m >= 60 ? String(format: "%d h %02d min", m / 60, m % 60) : "\(m) min"
    }

    func error(_ e: Error) -> String {
        guard let e = e as? JobsealError else { return "Unexpected error; nothing was changed." }
        switch e {
        case let .AccessDenied(reason): return denial(reason)
        case .NotFound: return "This job is no longer on this phone."
        case .Conflict: return "This job changed meanwhile; it was reloaded."
        case .Network: return "No connection to dispatch. Nothing is lost; it will be sent later."
        case let .Dispatch(status, _): return "Dispatch refused the request (HTTP \(status))."
        case .Enrolment: return "This phone is not enrolled with dispatch."
        case .KeyStore: return "The keychain is unavailable. Unlock the phone and try again."
        case let .InvalidInput(detail): return "Invalid input: \(detail)"
        case .Tampered: return "A job sheet failed its integrity check and was discarded."
        case .Storage: return "The job store failed; nothing was changed."
        case .Internal: return "Unexpected error; nothing was changed."
        }
    }
}

extension JobState {
    var isLive: Bool { self == .assigned || self == .enRoute || self == .onSite }
}
