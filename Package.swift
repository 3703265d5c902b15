// swift-tools-version:6.0
import PackageDescription

/// The library is cut into floors, each a target that imports only the floors below it, so the
/// compiler keeps the layering:
///
///   Kernels → TensorIO → Results → Adapters → Training → Variants → Models, Data → Interop
///   → Experiments → Plotting → Report, Analysis → Bench → the `lorabench` command
///
/// Results (the results folder's files, read and written, and the statistics they are reported
/// with) sits just above TensorIO, so that the report and the analyses read a sweep's results
/// without the runner, its tasks and its models.
///
/// A variant (its layer, settings, model-level method, optimizer policy and peft codec) lives in
/// one folder of `Variants` and is listed once in `VariantRegistry`; nothing above that floor
/// names a variant.
let floors: [(name: String, path: String, dependencies: [Target.Dependency])] = [
    ("LoRABenchKernels", "Sources/Kernels", ["CBLAS", "CLAPACKE", "CKernels"]),
    ("LoRABenchTensorIO", "Sources/TensorIO", ["LoRABenchKernels", .product(name: "Crypto", package: "swift-crypto")]),
    ("LoRABenchResults", "Sources/Results", ["LoRABenchTensorIO", "LoRABenchKernels"]),
    ("LoRABenchAdapters", "Sources/Adapters", ["LoRABenchKernels"]),
    ("LoRABenchTraining", "Sources/Training", ["LoRABenchAdapters", "LoRABenchKernels"]),
    ("LoRABenchVariants", "Sources/Variants", ["LoRABenchTraining", "LoRABenchAdapters", "LoRABenchTensorIO", "LoRABenchKernels"]),
    ("LoRABenchModels", "Sources/Models", ["LoRABenchAdapters", "LoRABenchTensorIO", "LoRABenchKernels"]),
    ("LoRABenchData", "Sources/Data", ["LoRABenchKernels"]),
    ("LoRABenchInterop", "Sources/Interop",
     ["LoRABenchModels", "LoRABenchData", "LoRABenchVariants", "LoRABenchTraining", "LoRABenchAdapters", "LoRABenchTensorIO",
      "LoRABenchKernels"]),
    ("LoRABenchExperiments", "Sources/Experiments",
     ["LoRABenchInterop", "LoRABenchData", "LoRABenchModels", "LoRABenchVariants", "LoRABenchTraining", "LoRABenchAdapters",
      "LoRABenchResults", "LoRABenchTensorIO", "LoRABenchKernels", "Yams"]),
    ("LoRABenchPlotting", "Sources/Plotting", []),
    ("LoRABenchReport", "Sources/Report", ["LoRABenchResults", "LoRABenchPlotting", "LoRABenchTensorIO", "LoRABenchKernels"]),
    ("LoRABenchAnalysis", "Sources/Analysis",
     ["LoRABenchInterop", "LoRABenchResults", "LoRABenchPlotting", "LoRABenchVariants", "LoRABenchAdapters", "LoRABenchTensorIO",
      "LoRABenchKernels"]),
    ("LoRABenchBench", "Sources/Bench",
     ["LoRABenchInterop", "LoRABenchModels", "LoRABenchVariants", "LoRABenchTraining", "LoRABenchAdapters", "LoRABenchTensorIO",
      "LoRABenchKernels"]),
]

/// One test target per floor (tests may import any floor); `LoRABenchTestSupport` holds the
/// fixture lookup they share. `VectorKernelsTests` (the C loops against the Swift loops they
/// replaced) is the one exception.
let testTargets: [(name: String, extra: [Target.Dependency])] = [
    ("KernelsTests", []),
    ("TensorIOTests", []),
    ("ResultsTests", []),
    ("AdaptersTests", []),
    ("TrainingTests", []),
    ("VariantsTests", []),
    ("ModelsTests", []),
    ("DataTests", []),
    ("InteropTests", []),
    ("ExperimentsTests", ["Yams"]),
    ("PlottingTests", []),
    ("ReportTests", []),
    ("AnalysisTests", []),
    ("BenchTests", []),
    ("CommandTests", ["lorabench"]),
]

let allFloors = floors.map { Target.Dependency(stringLiteral: $0.name) }

/// Linux only (the commands re-execute through /proc/self/exe, BLASCore reads /proc/cpuinfo), so
/// no Apple `platforms` are claimed. No unsafe flags, so that another package can depend on
/// LoRABench by version: -cross-module-optimization bought about 1 % of a training step
/// (docs/performance.md, 7 December 2026).
let package = Package(
    name: "LoRABench",
    products: [
        .library(name: "LoRABench", targets: floors.map(\.name)),
        // The lowest floor alone, for Tests/ReleaseKernels (the vector kernels' suites, optimised).
        .library(name: "LoRABenchKernels", targets: ["LoRABenchKernels"]),
        .executable(name: "lorabench", targets: ["lorabench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CLAPACKE", pkgConfig: "lapacke", providers: [.apt(["liblapacke-dev"])]),
        // Hot loops in C (GELU, the rank-r products, column sums), compiled per vector width and
        // dispatched per call on the CPU's features (Sources/CKernels/cpu_level.h).
        .target(name: "CKernels", path: "Sources/CKernels"),
    ] + floors.map { floor in
        .target(name: floor.name, dependencies: floor.dependencies, path: floor.path)
    } + [
        .executableTarget(
            name: "lorabench",
            dependencies: allFloors + [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/lorabench"
        ),
        .target(name: "LoRABenchTestSupport",
                dependencies: ["LoRABenchExperiments", "LoRABenchInterop", "LoRABenchModels", "LoRABenchVariants", "LoRABenchAdapters",
                               "LoRABenchResults", "LoRABenchTensorIO", "LoRABenchKernels"],
                path: "Tests/Support"),
    ] + testTargets.map { test in
        .testTarget(name: test.name, dependencies: allFloors + ["LoRABenchTestSupport"] + test.extra,
                    path: "Tests/\(test.name)")
    } + [
        // The vector kernels' suites import their floor alone, so that Tests/ReleaseKernels can
        // build them optimised without the rest of the package.
        .testTarget(name: "VectorKernelsTests", dependencies: ["LoRABenchKernels"], path: "Tests/VectorKernelsTests"),
    ],
    swiftLanguageModes: [.v6]
)
