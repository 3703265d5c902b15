import Foundation
@testable import LoRABenchResults
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// Successive halving through the built `lorabench`: worker processes pause at rungs and
/// continue from them as the in-process sweep does, to the same files.
@Suite struct HalvingCommandTests {
    static let manifest = ExperimentSupport.manifest(experiment: "halving", learningRate: "[1e-3, 3e-3, 1e-2, 3e-2]",
                                                     sweep: "  variants: [lora]\n  ranks: [2, 4]\n  seeds: [0, 1]")
        .replacingOccurrences(of: "  eval_size: 64\n", with: "  eval_size: 64\n  validation_examples: 64\n")
        + "selection: {metric: loss, halving: {rungs: [20, 40, 60], keep: [2, 1]}}\n"

    @Test func workersHalveAsOneProcessDoes() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest, to: directory)
        let one = try LorabenchProcess.output(["run", manifest, "--out", "\(directory)/one"])
        #expect(one.hasPrefix("16 runs finished (4 completed, 0 diverged, 0 failed, 12 stopped)"))
        #expect(try LorabenchProcess.run(["run", manifest, "--out", "\(directory)/two", "--jobs", "2"]) == 0)
        for file in ["metrics.csv", "selection.csv", "cells.csv"] {
            #expect(try ExperimentSupport.records("\(directory)/one/\(file)") == ExperimentSupport.records("\(directory)/two/\(file)"), "\(file)")
        }
        #expect(try ExperimentSupport.summaryWithoutTiming("\(directory)/one/summary.csv")
            == ExperimentSupport.summaryWithoutTiming("\(directory)/two/summary.csv"))
        let layout = ResultsLayout(root: "\(directory)/two")
        let runs = try ExperimentResults.load(directory: layout.root).runs
        #expect(runs.filter { $0.status == .stopped }.allSatisfy { FileManager.default.fileExists(atPath: layout.rungOutcomeFile($0.runID, step: $0.stepsCompleted!)) })
    }
}
