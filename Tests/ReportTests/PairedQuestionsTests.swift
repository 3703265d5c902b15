import Foundation
import Testing
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
@testable import LoRABenchReport
import LoRABenchTestSupport

/// `lorabench compare --baseline-rank R`: each variant's ranks against its rank R, on
/// `ComparisonFixture`, whose every count is known.
@Suite struct RankComparisonTests {
    static func fixture() throws -> String {
        let directory = try ExperimentSupport.temporaryDirectory("ranks") + "/results"
        try ComparisonFixture.write(into: directory)
        return directory
    }

    @Test func eachRankMeetsItsVariantsBaselineRank() throws {
        let directory = try Self.fixture()
        let comparison = try PairedComparison.compute(resultsDirectory: directory, baseline: .rank(8))
        #expect(comparison.baseline == "rank=8")
        #expect(comparison.rows.map { $0.cell[0] + "-r" + $0.cell[1] } == ["lora-r4", "dora-r4"])
        #expect(comparison.unmatched.map { $0[0] } == ["head_only"], "head_only has no rank-8 cell")

        // LoRA's predictions are the same at both ranks.
        let lora = comparison.rows[0]
        #expect(lora.baselineCell == "rank=8; alpha=2r; init=kaiming; target_modules=query+value; dropout=0; use_rslora=false")
        #expect(lora.pairedSeeds == ["0", "1", "2"] && lora.difference == 0 && lora.mcnemar.pValue == 1)

        // DoRA r = 4 against DoRA r = 8 (LoRA's predictions; seed 2 diverged): b = 2 and c = 5 + s for
        // seeds 0 and 1, accuracies 0.825 and 0.85 against 0.75; 15 discordant examples, exact p = 2 · P(X ≤ 4).
        let dora = comparison.rows[1]
        #expect(dora.pairedSeeds == ["0", "1"] && dora.excludedSeeds == ["2"] && dora.seedInterval == nil)
        #expect(abs(dora.difference - 0.0875) < 1e-12)
        #expect(dora.mcnemar.baselineOnlyCorrect == 4 && dora.mcnemar.comparedOnlyCorrect == 11)
        #expect(abs(dora.mcnemar.pValue - 2.0 * (1 + 15 + 105 + 455 + 1365) / 32768) < 1e-14)
        // Holm over the two accuracy comparisons: LoRA's p of 1 stays 1, DoRA's doubles.
        #expect(abs(dora.holmP - 2 * dora.mcnemar.pValue) < 1e-14 && lora.holmP == 1)
    }

    /// compare-rank.csv has compare.csv's columns, leaves compare.csv alone, and is never written
    /// over a file lorabench did not write; an unknown rank names those there are.
    @Test func theRankTableHasItsOwnFileAndMistakesAreNamed() throws {
        let directory = try Self.fixture()
        let layout = ResultsLayout(root: directory)
        #expect(throws: ComparisonError.unknownBaselineRank(5, available: ["0", "4", "8"])) {
            try PairedComparison.compute(resultsDirectory: directory, baseline: .rank(5))
        }
        #expect("\(ComparisonError.unknownBaselineRank(5, available: ["0", "4", "8"]))"
            == "--baseline-rank: found 5, a rank no run of the results has; allowed: 0, 4, 8")
        let comparison = try PairedComparison.compute(resultsDirectory: directory, baseline: .rank(8))
        #expect(try comparison.write(resultsDirectory: directory) == layout.rankComparisonFile)
        #expect(!FileManager.default.fileExists(atPath: layout.compareFile))
        let table = try CSVTable(contentsOf: layout.rankComparisonFile, producer: "test")
        #expect(table.header == ["variant", "rank", "alpha", "init", "target_modules", "dropout", "use_rslora"] + PairedComparison.statisticColumns)
        #expect(table.records.allSatisfy { $0.fields[try! table.column("baseline")] == "rank=8" })
        // Written again over its own file, but never over someone else's.
        try comparison.write(resultsDirectory: directory)
        try AtomicFile.write("my notes\n", to: layout.rankComparisonFile)
        #expect(throws: ComparisonError.foreignFile(path: layout.rankComparisonFile)) { try comparison.write(resultsDirectory: directory) }
        #expect(try String(contentsOfFile: layout.rankComparisonFile, encoding: .utf8) == "my notes\n")
    }
}

