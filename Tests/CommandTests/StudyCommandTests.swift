import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// `lorabench compare`, `export --cells` and `export --selected` as a user runs them, and the
/// study manifest that ships with the package.
@Suite struct StudyCommandTests {
    @Test func compareWritesCompareCSVAndPrintsEachComparison() throws {
        let directory = try ExperimentSupport.temporaryDirectory() + "/results"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ComparisonFixture.write(into: directory)
        let output = try LorabenchProcess.output(["compare", directory, "--baseline", "lora", "--resamples", "500"])
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("against lora: accuracy difference in points, paired bootstrap 95 % interval") == true)
        #expect(lines.contains { $0.hasPrefix("dora rank=4 vs lora (rank=4;") && $0.contains(": +10.00 [") && $0.hasSuffix(" *") })
        #expect(lines.last == "2 comparisons → \(directory)/compare.csv")
        let table = try CSVTable(contentsOf: "\(directory)/compare.csv", producer: "test")
        let resamples = try table.column("bootstrap_resamples")
        #expect(table.records.count == 2 && table.records[0].fields[resamples] == "500")

        let unknown = try LorabenchProcess.failure(["compare", directory, "--baseline", "lor"])
        #expect(unknown.status != 0 && unknown.errors.contains("no variant 'lor' in the results; variants: head_only, lora, dora"))
    }

    @Test func exportCellsAndSelected() throws {
        let directory = try ExperimentSupport.temporaryDirectory() + "/results"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ComparisonFixture.write(into: directory)
        let cells = try LorabenchProcess.output(["export", directory, "--cells"]).split(separator: "\n").map(String.init)
        #expect(cells.first == "variant,rank,alpha,init,target_modules,dropout,use_rslora," + CellTable.statisticColumns.joined(separator: ","))
        #expect(cells.contains { $0.hasPrefix("dora,8,2r,kaiming,query+value,0,false,eval,accuracy,3,1,0,0,2,0.75,0,0.75,0.75,student_t") })
        let selected = try LorabenchProcess.failure(["export", directory, "--cells", "--selected"])
        #expect(selected.status != 0 && selected.errors.contains("\(directory)/selection.csv does not exist: --selected needs a sweep whose manifest has a `selection:` block"))
        let neither = try LorabenchProcess.failure(["export", directory])
        #expect(neither.status != 0 && neither.errors.contains("give --metric NAME, or --cells"))
    }

    @Test func theStudyManifestsValidate() throws {
        let study = Fixtures.projectRoot.appendingPathComponent("Experiments/sst2-study.yaml").path
        #expect(try LorabenchProcess.output(["validate", study]).hasPrefix("\(study): ok — experiment sst2-study, 306 runs of 60 steps"))
        let convergence = Fixtures.projectRoot.appendingPathComponent("Experiments/sst2-convergence.yaml").path
        #expect(try LorabenchProcess.output(["validate", convergence]).hasPrefix(
            "\(convergence): ok — experiment sst2-convergence, 18 runs of 60 steps"))
    }
}
