import Foundation
import LoRABenchTensorIO

/// One run as a selection sees it: its cell, its candidate value and its final metric on the
/// validation split. Nothing of the eval split is in here, so a selection cannot read it.
public struct ValidationResult: Equatable, Sendable {
    /// The run's values of the cell axes (every axis but the seed and the ones chosen over).
    public var cell: [String]
    /// The run's value of the axis chosen over, as its column writes it (`0.0003`).
    public var candidate: String
    /// The final validation metric; nil when the run did not complete.
    public var value: Double?

    public init(cell: [String], candidate: String, value: Double?) {
        self.cell = cell
        self.candidate = candidate
        self.value = value
    }
}

/// What was chosen for one cell, and from what.
public struct SelectionChoice: Equatable, Sendable {
    public struct Candidate: Equatable, Sendable {
        public var value: String
        public var runs: Int
        /// The completed runs' validation metric over seeds; nil when none completed.
        public var summary: SampleSummary?
    }

    public var cell: [String]
    /// nil when no candidate has a completed run.
    public var selected: String?
    public var candidates: [Candidate]
}

public enum Selection {
    /// For each cell, the candidate with the best mean validation metric over its completed
    /// seeds. A candidate that lost seeds (diverged or failed) is chosen only when every
    /// candidate lost as many: divergence says something about a learning rate, and a mean over
    /// its survivors would hide it. Ties go to the candidate listed first. Cells and candidates
    /// keep the order of `results`.
    public static func choose(_ results: [ValidationResult], higherIsBetter: Bool) -> [SelectionChoice] {
        var cells: [[String]] = []
        var byCell: [[String]: [(candidate: String, values: [Double?])]] = [:]
        for result in results {
            if byCell[result.cell] == nil {
                cells.append(result.cell)
                byCell[result.cell] = []
            }
            if let index = byCell[result.cell]!.firstIndex(where: { $0.candidate == result.candidate }) {
                byCell[result.cell]![index].values.append(result.value)
            } else {
                byCell[result.cell]!.append((result.candidate, [result.value]))
            }
        }
        return cells.map { cell in
            let candidates = byCell[cell]!.map { entry in
                SelectionChoice.Candidate(value: entry.candidate, runs: entry.values.count, summary: SampleSummary(entry.values.compactMap { $0 }))
            }
            let mostCompleted = candidates.map { $0.summary?.count ?? 0 }.max() ?? 0
            var best: SelectionChoice.Candidate?
            for candidate in candidates {
                guard let summary = candidate.summary, summary.count == mostCompleted else { continue }
                guard let current = best?.summary else {
                    best = candidate
                    continue
                }
                if higherIsBetter ? summary.mean > current.mean : summary.mean < current.mean { best = candidate }
            }
            return SelectionChoice(cell: cell, selected: best?.value, candidates: candidates)
        }
    }

    /// The cell axes of a results folder's axes: every one but the seed and the axes chosen over.
    public static func cellAxes(_ axisNames: [String], over: [String]) -> [String] {
        axisNames.filter { $0 != "seed" && !over.contains($0) }
    }

    /// What selection reads of each run: its cell, its learning rate, and `column` (a
    /// `final_validation_<m>` column) when it completed; never an eval column.
    public static func validationResults(_ runs: [ExperimentResults.Run], cellAxes: [String], column: String) -> [ValidationResult] {
        precondition(column.hasPrefix("final_\(EvalSplit.validation.rawValue)_"), "selection reads the validation split only, not \(column)")
        return runs.map { run in
            ValidationResult(cell: cellAxes.map { run.axes[$0] ?? "" }, candidate: run.axes["learning_rate"] ?? "",
                             value: run.status == .completed ? run.evalMetrics[column] : nil)
        }
    }
}

