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
    /// For a run successive halving stopped at a rung: the rung's step, and the validation
    /// metric there that it was ranked by.
    public var stoppedAtStep: Int?
    public var rungValue: Double?

    public init(cell: [String], candidate: String, value: Double?, stoppedAtStep: Int? = nil, rungValue: Double? = nil) {
        self.cell = cell
        self.candidate = candidate
        self.value = value
        self.stoppedAtStep = stoppedAtStep
        self.rungValue = rungValue
    }
}

/// What was chosen for one cell, and from what.
public struct SelectionChoice: Equatable, Sendable {
    public struct Candidate: Equatable, Sendable {
        public var value: String
        public var runs: Int
        /// The completed runs' validation metric over seeds; nil when none completed.
        public var summary: SampleSummary?
        /// Where successive halving stopped the candidate: the rung's step and its runs' validation
        /// metric there, over the seeds that reached it; nil when it was not stopped.
        public var stoppedAtStep: Int?
        public var stoppedSummary: SampleSummary?
    }

    public var cell: [String]
    /// nil when no candidate has a completed run.
    public var selected: String?
    public var candidates: [Candidate]
}

public enum Selection {
    /// For each cell, the candidate with the best mean validation metric over its completed
    /// seeds (the first of `rank`). Cells and candidates keep the order of `results`.
    public static func choose(_ results: [ValidationResult], higherIsBetter: Bool) -> [SelectionChoice] {
        var cells: [[String]] = []
        var byCell: [[String]: [(candidate: String, results: [ValidationResult])]] = [:]
        for result in results {
            if byCell[result.cell] == nil {
                cells.append(result.cell)
                byCell[result.cell] = []
            }
            if let index = byCell[result.cell]!.firstIndex(where: { $0.candidate == result.candidate }) {
                byCell[result.cell]![index].results.append(result)
            } else {
                byCell[result.cell]!.append((result.candidate, [result]))
            }
        }
        return cells.map { cell in
            let entries = byCell[cell]!
            let candidates = entries.map { entry in
                let stopped = entry.results.filter { $0.stoppedAtStep != nil }
                return SelectionChoice.Candidate(value: entry.candidate, runs: entry.results.count,
                                                 summary: SampleSummary(entry.results.compactMap(\.value)),
                                                 stoppedAtStep: stopped.first?.stoppedAtStep,
                                                 stoppedSummary: SampleSummary(stopped.compactMap(\.rungValue)))
            }
            let best = rank(entries.map { $0.results.map(\.value) }, higherIsBetter: higherIsBetter).first
            return SelectionChoice(cell: cell, selected: best.flatMap { candidates[$0].summary == nil ? nil : candidates[$0].value },
                                   candidates: candidates)
        }
    }

    /// Candidates' indices, best first, each candidate given by its seeds' values (nil: a seed
    /// without one, diverged or failed). More values come first: a candidate that lost seeds
    /// ranks below every one that lost fewer, whatever its mean, since divergence says something
    /// about a learning rate and a mean over its survivors would hide it. Then the better mean,
    /// then the order given. The final choice and every rung of successive halving rank this way.
    public static func rank(_ candidates: [[Double?]], higherIsBetter: Bool) -> [Int] {
        let summaries = candidates.map { SampleSummary($0.compactMap { $0 }) }
        return candidates.indices.sorted { a, b in
            let (countA, countB) = (summaries[a]?.count ?? 0, summaries[b]?.count ?? 0)
            if countA != countB { return countA > countB }
            if let meanA = summaries[a]?.mean, let meanB = summaries[b]?.mean, meanA != meanB {
                return higherIsBetter ? meanA > meanB : meanA < meanB
            }
            return a < b
        }
    }

    /// The cell axes of a results folder's axes: every one but the seed and the axes chosen over.
    public static func cellAxes(_ axisNames: [String], over: [String]) -> [String] {
        axisNames.filter { $0 != "seed" && !over.contains($0) }
    }

    /// What selection reads of each run: its cell, its learning rate, and `column` (a
    /// `final_validation_<m>` column) when it completed; never an eval column.
    /// A run stopped by successive halving brings its rung's step and value (its final validation metric).
    public static func validationResults(_ runs: [ExperimentResults.Run], cellAxes: [String], column: String) -> [ValidationResult] {
        precondition(column.hasPrefix("final_\(EvalSplit.validation.rawValue)_"), "selection reads the validation split only, not \(column)")
        return runs.map { run in
            let stopped = run.status == .stopped
            return ValidationResult(cell: cellAxes.map { run.axes[$0] ?? "" }, candidate: run.axes["learning_rate"] ?? "",
                                    value: run.status == .completed ? run.evalMetrics[column] : nil,
                                    stoppedAtStep: stopped ? run.stepsCompleted : nil, rungValue: stopped ? run.evalMetrics[column] : nil)
        }
    }
}