/// `lorabench compare --steps-to X` on `StepsFixture`, whose every run's evaluations are known:
/// the first step at the target, censored runs, the paired differences and the sign test.
@Suite struct StepsToTargetTests {
    static func fixture() throws -> String {
        let directory = try ExperimentSupport.temporaryDirectory("steps") + "/results"
        try StepsFixture.write(into: directory)
        return directory
    }

    @Test func stepsToTheTargetArePairedOverSeedsWithCensoredRunsCounted() throws {
        let directory = try Self.fixture()
        let steps = try StepsToTarget.compute(resultsDirectory: directory, baseline: .variant("lora"), target: 0.8)
        #expect(steps.metric == EvalMetric(name: "accuracy", higherIsBetter: true), "the headline metric by default")
        let reach = Dictionary(uniqueKeysWithValues: steps.runs.map { ($0.run.runID, $0.reach) })
        #expect(reach["lora-r8-s0"] == .reached(step: 30) && reach["lora-r8-s3"] == .censored(afterStep: 40))
        #expect(reach["dora-r8-s0"] == .censored(afterStep: 20) && reach["dora-r8-s1"] == .unknown)

        #expect(steps.pairs.map { $0.cell[0] } == ["loraplus", "dora"] && steps.unmatched.isEmpty)
        let loraplus = steps.pairs[0]
        #expect(loraplus.pairedSeeds == ["0", "1", "2", "3"] && loraplus.excludedSeeds.isEmpty)
        #expect((loraplus.bothReached, loraplus.onlyComparedReached, loraplus.onlyBaselineReached, loraplus.neitherReached) == (3, 1, 0, 0))
        #expect(abs(loraplus.steps! - 70.0 / 3) < 1e-12 && abs(loraplus.baselineSteps! - 100.0 / 3) < 1e-12 && loraplus.difference == -10)
        // Differences −20, −10, 0: s = 10, t_{0.975,2} · s / √3 either side of −10.
        let halfWidth = 4.302652729749464 * 10 / 3.0.squareRoot()
        let interval = try #require(loraplus.interval)
        #expect(abs(interval.lowerBound - (-10 - halfWidth)) < 1e-9 && abs(interval.upperBound - (-10 + halfWidth)) < 1e-9)
        #expect((loraplus.faster, loraplus.slower, loraplus.ties, loraplus.signUnknown) == (3, 0, 1, 0))
        #expect(loraplus.signP == 0.25 && loraplus.holmP == 0.25 && !loraplus.significant)

        let dora = steps.pairs[1]
        #expect(dora.pairedSeeds == ["0", "2", "3"] && dora.excludedSeeds == ["1"])
        #expect((dora.bothReached, dora.onlyComparedReached, dora.onlyBaselineReached, dora.neitherReached) == (1, 0, 1, 1))
        #expect((dora.faster, dora.slower, dora.ties, dora.signUnknown) == (0, 0, 1, 2))
        #expect(dora.difference == 0 && dora.interval == nil && dora.signP == nil && dora.holmP == nil)
    }

