import Foundation
import LoRABenchTensorIO

/// One measurement in tidy long form: at `step` on `split`, `metric` was `value`.
public struct MetricRow: Equatable, Codable, Sendable {
    public var step: Int
    /// `train` or `eval`.
    public var split: String
    public var metric: String
    public var value: Double

    public init(step: Int, split: String, metric: String, value: Double) {
        self.step = step
        self.split = split
        self.metric = metric
        self.value = value
    }
}

/// The two metrics.csv layouts: per run `run_id,step,split,metric,value`, and per experiment the
/// same rows prefixed with the run's axis values, `run_id,variant,rank,…,step,split,metric,value`.
public enum MetricsCSV {
    public static let runColumns = ["run_id", "step", "split", "metric", "value"]
    public static func experimentColumns(showingBase: Bool, learningRateAxis: Bool = false) -> [String] {
        AxisColumns.names(showingBase: showingBase, learningRateAxis: learningRateAxis) + ["step", "split", "metric", "value"]
    }

    package static func runFile(runID: String, rows: [MetricRow]) -> String {
        CSV.line(runColumns) + rows.map { CSV.line([runID, String($0.step), $0.split, $0.metric, formatMetric($0.value)]) }.joined()
    }

    /// A run's rows as experiment rows: its axis values (`RunSpec.axisValues`), then step, split,
    /// metric, value.
    package static func experimentRows(axisValues: [String], runFile: Data, path: String) throws -> [[String]] {
        let table = try CSVTable(data: runFile, path: path)
        guard table.header == runColumns else {
            throw ResultsError.malformed(path: path, line: 1, message: "expected the columns \(runColumns.joined(separator: ","))")
        }
        return table.records.map { axisValues + $0.fields.dropFirst() }
    }
}
