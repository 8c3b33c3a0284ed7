// The technician demo app. A privacy cover hides everything whenever the scene is not active,
// which is when iOS takes the app-switcher snapshot; job screens also drop revealed values then.
import SwiftUI

@main
struct JobsealDemoApp: App {
    @Environment(\.scenePhase) private var phase

    var body: some Scene {
        WindowGroup {
            ZStack {
                NavigationStack { TodayView() }
                if phase != .active {
                    PrivacyCover()
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
