// swift-tools-version:6.0
import PackageDescription

/// The vector kernels' suites (`Tests/VectorKernelsTests`, linked here) built optimised: a debug
/// build never contracts a multiply-add into FMA, so only an optimised build checks the C loops as
/// the commands run them. A package of its own, because `swift test -c release` in the root would
/// build every floor and test target in release for these 14 tests; this one builds only
/// CKernels and LoRABenchKernels. `scripts/test` runs it.
let package = Package(
    name: "ReleaseKernelChecks",
    dependencies: [.package(name: "LoRABench", path: "../..")],
    targets: [
        .testTarget(name: "VectorKernelsTests", dependencies: [.product(name: "LoRABenchKernels", package: "LoRABench")],
                    path: "VectorKernelsTests"),
    ],
    swiftLanguageModes: [.v6]
)
