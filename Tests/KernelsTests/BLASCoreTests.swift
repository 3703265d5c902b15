@testable import LoRABenchKernels
import Foundation
import Testing

/// The kernel set LoRABench asks OpenBLAS for: only ever a step up to the CPU's widest vector
/// instructions, never a change of a choice OpenBLAS made well.
@Suite struct BLASCoreTests {
    static let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    @Test func aFallbackOnAnAVX512CPUIsRaisedToTheAVX512Kernels() {
        #expect(BLASCore.better(than: "Prescott", cpuFlags: Self.avx512) == "SkylakeX")
        #expect(BLASCore.better(than: "Prescott", cpuFlags: Self.avx512.union(["avx512_bf16"])) == "Cooperlake")
        #expect(BLASCore.better(than: "Haswell", cpuFlags: Self.avx512) == "SkylakeX")
    }

    @Test func aFallbackOnAnAVX2CPUIsRaisedToHaswell() {
        #expect(BLASCore.better(than: "Prescott", cpuFlags: ["sse3", "avx", "avx2", "fma"]) == "Haswell")
        #expect(BLASCore.better(than: "Sandybridge", cpuFlags: ["sse3", "avx", "avx2", "fma"]) == "Haswell")
    }

    @Test func aWellChosenOrUnknowableSetIsLeftAlone() {
        #expect(BLASCore.better(than: "SkylakeX", cpuFlags: Self.avx512) == nil)
        #expect(BLASCore.better(than: "Cooperlake", cpuFlags: Self.avx512) == nil)
        #expect(BLASCore.better(than: "Zen", cpuFlags: ["avx", "avx2", "fma"]) == nil)
        #expect(BLASCore.better(than: "Prescott", cpuFlags: ["sse3"]) == nil)
        #expect(BLASCore.better(than: "Prescott", cpuFlags: []) == nil)
        // AVX-512 foundation alone (Knights Landing) is not what the SkylakeX kernels need.
        #expect(BLASCore.better(than: "Prescott", cpuFlags: ["avx2", "fma", "avx512f", "avx512cd"]) == "Haswell")
    }

    @Test func anExplicitCoreTypeIsNeverOverridden() {
        #expect(BLASCore.correction(environment: ["OPENBLAS_CORETYPE": "Prescott"]) == nil)
    }

    @Test func theIdleSpinIsShortenedUnlessTheUserChoseOne() {
        #expect(BLASCore.startupEnvironment(environment: ["OPENBLAS_CORETYPE": "Prescott"]) == ["OPENBLAS_THREAD_TIMEOUT": "16"])
        #expect(BLASCore.startupEnvironment(environment: ["OPENBLAS_CORETYPE": "Prescott", "OPENBLAS_THREAD_TIMEOUT": "28"]) == [:])
    }

    @Test func cpuFlagsAreReadFromTheFirstProcessorsFlagsLine() throws {
        let path = NSTemporaryDirectory() + "cpuinfo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "processor\t: 0\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu sse3\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(BLASCore.cpuFlags(cpuinfo: path) == ["fpu", "avx2", "fma"])
        #expect(BLASCore.cpuFlags(cpuinfo: path + "-missing") == [])
    }
}
