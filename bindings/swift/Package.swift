// swift-tools-version:5.9
// The jobseal Swift package for development and CI: the UniFFI-generated `Jobseal` module over the
// Rust library, shipped as an XCFramework of static libraries (iOS device, iOS simulator, macOS for
// `swift test`), plus the hand-written platform pieces (Keychain keystore, clock, URLSession
// transport, BGTaskScheduler helper, event stream) and the privacy manifest.
//
// This manifest points at the XCFramework built locally (`path:`). Releases do not use it:
// `release.sh <version>` writes a Package.swift of its own next to the zipped XCFramework, with
// `.binaryTarget(name:url:checksum:)`, and without the tests (docs/integration-ios.md, section 1).
//
// Before building: `bash build-xcframework.sh debug --test-support` (macOS with Xcode and the Rust
// Apple targets). It generates Sources/Jobseal/Jobseal.swift and build/JobsealFFI.xcframework;
// neither is committed. The tests need `--test-support` (they seal and ingest sheets locally).
import PackageDescription

let package = Package(
    name: "Jobseal",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Jobseal", targets: ["Jobseal"]),
    ],
    targets: [
        .binaryTarget(name: "JobsealFFI", path: "build/JobsealFFI.xcframework"),
        .target(
            name: "Jobseal",
            dependencies: ["JobsealFFI"],
            path: "Sources/Jobseal",
            resources: [.copy("PrivacyInfo.xcprivacy")]
        ),
        .testTarget(name: "JobsealTests", dependencies: ["Jobseal"], path: "Tests/JobsealTests"),
    ]
)
