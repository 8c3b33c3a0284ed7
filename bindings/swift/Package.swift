// swift-tools-version:5.9
// The jobseal Swift package: the UniFFI-generated `Jobseal` module over the Rust library, shipped
// as an XCFramework of static libraries (iOS device, iOS simulator, macOS for `swift test`).
//
// Before building: `bash build-xcframework.sh` (macOS with Xcode and the Rust iOS targets). It
// generates Sources/Jobseal/Jobseal.swift and build/JobsealFFI.xcframework; neither is committed.
import PackageDescription

let package = Package(
    name: "Jobseal",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Jobseal", targets: ["Jobseal"]),
    ],
    targets: [
        .binaryTarget(name: "JobsealFFI", path: "build/JobsealFFI.xcframework"),
        .target(name: "Jobseal", dependencies: ["JobsealFFI"], path: "Sources/Jobseal"),
        .testTarget(name: "JobsealTests", dependencies: ["Jobseal"], path: "Tests/JobsealTests"),
    ]
)
