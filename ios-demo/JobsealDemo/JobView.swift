// One job's screen: work details, customer details revealed on demand and dropped as soon as
// they may no longer be shown (time, state, app leaving the foreground, screen capture), state
// moves and the close with a report.
import Jobseal
import SwiftUI
import UIKit

/// One job: work details, customer details on tap with the time left, state buttons, close with
/// a report. Revealed values live only in `revealed` (this view's state): dropped when the view
/// goes away, when the scene leaves the foreground, while the screen is captured, and when their
/// time is up. Values are not selectable and are marked privacy-sensitive.
struct JobView: View {
    let jobId: String
    @Environment(\.scenePhase) private var phase
    @State private var model: JobModel?
    @State private var revealed: RevealedJob?
    @State private var report = ""
    @State private var message: String?
    @State private var captured = UIScreen.main.isCaptured
    private let services = Services.shared

    private var presenter: (JobVault) -> JobPresenter {
        { [jobId, services] vault in JobPresenter(vault: vault, jobId: jobId, monotonicMs: services.monotonicMs, texts: services.texts) }
    }

    var body: some View {
        List {
            if let m = model {
                Section {
                    Text("\(m.workOrder)  ·  \(m.state)").font(.headline).accessibilityIdentifier("header")
                    Text("\(m.slot)  ·  \(m.area)\n\(m.access)").accessibilityIdentifier("access")
                    Text(workText(m)).accessibilityIdentifier("work")
                }
                Section("Customer") { customer(m) }
                if !m.actions.filter({ $0 != .close }).isEmpty {
                    Section {
                        ForEach(m.actions.filter { $0 != .close }) { action in
                            Button(action.rawValue) { perform(action) }.accessibilityIdentifier("action:\(action)")
                        }
                    }
                }
                if m.actions.contains(.close) {
                    Section("Completion report") {
                        TextEditor(text: $report).frame(minHeight: 80).accessibilityIdentifier("report")
                        Button("Close job", role: .destructive, action: closeJob).accessibilityIdentifier("close")
                    }
                }
            }
            if let message { Text(message).accessibilityIdentifier("message") }
        }
        .navigationTitle("Job")
        .onAppear(perform: load)
        .onDisappear { revealed = nil }
        .onChange(of: phase) { newPhase in if newPhase != .active { revealed = nil } }
        .onReceive(NotificationCenter.default.publisher(for: UIScreen.capturedDidChangeNotification)) { _ in
            captured = UIScreen.main.isCaptured
            if captured { revealed = nil }
        }
    }

    @ViewBuilder
    private func customer(_ m: JobModel) -> some View {
        if let shown = revealed, !captured {
            // Re-rendered every second: countdowns tick, and values vanish at their untilMs.
            TimelineView(.periodic(from: .now, by: 1)) { _ in
                let now = services.monotonicMs()
                ForEach(shown.rows(at: now)) { row in
                    VStack(alignment: .leading) {
                        Text("\(row.label) · \(row.status)").font(.footnote)
                        if let value = row.value {
                            Text(value).bold()
                                .textSelection(.disabled)
                                .privacySensitive()
                                .accessibilityIdentifier("value:\(row.id)")
                        }
                    }
                }
            }
            Button("Hide") { revealed = nil }.accessibilityIdentifier("hide")
        } else {
            ForEach(m.fieldLabels, id: \.self) { Text("\($0): hidden") }
            if m.canReveal {
                Button("Show customer details", action: reveal).accessibilityIdentifier("reveal")
            }
        }
    }

    private func workText(_ m: JobModel) -> String {
        var s = m.summary
        for t in m.tasks { s += "\n• \(t)" }
        if !m.equipment.isEmpty { s += "\nEquipment: " + m.equipment.joined(separator: ", ") }
        if let r = m.report { s += "\n\nReport: \(r)" }
        return s
    }

    private func load() {
        let p = presenter
        services.run({ try p($0).load() }) { result in
            switch result {
            case let .success(m): model = m
            case let .failure(e): message = services.texts.error(e)
            }
        }
    }

    private func reveal() {
        message = nil
        let p = presenter
        services.run({ try p($0).reveal() }) { result in
            switch result {
            case let .success(r): revealed = r
            case let .failure(e): message = services.texts.error(e)
            }
        }
    }

    private func perform(_ action: JobAction) {
        message = nil
        let p = presenter
        services.run({ try p($0).perform(action) }) { result in
            switch result {
            case let .success(m): model = m
            case let .failure(e):
                message = services.texts.error(e)
                load()
            }
        }
    }

    private func closeJob() {
        let p = presenter
        switch JobPresenter.check(report) {
        case let .invalid(text):
            message = text
        case let .ok(text):
            revealed = nil
            services.run({ try p($0).close(report: text) }) { result in
                switch result {
                case let .success(outcome):
                    report = ""
                    message = "Job closed. Customer data destroyed (\(outcome.fieldsDestroyed) fields)."
                    load()
                case let .failure(e):
                    message = services.texts.error(e)
                }
            }
        }
    }
}
