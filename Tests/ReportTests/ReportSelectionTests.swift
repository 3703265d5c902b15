import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
@testable import LoRABenchReport
import LoRABenchTestSupport

/// The report of a sweep with seeds and a learning-rate selection: intervals, not ranges, and
/// the chosen settings only, with the choice shown.
@Suite struct ReportSelectionTests {
    @Test func theReportShowsIntervalsAndTheChosenLearningRates() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = ExperimentSupport.manifest(learningRate: "[1e-3, 3e-2]", sweep: "  variants: [lora]\n  ranks: [2, 4]\n  seeds: [0, 1, 2]")
            .replacingOccurrences(of: "  eval_size: 64\n", with: "  eval_size: 64\n  validation_examples: 64\n")
            + "selection: {metric: loss, split: validation, over: [learning_rate]}\n"
        try ExperimentSupport.run(try Manifest(yaml: yaml, file: "m.yaml"), into: directory)
        let results = "\(directory)/results"
        try Report.write(resultsDirectory: results)
        let page = try String(contentsOfFile: "\(results)/index.html", encoding: .utf8)
        #expect(page.contains("6 runs (6 completed) of the chosen learning rates, of 12 in the sweep"))
        #expect(page.contains("<h2>Learning rates chosen on the validation split</h2>"))
        #expect(page.contains("Student t with n − 1 degrees"))

        let cells = try CellTable.load(resultsDirectory: results).cells.filter { $0.split == "eval" && $0.metric == "loss" }
        for cell in cells {
            let summary = try #require(cell.summary)
            let interval = try #require(summary.interval95)
            let decimals = max(0, 3 - Int(log10(abs(summary.mean)).rounded(.down)))
            let text = String(format: "%.\(decimals)f [%.\(decimals)f, %.\(decimals)f]", summary.mean, interval.lowerBound, interval.upperBound)
            #expect(page.contains(text + " <span class=\"n\">n=3, lr \(cell.axes.last!)</span>"), "\(text)")
        }
        let byRank = try String(contentsOfFile: "\(results)/metric-by-rank.svg", encoding: .utf8)
        #expect(byRank.contains("bars are 95 % t intervals"))
    }

    /// With successive halving, the selection table gives each stopped candidate's rung, step and
    /// mean there (selection.csv's), and the page counts only the chosen rate's runs.
    @Test func theReportSaysWhichCandidateStoppedAtWhichRung() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let yaml = ExperimentSupport.manifest(learningRate: "[1e-3, 3e-3, 3e-2]", sweep: "  variants: [lora]\n  ranks: [2]\n  seeds: [0, 1]")
            .replacingOccurrences(of: "  eval_size: 64\n", with: "  eval_size: 64\n  validation_examples: 64\n")
            + "selection: {metric: loss, halving: {rungs: [20, 40, 60], keep: [2, 1]}}\n"
        try ExperimentSupport.run(try Manifest(yaml: yaml, file: "m.yaml"), into: directory)
        let results = "\(directory)/results"
        try Report.write(resultsDirectory: results)
        let page = try String(contentsOfFile: "\(results)/index.html", encoding: .utf8)
        #expect(page.contains("2 runs (2 completed) of the chosen learning rates, of 6 in the sweep"))
        #expect(page.contains("The candidates went through successive halving"))
        let selection = try #require(try SelectedSettings.load(resultsDirectory: results))
        #expect(selection.rows.compactMap(\.stoppedAtRung).sorted() == [1, 2])
        for row in selection.rows {
            guard let rung = row.stoppedAtRung, let step = row.stoppedAtStep, let mean = row.stoppedMean else { continue }
            #expect(page.contains("\(row.candidate) → stopped at rung \(rung), step \(step): \(String(format: "%.4g", mean)) (2 of 2)"))
        }
    }
}