/// `selection.csv`: one row per cell and candidate, the cell's axes, the value chosen for it,
/// the candidate's value, and the candidate's validation metric (runs, completed runs, mean):
///
///     variant,rank,alpha,…,use_rslora,selected_learning_rate,learning_rate,split,metric,better,runs,completed,mean
///
/// The rows whose `learning_rate` equals `selected_learning_rate` are the chosen settings.
public struct SelectedSettings {
    public static let fixedColumns = ["selected_learning_rate", "learning_rate", "split", "metric", "better", "runs", "completed", "mean"]

    /// One candidate of one cell.
    public struct Row: Equatable, Sendable {
        public var cell: [String]
        public var candidate: String
        public var runs: Int
        public var completed: Int
        public var mean: Double?
    }

    /// The axes that make a cell (summary.csv's axes but the seed and learning_rate).
    public var cellAxes: [String]
    /// The metric chosen on, on the validation split, and which way is better (`higher`, `lower`).
    public var metric: String
    public var better: String
    /// The chosen learning rate of each cell (by its axis values); a cell where nothing
    /// completed has none.
    public var chosen: [[String]: String]
    /// Every cell's candidates, cell by cell.
    public var rows: [Row]

    /// `metric`: the one the choices were made on, on the validation split.
    public init(choices: [SelectionChoice], cellAxes: [String], metric: EvalMetric) {
        self.cellAxes = cellAxes
        self.metric = metric.name
        better = metric.higherIsBetter ? "higher" : "lower"
        var chosen: [[String]: String] = [:]
        for choice in choices { chosen[choice.cell] = choice.selected }
        self.chosen = chosen
        rows = choices.flatMap { choice in
            choice.candidates.map { Row(cell: choice.cell, candidate: $0.value, runs: $0.runs, completed: $0.summary?.count ?? 0, mean: $0.summary?.mean) }
        }
    }

    /// `validation accuracy`: what the choice was made on.
    public var criterion: String { "\(EvalSplit.validation.rawValue) \(metric)" }

    /// Whether `run` has its cell's chosen learning rate.
    public func isSelected(_ run: ExperimentResults.Run) -> Bool {
        guard let value = chosen[cellAxes.map { run.axes[$0] ?? "" }] else { return false }
        return run.axes["learning_rate"] == value
    }

    public var text: String {
        CSV.line(cellAxes + Self.fixedColumns) + rows.map { row in
            CSV.line(row.cell + [chosen[row.cell] ?? "", row.candidate, EvalSplit.validation.rawValue, metric, better, String(row.runs),
                                 String(row.completed), row.mean.map(formatNumber) ?? ""])
        }.joined()
    }

    /// The selection.csv of a results folder; nil when there is none (no `selection:` block).
    public static func load(resultsDirectory directory: String) throws -> SelectedSettings? {
        let path = ResultsLayout(root: directory).selectionFile
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let table = try CSVTable(contentsOf: path, producer: ExperimentResults.producer)
        let first = try table.column("selected_learning_rate")
        guard Array(table.header[first...]) == fixedColumns else {
            throw ResultsError.malformed(path: path, line: 1, message: "expected the axis columns, then \(fixedColumns.joined(separator: ","))")
        }
        return try SelectedSettings(table: table, cellAxes: Array(table.header[..<first]))
    }

    private init(table: CSVTable, cellAxes: [String]) throws {
        self.cellAxes = cellAxes
        (metric, better, chosen, rows) = ("", "higher", [:], [])
        for (line, fields) in table.records {
            let cell = Array(fields[..<cellAxes.count])
            let values = Array(fields[cellAxes.count...])
            guard values[2] == EvalSplit.validation.rawValue, ["higher", "lower"].contains(values[4]), let runs = Int(values[5]),
                  let completed = Int(values[6]), values[7].isEmpty || Double(values[7]) != nil else {
                throw ResultsError.malformed(path: table.path, line: line, message: "expected split validation, better higher or lower, "
                                             + "whole numbers of runs and completed runs, and a number or nothing as the mean")
            }
            if !values[0].isEmpty { chosen[cell] = values[0] }
            (metric, better) = (values[3], values[4])
            rows.append(Row(cell: cell, candidate: values[1], runs: runs, completed: completed, mean: Double(values[7])))
        }
    }
}
