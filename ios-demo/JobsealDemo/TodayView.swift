// Today's jobs. Reloads on appear, on pull-to-refresh, and whenever the vault reports a change
// (the package's `JobVault.events()` stream: a job received by a background sync, a state change,
// a shred), so the list is never stale after background work.
import Jobseal
import SwiftUI

/// Today's jobs: slot, work order, state and where the access window stands. No customer value.
struct TodayView: View {
    @State private var model = TodayModel()
    @State private var message: String?
    private let services = Services.shared

    var body: some View {
        List {
            if let message { Text(message).accessibilityIdentifier("status") }
            Section("To do") { ForEach(model.toDo) { row($0) } }
            Section("Done today") { ForEach(model.done) { row($0) } }
            if model.later > 0 { Text("\(model.later) more on later days") }
        }
        .navigationTitle("Today")
        .toolbar {
            NavigationLink("Sync") { SyncView() }.accessibilityIdentifier("open-sync")
        }
        .onAppear(perform: refresh)
        .refreshable { refresh() }
        .task {
            // Ends (and removes its listener) when the view goes away: `.task` cancels it.
            guard let vault = try? await services.vault() else { return }
            for await _ in vault.events() { refresh() }
        }
    }

    private func row(_ job: JobRow) -> some View {
        NavigationLink {
            JobView(jobId: job.id)
        } label: {
            VStack(alignment: .leading, spacing: 4) {
                Text("\(job.slot)  \(job.workOrder)  ·  \(job.state)").bold()
                Text(job.summary)
                Text([job.area, job.access].filter { !$0.isEmpty }.joined(separator: "  ·  ")).font(.footnote)
            }
        }
        .accessibilityIdentifier("job:\(job.workOrder)")
    }

    private func refresh() {
        let texts = services.texts
        services.run({ try TodayPresenter(vault: $0, texts: texts).load() }) { result in
            switch result {
            case let .success(m):
                model = m
                message = m.toDo.isEmpty && m.done.isEmpty && m.later == 0 ? "No jobs. Sync to receive today's jobs." : nil
            case let .failure(e):
                message = texts.error(e)
            }
        }
    }
}
