import Foundation
import LoRABenchTensorIO

public enum ExportError: Error, Equatable, CustomStringConvertible {
    case unknownMetric(String, available: [String])
    case unknownSplit(String, available: [String])
    case unknownAxis(String, allowed: [String])
    case clash(key: String, column: String)
    case noSelection(path: String)

    public var description: String {
        switch self {
        case let .unknownMetric(metric, available):
            let guess = closestMatch(to: metric, in: available).map { " (did you mean '\($0)'?)" } ?? ""
            return "no metric '\(metric)' in the results; available: \(available.joined(separator: ", "))\(guess)"
        case let .unknownSplit(split, available):
            return "no split '\(split)' for this metric; available: \(available.joined(separator: ", "))"
        case let .unknownAxis(axis, allowed):
            return "cannot widen by '\(axis)'; allowed: \(allowed.joined(separator: ", "))"
        case let .clash(key, column):
            return "two values for the same cell (\(key); \(column)); filter with --split, or widen by another axis"
        case let .noSelection(path):
            return "\(path) does not exist: --selected needs a sweep whose manifest has a `selection:` block (see Experiments/README.md)"
        }
    }
}

/// A table to write as CSV.
public struct ExportedTable: Equatable {
    public var header: [String]
    public var rows: [[String]]

    public var text: String { ([header] + rows).map(CSV.line).joined() }
}

/// One metric of an experiment as a CSV ready for plotting: long (the experiment's rows for that
/// metric, all columns kept) or wide (one column per value of an axis, e.g. `rank=4, rank=8, …`,
/// one row per combination of the other axes, step and split; `run_id` is dropped because it
/// differs between the widened columns). `selectedOnly` keeps the runs of the learning rates
/// that selection.csv chose. `cells` is cells.csv: statistics over seeds per cell.
public enum MetricsExport {
    /// Axes that can spread into columns (`base` and `learning_rate` where the results have them).
    public static let wideAxes = Array(AxisColumns.names(showingBase: true, learningRateAxis: true).dropFirst())

    /// The files of `results` that an export reads or that the runner maintains: an export's
    /// output may never be one of them.
    public static func inputs(results: String) -> [String] {
        let layout = ResultsLayout(root: results)
        return [layout.metricsFile, layout.summaryFile, layout.manifestCopy, layout.runsDirectory, layout.cellsFile, layout.selectionFile,
                layout.compareFile]
    }

    public static func table(results: String, metric: String, split: String? = nil, wideBy axis: String? = nil,
                             selectedOnly: Bool = false) throws -> ExportedTable {
        let table = try CSVTable(contentsOf: ResultsLayout(root: results).metricsFile, producer: ExperimentResults.producer)
        let metricColumn = try table.column("metric"), splitColumn = try table.column("split")
        var rows = table.records.map(\.fields).filter { $0[metricColumn] == metric }
        guard !rows.isEmpty else { throw ExportError.unknownMetric(metric, available: unique(table.records.map { $0.fields[metricColumn] })) }
        if let split {
            let available = unique(rows.map { $0[splitColumn] })
            rows = rows.filter { $0[splitColumn] == split }
            guard !rows.isEmpty else { throw ExportError.unknownSplit(split, available: available) }
        }
        if selectedOnly {
            guard let selection = try SelectedSettings.load(resultsDirectory: results) else {
                throw ExportError.noSelection(path: ResultsLayout(root: results).selectionFile)
            }
            let cellColumns = try selection.cellAxes.map(table.column), rateColumn = try table.column("learning_rate")
            rows = rows.filter { row in selection.chosen[cellColumns.map { row[$0] }] == row[rateColumn] }
        }
        guard let axis else { return ExportedTable(header: table.header, rows: rows) }
        guard wideAxes.contains(axis) else { throw ExportError.unknownAxis(axis, allowed: wideAxes) }
        return try widen(header: table.header, rows: rows, by: axis, in: table)
    }

    /// cells.csv as `lorabench export --cells` writes it: computed from summary.csv (and
    /// selection.csv), so it exists for results written before cells.csv did.
    public static func cells(results: String) throws -> ExportedTable {
        let cells = try CellTable.load(resultsDirectory: results)
        return ExportedTable(header: cells.header, rows: cells.rows)
    }

    private static func widen(header: [String], rows: [[String]], by axis: String, in table: CSVTable) throws -> ExportedTable {
        let axisColumn = try table.column(axis), valueColumn = try table.column("value")
        let dropped: Set<String> = ["run_id", axis, "metric", "value"]
        let keyColumns = header.indices.filter { !dropped.contains(header[$0]) }
        var values = unique(rows.map { $0[axisColumn] })
        let numbers = values.compactMap(Double.init)
        if numbers.count == values.count { values = zip(values, numbers).sorted { $0.1 < $1.1 }.map(\.0) }

        var order: [[String]] = []
        var cells: [[String]: [String: String]] = [:]
        for row in rows {
            let key = keyColumns.map { row[$0] }
            if cells[key] == nil {
                order.append(key)
                cells[key] = [:]
            }
            guard cells[key]![row[axisColumn]] == nil else {
                let described = zip(keyColumns.map { header[$0] }, key).map { "\($0)=\($1)" }.joined(separator: ", ")
                throw ExportError.clash(key: described, column: "\(axis)=\(row[axisColumn])")
            }
            cells[key]![row[axisColumn]] = row[valueColumn]
        }
        return ExportedTable(header: keyColumns.map { header[$0] } + values.map { "\(axis)=\($0)" },
                             rows: order.map { key in key + values.map { cells[key]![$0] ?? "" } })
    }

    private static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }
}
