// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LoRABench",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "LoRABench", targets: ["LoRABench"]),
        .executable(name: "lorabench", targets: ["lorabench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev"])]),
        .target(
            name: "LoRABench",
            dependencies: ["CBLAS", "CLAPACKE", "Yams"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "lorabench",
            dependencies: ["LoRABench", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "LoRABenchTests",
            dependencies: ["LoRABench"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
