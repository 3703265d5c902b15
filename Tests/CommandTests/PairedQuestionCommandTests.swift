import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
import LoRABenchTestSupport
import Testing

/// `lorabench compare --baseline-rank` and `--steps-to` as a user runs them: the files they
/// write, what they print, and the options they refuse.
@Suite struct PairedQuestionCommandTests {
    @Test func compareAgainstARankWritesCompareRankCSV() throws {
        let directory = try ExperimentSupport.temporaryDirectory() + "/results"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ComparisonFixture.write(into: directory)
        let lines = try LorabenchProcess.output(["compare", directory, "--baseline-rank", "8", "--resamples", "200"])
            .split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("against rank=8: accuracy difference in points") == true)
        #expect(lines.contains { $0.hasPrefix("dora rank=4 vs rank=8 (rank=8; alpha=2r;") && $0.contains(": +8.75 [") })
        #expect(lines.last == "2 comparisons → \(directory)/compare-rank.csv")
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/compare.csv"))
        // The report shows the table, one row per comparison.
        _ = try LorabenchProcess.output(["report", directory])
        let page = try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8)
        #expect(page.contains("<h2>Paired comparisons against rank=8 within each variant</h2>"))
        #expect(page.components(separatedBy: "<td class=\"name\">accuracy</td>").count - 1 == 2)
    }

    @Test func stepsToWritesBothTablesAndPrintsEachPair() throws {
        let directory = try ExperimentSupport.temporaryDirectory() + "/results"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try StepsFixture.write(into: directory)
        let lines = try LorabenchProcess.output(["compare", directory, "--baseline", "lora", "--steps-to", "0.8"])
            .split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("steps to eval accuracy ≥ 0.8 against lora: mean difference in steps") == true)
        #expect(lines.contains { $0.hasPrefix("loraplus vs lora (rank=8;") && $0.contains("): -10.0 steps [")
                 && $0.hasSuffix("both reached 3 of 4 (only it 1, only lora 0, neither 0); sooner 3, later 0, ties 1, unknown 0: sign p=0.25, holm p=0.25") })
        #expect(lines.last == "2 pairs → \(directory)/steps-to.csv; every run → \(directory)/steps-to-runs.csv")
        #expect(FileManager.default.fileExists(atPath: "\(directory)/steps-to-runs.csv"))
        // The report shows the pairs, loraplus's sign test among them.
        _ = try LorabenchProcess.output(["report", directory])
        let page = try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8)
        #expect(page.contains("<h2>Steps to accuracy ≥ 0.8</h2>"))
        #expect(page.contains("<td>3 / 0 / 1</td><td>0.25</td><td>0.25</td>"))
    }

    @Test func optionsThatDoNotGoTogetherAreRefused() throws {
        let directory = try ExperimentSupport.temporaryDirectory() + "/results"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try StepsFixture.write(into: directory)
        let cases: [([String], String)] = [
            ([], "give one baseline: --baseline VARIANT (variants against it) or --baseline-rank R (each variant's ranks against its rank R)"),
            (["--baseline", "lora", "--baseline-rank", "8"], "give one baseline: --baseline VARIANT"),
            (["--baseline", "lora", "--metric", "loss"], "--metric names the metric of --steps-to; give --steps-to X too"),
            (["--baseline", "lora", "--steps-to", "0.8", "--resamples", "500"],
             "--resamples and --bootstrap-seed set the bootstrap over dev predictions, which --steps-to does not use"),
            (["--baseline", "lora", "--steps-to", "nan"], "--steps-to: found nan; allowed: a finite number, the value of the eval metric to reach"),
            (["--baseline", "lora", "--steps-to", "0.8", "--metric", "f1"], "--metric: found 'f1'; allowed: loss, accuracy"),
            (["--baseline-rank", "16"], "--baseline-rank: found 16, a rank no run of the results has; allowed: 8"),
        ]
        for (arguments, message) in cases {
            let result = try LorabenchProcess.failure(["compare", directory] + arguments)
            #expect(result.status != 0 && result.errors.contains(message), "\(arguments): \(result.errors)")
        }
    }
}
