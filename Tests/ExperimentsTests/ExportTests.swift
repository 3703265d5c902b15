import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// `lorabench export`: one metric as long or wide CSV, read back to the same numbers.
@Suite struct ExportTests {
    static let results: String = {
        let directory = try! ExperimentSupport.temporaryDirectory("export")
        let manifest = try! Manifest(yaml: ExperimentSupport.manifest(sweep: "  variants: [lora, dora]\n  ranks: [2, 4, 8]\n  seeds: [0, 1]"),
                                     file: "m.yaml")
        try! ExperimentSupport.run(manifest, into: directory)
        return "\(directory)/results"
    }()

    /// (run axes without run_id, step, split) → value, from the experiment's metrics.csv.
    func stored(metric: String, split: String) throws -> [[String]: String] {
        let rows = try ExperimentSupport.records("\(Self.results)/metrics.csv").dropFirst().filter { $0[10] == split && $0[11] == metric }
        return Dictionary(uniqueKeysWithValues: rows.map { (Array($0[1...10]), $0[12]) })
    }

    @Test func longIsTheMetricsRowsOfThatMetric() throws {
        let table = try MetricsExport.table(results: Self.results, metric: "loss", split: "eval")
        #expect(table.header == MetricsCSV.experimentColumns(showingBase: false))
        let parsed = try CSVTable(data: Data(table.text.utf8), path: "long.csv")
        let values = Dictionary(uniqueKeysWithValues: parsed.records.map { (Array($0.fields[1...10]), $0.fields[12]) })
        #expect(values == (try stored(metric: "loss", split: "eval")))
        #expect(values.count == 12 * 4)  // 12 runs × evaluations at steps 0, 20, 40, 60
    }

    @Test func wideByRankRoundTrips() throws {
        let table = try MetricsExport.table(results: Self.results, metric: "loss", split: "eval", wideBy: "rank")
        #expect(table.header == ["variant", "alpha", "seed", "init", "target_modules", "dropout", "use_rslora", "step", "split",
                                 "rank=2", "rank=4", "rank=8"])
        #expect(table.rows.count == 2 * 2 * 4)  // variants × seeds × evaluations
        let parsed = try CSVTable(data: Data(table.text.utf8), path: "wide.csv")
        var values: [[String]: String] = [:]
        for record in parsed.records {
            for (offset, rank) in ["2", "4", "8"].enumerated() {
                let fields = record.fields
                values[[fields[0], rank] + fields[1...8]] = fields[9 + offset]
            }
        }
        #expect(values == (try stored(metric: "loss", split: "eval")))
    }

    @Test func wideKeepsSplitsApart() throws {
        let table = try MetricsExport.table(results: Self.results, metric: "loss", wideBy: "seed")
        #expect(Set(table.rows.map { $0[8] }) == ["train", "eval"])
        #expect(table.rows.allSatisfy { !$0[9].isEmpty && !$0[10].isEmpty })
    }

    @Test func mistakesNameWhatIsAvailable() {
        #expect(throws: ExportError.unknownAxis("ranks", allowed: MetricsExport.wideAxes)) {
            try MetricsExport.table(results: Self.results, metric: "loss", wideBy: "ranks")
        }
        #expect(throws: ExportError.unknownSplit("test", available: ["eval", "train"])) {
            try MetricsExport.table(results: Self.results, metric: "loss", split: "test")
        }
        #expect(throws: ExportError.self) { try MetricsExport.table(results: Self.results, metric: "accuracy") }
    }
}