    /// A lower-is-better metric reaches its target from above; a metric the task does not give is named.
    @Test func theMetricAndItsDirectionCanBeChosen() throws {
        let directory = try Self.fixture()
        let loss = try StepsToTarget.compute(resultsDirectory: directory, baseline: .variant("lora"), target: 0.2, metricName: "loss")
        #expect(loss.metric == EvalMetric(name: "loss", higherIsBetter: false))
        #expect(loss.runs.map(\.reach) == (try StepsToTarget.compute(resultsDirectory: directory, baseline: .variant("lora"), target: 0.8)).runs.map(\.reach))
        #expect(throws: ComparisonError.unknownStepsMetric("r2", available: ["loss", "accuracy"])) {
            try StepsToTarget.compute(resultsDirectory: directory, baseline: .variant("lora"), target: 0.8, metricName: "r2")
        }
        #expect("\(ComparisonError.unknownStepsMetric("r2", available: ["loss", "accuracy"]))"
            == "--metric: found 'r2'; allowed: loss, accuracy (the eval metrics metrics.csv logs whose better direction the task gives)")
        #expect(throws: ComparisonError.targetNotFinite(.infinity)) {
            try StepsToTarget.compute(resultsDirectory: directory, baseline: .variant("lora"), target: .infinity)
        }
    }

    /// Against a rank, within each variant; the files have their documented columns, every run
    /// among them (censored ones with the step after which they are), and neither is written over a
    /// file lorabench did not write.
    @Test func theFilesHoldEveryRunAndEveryPair() throws {
        let directory = try Self.fixture()
        let layout = ResultsLayout(root: directory)
        let steps = try StepsToTarget.compute(resultsDirectory: directory, baseline: .variant("lora"), target: 0.8)
        #expect(try steps.write(resultsDirectory: directory) == [layout.stepsToFile, layout.stepsToRunsFile])
        let runs = try CSVTable(contentsOf: layout.stepsToRunsFile, producer: "test")
        #expect(runs.header == RunSpec.axisColumns + StepsToTarget.runColumns && runs.records.count == 12)
        #expect(runs.records[3].fields.suffix(6) == ["completed", "accuracy", "higher", "0.8", "", "40"])
        #expect(runs.records[4].fields.suffix(6) == ["completed", "accuracy", "higher", "0.8", "10", ""])
        #expect(runs.records[9].fields.suffix(6) == ["failed", "accuracy", "higher", "0.8", "", ""])
        let pairs = try CSVTable(contentsOf: layout.stepsToFile, producer: "test")
        #expect(pairs.header == ["variant", "rank", "alpha", "init", "target_modules", "dropout", "use_rslora"] + StepsToTarget.pairColumns)
        let fields = pairs.records[0].fields
        #expect(Array(fields[7..<21]) == [
            "lora", "rank=8; alpha=2r; init=kaiming; target_modules=query+value; dropout=0; use_rslora=false", "accuracy", "higher", "0.8",
            "4", "", "3", "1", "0", "0", formatNumber(70.0 / 3), formatNumber(100.0 / 3), "-10",
        ])
        let halfWidth = 4.302652729749464 * 10 / 3.0.squareRoot()
        #expect(abs(Double(fields[21])! - (-10 - halfWidth)) < 1e-9 && abs(Double(fields[22])! - (-10 + halfWidth)) < 1e-9)
        #expect(Array(fields[23...]) == ["3", "0", "1", "0", "0.25", "0.25", "false",
                                         SHA256Digest.hex(of: FileManager.default.contents(atPath: layout.summaryFile)!)])

        // Against rank 8 nothing pairs: every cell is of rank 8.
        let ranks = try StepsToTarget.compute(resultsDirectory: directory, baseline: .rank(8), target: 0.8)
        #expect(ranks.pairs.isEmpty && ranks.unmatched.isEmpty)

        try AtomicFile.write("a,b\n1,2\n", to: layout.stepsToRunsFile)
        let before = try String(contentsOfFile: layout.stepsToFile, encoding: .utf8)
        #expect(throws: ComparisonError.foreignFile(path: layout.stepsToRunsFile)) { try steps.write(resultsDirectory: directory) }
        #expect(try String(contentsOfFile: layout.stepsToFile, encoding: .utf8) == before, "nothing written when one file is refused")
    }
}
