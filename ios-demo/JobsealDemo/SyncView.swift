// The sync screen: enrolment with the operator's one-time code, the outbox and sync health, and
// "Sync now", all through the vault's async API.
import Jobseal
import SwiftUI

/// Sync status: enrolment, the outbox, the last sync, offline and the next retry. Enrolment and
/// "Sync now" await the vault's async API; the app also sweeps and syncs from the package's
/// BackgroundSync (BGAppRefreshTask) and when it becomes active (JobsealDemoApp).
struct SyncView: View {
    @State private var model: SyncModel?
    @State private var message: String?
    @State private var code = ""
    private let services = Services.shared

    var body: some View {
        List {
            if let m = model {
                Section {
                    Text([m.enrolment, m.deviceId.map { "Device \($0)" }, m.outbox, m.lastSync].compactMap { $0 }.joined(separator: "\n")).accessibilityIdentifier("sync-status")
                    if let offline = m.offline { Text(offline).accessibilityIdentifier("offline") }
                }
                Section {
                    if !m.enrolled {
                        TextField("Enrolment code from dispatch", text: $code)
                            .textInputAutocapitalization(.characters)
                            .autocorrectionDisabled()
                            .accessibilityIdentifier("enrolment-code")
                        Button("Enrol this phone") {
                            let typed = code
                            let key = services.dispatchKeyHex
                            act { try await $0.enrol(dispatchKeyHex: key, code: typed); return "Enrolled." }
                        }.accessibilityIdentifier("enrol")
                    }
                    Button("Sync now") { act { try await $0.syncNow() } }.accessibilityIdentifier("sync")
                }
            }
            if let message { Text(message).accessibilityIdentifier("message") }
        }
        .navigationTitle("Sync")
        .onAppear(perform: load)
    }

    private func presenter(_ vault: JobVault) -> SyncPresenter {
        SyncPresenter(vault: vault, transport: services.transport, texts: services.texts)
    }

    private func load() {
        services.run({ try presenter($0).load() }) { result in
            switch result {
            case let .success(m): model = m
            case let .failure(e): message = services.texts.error(e)
            }
        }
    }

    private func act(_ work: @escaping (SyncPresenter) async throws -> String) {
        message = "Working…"
        Task { @MainActor in
            do {
                let vault = try await services.vault()
                message = try await work(presenter(vault))
            } catch {
                message = services.texts.error(error)
            }
            load()
        }
    }
}
