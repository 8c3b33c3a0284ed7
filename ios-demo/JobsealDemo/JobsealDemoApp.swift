// The technician demo app. A privacy cover hides everything whenever the scene is not active,
// which is when iOS takes the app-switcher snapshot; job screens also drop revealed values then.
// Background work is the package's BackgroundSync: registered at launch (before launch ends, as
// BGTaskScheduler requires), scheduled when the app goes to the background, and run once when it
// becomes active (expired jobs shredded, outbox pushed, new jobs pulled).
import Jobseal
import SwiftUI

@main
struct JobsealDemoApp: App {
    @Environment(\.scenePhase) private var phase

    init() {
        Services.shared.background?.register()
    }

    var body: some Scene {
        WindowGroup {
            ZStack {
                NavigationStack { TodayView() }
                if phase != .active {
                    PrivacyCover()
                }
            }
            .onChange(of: phase) { now in
                guard let background = Services.shared.background else { return }
                switch now {
                case .active: Task { _ = try? await background.run() }
                case .background: Task { _ = try? await background.schedule() }
                default: break
                }
            }
        }
    }
}

struct PrivacyCover: View {
    var body: some View {
        ZStack {
            Color(.systemBackground).ignoresSafeArea()
            VStack(spacing: 12) {
                Image(systemName: "lock.shield").font(.system(size: 48))
                Text("jobseal demo").font(.headline)
            }
        }
        .accessibilityIdentifier("privacy-cover")
    }
}
