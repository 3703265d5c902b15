import Foundation
import Testing
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
@testable import LoRABenchReport
import LoRABenchTestSupport

/// `lorabench compare`: paired differences, intervals and tests on `ComparisonFixture`, whose
/// every count is known.
@Suite struct PairedComparisonTests {
    static func fixture() throws -> String {
        let directory = try ExperimentSupport.temporaryDirectory("comparison") + "/results"
        try ComparisonFixture.write(into: directory)
        return directory
    }

    static func row(_ comparison: PairedComparison, variant: String, rank: String) throws -> PairedComparison.Row {
        let variantIndex = comparison.axisNames.firstIndex(of: "variant")!, rankIndex = comparison.axisNames.firstIndex(of: "rank")!
        return try #require(comparison.rows.first { $0.cell[variantIndex] == variant && $0.cell[rankIndex] == rank })
    }

    @Test func differencesAndTestsMatchTheHandCounts() throws {
        let directory = try Self.fixture()
        let comparison = try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"))
        #expect(comparison.rows.count == 2)
        #expect(comparison.unmatched.count == 1, "head_only (rank 0) has no lora cell of its rank")

        let r4 = try Self.row(comparison, variant: "dora", rank: "4")
        #expect(r4.pairedSeeds == ["0", "1", "2"] && r4.excludedSeeds.isEmpty && r4.examples == 40)
        #expect(r4.baselineCell == "rank=4; alpha=2r; init=kaiming; target_modules=query+value; dropout=0; use_rslora=false")
        #expect(abs(r4.accuracy - 0.85) < 1e-12 && abs(r4.baselineAccuracy - 0.75) < 1e-12 && abs(r4.difference - 0.1) < 1e-12)
        #expect(r4.mcnemar.baselineOnlyCorrect == 6 && r4.mcnemar.comparedOnlyCorrect == 18)
        #expect(r4.mcnemar.method == .exactBinomial && abs(r4.mcnemar.pValue - 2 * 190_051 / 16_777_216) < 1e-14)
        // Per-seed differences 0.075, 0.1, 0.125: s = 0.025, t_{0.975,2} · s / √3 either side of 0.1.
        let seeds = try #require(r4.seedInterval)
        let halfWidth = 4.302652729749464 * 0.025 / 3.0.squareRoot()
        #expect(abs(seeds.lowerBound - (0.1 - halfWidth)) < 1e-12 && abs(seeds.upperBound - (0.1 + halfWidth)) < 1e-12)
        #expect(r4.exampleInterval.contains(r4.difference) && r4.exampleInterval.lowerBound < 0.1 && r4.exampleInterval.upperBound > 0.1)

        // A diverged seed is left out and named; two seeds give no t interval.
        let r8 = try Self.row(comparison, variant: "dora", rank: "8")
        #expect(r8.pairedSeeds == ["0", "1"] && r8.excludedSeeds == ["2"] && r8.seedInterval == nil)
        #expect(r8.difference == 0 && r8.mcnemar.pValue == 1 && r8.exampleInterval == 0...0)

        // Holm over the two comparisons: 2 · 0.02266 = 0.0453 stays below 5 %.
        #expect(abs(r4.holmP - 2 * r4.mcnemar.pValue) < 1e-14 && r4.significant)
        #expect(r8.holmP == 1 && !r8.significant)
    }

    @Test func theBootstrapIsDeterministicForItsSeed() throws {
        let directory = try Self.fixture()
        let first = try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"), resamples: 500, bootstrapSeed: 3)
        let again = try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"), resamples: 500, bootstrapSeed: 3)
        let other = try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"), resamples: 500, bootstrapSeed: 4)
        #expect(first.text == again.text)
        let firstInterval = try Self.row(first, variant: "dora", rank: "4").exampleInterval
        #expect(try Self.row(other, variant: "dora", rank: "4").exampleInterval != firstInterval)
    }

    /// A baseline whose cells do not vary along an axis (head_only: one cell) matches every cell.
    @Test func aBaselineWithoutRanksMatchesEveryRank() throws {
        let comparison = try PairedComparison.compute(resultsDirectory: try Self.fixture(), baseline: .variant("head_only"))
        #expect(comparison.rows.count == 4 && comparison.unmatched.isEmpty)
        let lora = try Self.row(comparison, variant: "lora", rank: "8")
        #expect(abs(lora.difference - 0.25) < 1e-12)
        // b = 0 and c = 10 per seed: 30 discordant examples, χ² = (30 − 1)²/30.
        #expect(lora.mcnemar.method == .chiSquaredContinuityCorrected && abs(lora.mcnemar.statistic! - 29.0 * 29 / 30) < 1e-12)
    }

    @Test func compareCSVHasTheDocumentedColumnsAndTheReportShowsIt() throws {
        let directory = try Self.fixture()
        let comparison = try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"))
        try AtomicFile.write(comparison.text, to: ResultsLayout(root: directory).compareFile)
        let table = try CSVTable(contentsOf: ResultsLayout(root: directory).compareFile, producer: "test")
        #expect(table.header == ["variant", "rank", "alpha", "init", "target_modules", "dropout", "use_rslora"] + PairedComparison.statisticColumns)
        let r4 = table.records[0].fields
        #expect(r4[0...1] == ["dora", "4"])
        let (seeds, method) = (try table.column("seeds"), try table.column("mcnemar_method"))
        let (significant, excluded) = (try table.column("significant"), try table.column("seeds_excluded"))
        #expect(r4[seeds] == "3" && r4[method] == "exact_binomial" && r4[significant] == "true")
        #expect(table.records[1].fields[excluded] == "2")

        try Report.write(resultsDirectory: directory)
        let page = try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8)
        #expect(page.contains("<h2>Paired comparisons with lora</h2>"))
        #expect(page.contains("<td>+10.00 ["))
        #expect(page.contains("<strong>yes</strong>") && page.contains("Holm-adjusted"))
    }

    @Test func mistakesAreNamed() throws {
        let directory = try Self.fixture()
        #expect(throws: ComparisonError.unknownBaseline("lor", available: ["head_only", "lora", "dora"])) {
            try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lor"))
        }
        let layout = ResultsLayout(root: directory)
        var shifted = try PredictionsCSV.read(layout.predictionsFile("dora-r4-s1"))
        // Label and prediction flipped together: the file keeps the accuracy summary.csv records.
        shifted[3].label = 1 - shifted[3].label
        shifted[3].predicted = 1 - shifted[3].predicted
        try AtomicFile.write(PredictionsCSV.text(shifted), to: layout.predictionsFile("dora-r4-s1"))
        #expect(throws: ComparisonError.mismatchedExamples(path: layout.predictionsFile("dora-r4-s1"), other: layout.predictionsFile("lora-r4-s1"))) {
            try PairedComparison.compute(resultsDirectory: directory, baseline: .variant("lora"))
        }
    }
}
