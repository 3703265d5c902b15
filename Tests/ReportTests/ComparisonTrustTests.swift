import Foundation
import Testing
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
@testable import LoRABenchReport
import LoRABenchTestSupport

/// What `compare` and `report` refuse to trust (issue 25: items 10, 12, 13, 14 and U7), on
/// `ComparisonFixture` (40 dev examples; dora r = 4 seed 1 is right on 34 of them).
@Suite struct ComparisonTrustTests {
    /// The fixture with the manifest a sweep would have left beside it (an SST-2 task: labels 0 and 1).
    static func fixture() throws -> (directory: String, layout: ResultsLayout) {
        let directory = try ExperimentSupport.temporaryDirectory("trust") + "/results"
        try ComparisonFixture.write(into: directory)
        let layout = ResultsLayout(root: directory)
        try AtomicFile.write("""
        experiment: results
        task: sst2
        training:
          learning_rate: 1e-3
          steps: 10
          batch_size: 8
        sweep:
          variants: [lora]
          ranks: [4]

        """, to: layout.manifestCopy)
        return (directory, layout)
    }

    static func rewrite(_ path: String, _ change: (inout [Prediction]) -> Void) throws {
        var predictions = try PredictionsCSV.read(path)
        change(&predictions)
        try AtomicFile.write(PredictionsCSV.text(predictions), to: path)
    }

    /// Item 10: a summary.csv that changed after compare.csv was computed (here: a seed added)
    /// keeps the old comparison off the page.
    @Test func aReportNeverShowsACompareCSVOfAnEarlierSummary() throws {
        let (directory, layout) = try Self.fixture()
        try AtomicFile.write(try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora")).text, to: layout.compareFile)
        try Report.write(resultsDirectory: directory)
        #expect(try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8).contains("<td>+10.00 ["))

        let summary = try String(contentsOfFile: layout.summaryFile, encoding: .utf8)
        let seedZero = try #require(summary.split(separator: "\n").first { $0.hasPrefix("dora-r4-s0,") })
        let seedThree = seedZero.replacingOccurrences(of: "dora-r4-s0,dora,4,2r,0,", with: "dora-r4-s3,dora,4,2r,3,")
        try AtomicFile.write(summary + seedThree + "\n", to: layout.summaryFile)
        try Report.write(resultsDirectory: directory)
        let page = try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8)
        #expect(!page.contains("<td>+10.00 ["), "the stale comparison is shown")
        #expect(page.contains("compare.csv is not shown: it was computed from an earlier summary.csv"))
    }

    /// Item 12: a prediction outside the task's labels names the file and line.
    @Test func aPredictionOutsideTheTasksLabelsIsAnError() throws {
        let (directory, layout) = try Self.fixture()
        let path = layout.predictionsFile("dora-r4-s1")
        try Self.rewrite(path) { $0[3].predicted = 5 }
        #expect(throws: ResultsError.malformed(path: path, line: 5, message: "predicted is 5; the task's labels are 0 to 1")) {
            try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"), labelCount: layout.taskLabelCount())
        }
    }

    /// Item 12: indices shifted alike in every file would pair; they must be the eval split's positions.
    @Test func indicesShiftedInEveryRunAreAnError() throws {
        let (directory, layout) = try Self.fixture()
        for id in try FileManager.default.contentsOfDirectory(atPath: layout.runsDirectory) {
            try Self.rewrite(layout.predictionsFile(id)) { predictions in
                for index in predictions.indices { predictions[index].index += 1 }
            }
        }
        let error = try #require(throws: ResultsError.self) { try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora")) }
        #expect(error.description.contains("/predictions.csv:2: index 1 where 0 was expected"))
    }

    /// Item 12: a file whose accuracy is not the one outcome.json records is not the run's predictions.
    @Test func aFileThatDisagreesWithOutcomeJSONIsAnError() throws {
        let (directory, layout) = try Self.fixture()
        let outcome = RunOutcome(runID: "dora-r4-s1", status: .completed, reason: "", stepsCompleted: 10,
                                 finalEval: ["accuracy": 0.9, "loss": 0.5], bestEval: [:], finalTrainLoss: nil, finalRanks: [:],
                                 trainableParameters: 1000, totalParameters: 2000, wallSeconds: 1, stepsPerSecond: 10, blasThreads: 1)
        try AtomicFile.write(try outcome.encoded(), to: layout.outcomeFile("dora-r4-s1"))
        let error = try #require(throws: ComparisonError.self) { try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora")) }
        #expect(error.description.hasPrefix(layout.predictionsFile("dora-r4-s1") + ": its predictions are 34 of 40 right (accuracy 0.85)"))
        #expect(error.description.contains("\(layout.outcomeFile("dora-r4-s1")) records final_eval accuracy 0.9"))
    }

    /// U7: seed 2's files agree with each other; the file they differ from is seed 0's.
    @Test func aDevSizeMismatchNamesBothFilesThatDiffer() throws {
        let (directory, layout) = try Self.fixture()
        for id in ["dora-r4-s2", "lora-r4-s2"] { try Self.rewrite(layout.predictionsFile(id)) { $0.removeLast() } }
        #expect(throws: ComparisonError.mismatchedExampleCounts(path: layout.predictionsFile("dora-r4-s2"), count: 39,
                                                                other: layout.predictionsFile("dora-r4-s0"), otherCount: 40)) {
            try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"))
        }
    }

    /// Item 13: a completed run with a nan final metric is counted, in cells.csv and on the page.
    @Test func aNonFiniteFinalMetricIsCounted() throws {
        let (directory, layout) = try Self.fixture()
        let summary = try String(contentsOfFile: layout.summaryFile, encoding: .utf8)
        let line = try #require(summary.split(separator: "\n").first { $0.hasPrefix("dora-r4-s1,") })
        // final_eval_loss, then final_eval_accuracy (34 of 40).
        try AtomicFile.write(summary.replacingOccurrences(of: line, with: line.replacingOccurrences(of: ",0.85,", with: ",nan,")),
                             to: layout.summaryFile)
        let cells = try CellTable.load(resultsDirectory: directory)
        let cell = try #require(cells.cells.first { $0.axes[0] == "dora" && $0.axes[1] == "4" && $0.metric == "accuracy" })
        #expect(cell.runs == 3 && cell.diverged == 0 && cell.failed == 0 && cell.nonFinite == 1 && cell.summary?.count == 2)
        let nonFinite = try #require(cells.header.firstIndex(of: "non_finite"))
        let row = try #require(cells.rows.first { $0[0] == "dora" && $0[1] == "4" && $0.contains("accuracy") })
        #expect(row[nonFinite] == "1")

        try Report.write(resultsDirectory: directory)
        #expect(try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8).contains("n=2</span><br><span class=\"excluded\">1 non-finite"))
    }

    /// Item 14: every resample keeps a mean in memory, so their number is capped, with the range in the error.
    @Test func resamplesPastTheCapAreAnError() throws {
        let (directory, _) = try Self.fixture()
        let tooMany = PairedComparison.allowedResamples.upperBound + 1
        let error = try #require(throws: ComparisonError.self) {
            try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"), resamples: tooMany)
        }
        #expect(error == .resamplesOutOfRange(tooMany))
        #expect(error.description.contains("outside the allowed range 100...1000000"))
    }
}