/// `selection.csv`: one row per cell and candidate, the cell's axes, the value chosen for it,
/// the candidate's value, and the candidate's validation metric (runs, completed runs, mean):
///
///     variant,rank,alpha,…,use_rslora,selected_learning_rate,learning_rate,split,metric,better,runs,completed,mean
///
/// The rows whose `learning_rate` equals `selected_learning_rate` are the chosen settings. With
/// successive halving four columns follow: where the candidate was stopped (`stopped_at_rung`,
/// counted from 1, and `stopped_at_step`; empty for a candidate that trained to the end) and its
/// runs' validation metric there (`stopped_runs` of them, their `stopped_mean`).
public struct SelectedSettings {
    public static let fixedColumns = ["selected_learning_rate", "learning_rate", "split", "metric", "better", "runs", "completed", "mean"]
    public static let halvingColumns = ["stopped_at_rung", "stopped_at_step", "stopped_runs", "stopped_mean"]

    /// One candidate of one cell.
    public struct Row: Equatable, Sendable {
        public var cell: [String]
        public var candidate: String
        public var runs: Int
        public var completed: Int
        public var mean: Double?
        /// Where successive halving stopped it; nil when it trained to the end (or no halving).
        public var stoppedAtRung: Int?
        public var stoppedAtStep: Int?
        /// Its runs stopped there, and their mean validation metric at that step.
        public var stoppedRuns = 0
        public var stoppedMean: Double?
    }

    /// The axes that make a cell (summary.csv's axes but the seed and learning_rate).
    public var cellAxes: [String]
    /// The metric chosen on, on the validation split, and which way is better (`higher`, `lower`).
    public var metric: String
    public var better: String
    /// Whether the candidates went through successive halving (selection.csv has its columns).
    public var isHalving: Bool
    /// The chosen learning rate of each cell (by its axis values); a cell where nothing
    /// completed has none.
    public var chosen: [[String]: String]
    /// Every cell's candidates, cell by cell.
    public var rows: [Row]

    /// `metric`: the one the choices were made on, on the validation split; `rungs`: the steps
    /// of successive halving's rungs, nil without it.
    public init(choices: [SelectionChoice], cellAxes: [String], metric: EvalMetric, rungs: [Int]? = nil) {
        self.cellAxes = cellAxes
        self.metric = metric.name
        better = metric.higherIsBetter ? "higher" : "lower"
        isHalving = rungs != nil
        var chosen: [[String]: String] = [:]
        for choice in choices { chosen[choice.cell] = choice.selected }
        self.chosen = chosen
        rows = choices.flatMap { choice in
            choice.candidates.map { candidate in
                Row(cell: choice.cell, candidate: candidate.value, runs: candidate.runs, completed: candidate.summary?.count ?? 0,
                    mean: candidate.summary?.mean,
                    stoppedAtRung: candidate.stoppedAtStep.flatMap { step in rungs?.firstIndex(of: step).map { $0 + 1 } },
                    stoppedAtStep: candidate.stoppedAtStep, stoppedRuns: candidate.stoppedSummary?.count ?? 0,
                    stoppedMean: candidate.stoppedSummary?.mean)
            }
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
        CSV.line(cellAxes + Self.fixedColumns + (isHalving ? Self.halvingColumns : [])) + rows.map { row in
            let halving = [row.stoppedAtRung.map(String.init) ?? "", row.stoppedAtStep.map(String.init) ?? "", String(row.stoppedRuns),
                           row.stoppedMean.map(formatNumber) ?? ""]
            return CSV.line(row.cell + [chosen[row.cell] ?? "", row.candidate, EvalSplit.validation.rawValue, metric, better, String(row.runs),
                                        String(row.completed), row.mean.map(formatNumber) ?? ""] + (isHalving ? halving : []))
        }.joined()
    }

    /// The selection.csv of a results folder; nil when there is none (no `selection:` block).
    public static func load(resultsDirectory directory: String) throws -> SelectedSettings? {
        let path = ResultsLayout(root: directory).selectionFile
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let table = try CSVTable(contentsOf: path, producer: ExperimentResults.producer)
        let first = try table.column("selected_learning_rate")
        let columns = Array(table.header[first...])
        guard columns == fixedColumns || columns == fixedColumns + halvingColumns else {
            throw ResultsError.malformed(path: path, line: 1, message: "expected the axis columns, then \(fixedColumns.joined(separator: ",")), "
                                         + "and with successive halving \(halvingColumns.joined(separator: ","))")
        }
        return try SelectedSettings(table: table, cellAxes: Array(table.header[..<first]), isHalving: columns.count > fixedColumns.count)
    }

    private init(table: CSVTable, cellAxes: [String], isHalving: Bool) throws {
        self.cellAxes = cellAxes
        self.isHalving = isHalving
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
            var row = Row(cell: cell, candidate: values[1], runs: runs, completed: completed, mean: Double(values[7]))
            if isHalving {
                let halving = Array(values[Self.fixedColumns.count...])
                guard halving[0].isEmpty || Int(halving[0]) != nil, halving[1].isEmpty || Int(halving[1]) != nil,
                      let stoppedRuns = Int(halving[2]), halving[3].isEmpty || Double(halving[3]) != nil else {
                    throw ResultsError.malformed(path: table.path, line: line, message: "expected a rung and a step (whole numbers, or nothing "
                                                 + "for a candidate that trained to the end), a whole number of stopped runs, and a number or nothing as their mean")
                }
                (row.stoppedAtRung, row.stoppedAtStep, row.stoppedRuns, row.stoppedMean) =
                    (Int(halving[0]), Int(halving[1]), stoppedRuns, Double(halving[3]))
            }
            rows.append(row)
        }
    }
}
