import Foundation
import LoRABenchTensorIO

/// `cells.csv`: the runs of each cell (every axis but the seed) summarised over seeds, for every
/// final metric of summary.csv: how many runs the cell has, how many diverged or failed, and how
/// many completed with a value that is not a finite number (nan, inf; all three are counted, never
/// averaged in), then n, mean, sample standard deviation and the 95 % Student-t interval of the
/// mean over the completed seeds with a finite value (none for n = 1).
///
///     variant,rank,alpha,init,target_modules,dropout,use_rslora[,learning_rate],split,metric,runs,diverged,failed,non_finite,n,mean,std,ci95_low,ci95_high,interval
///
/// With a `selection:` block the learning rate is chosen, not a cell axis: each cell keeps the
/// runs of its selected learning rate only, named in a `selected_learning_rate` column (empty
/// where no candidate completed a run; such a cell keeps all its runs, to count them).
public struct CellTable {
    public static let statisticColumns = ["split", "metric", "runs", "diverged", "failed", "non_finite", "n", "mean", "std", "ci95_low", "ci95_high",
                                          "interval"]

    public struct Cell {
        /// The values of `CellTable.axisNames`.
        public var axes: [String]
        /// `eval` or `validation`.
        public var split: String
        public var metric: String
        public var runs: Int
        public var diverged: Int
        public var failed: Int
        /// Completed runs whose final value is nan or infinite: left out of `summary`.
        public var nonFinite: Int
        /// The completed runs' finite final values over seeds; nil when there are none.
        public var summary: SampleSummary?

        /// How `interval` reads: the method, or why there is none.
        public var intervalNote: String {
            switch summary?.count {
            case nil: return nonFinite > 0 ? "none (no finite value)" : "none (no completed run)"
            case 1: return "none (n = 1)"
            default: return "student_t"
            }
        }
    }

    public var axisNames: [String]
    public var cells: [Cell]

    /// The cells of `results`, in the order their first runs appear; with `selection`, only the
    /// selected learning rate of each cell.
    public init(results: ExperimentResults, selection: SelectedSettings?) {
        var axisNames = results.axisNames.filter { $0 != "seed" }
        if selection != nil { axisNames = axisNames.filter { $0 != "learning_rate" } + ["selected_learning_rate"] }
        self.axisNames = axisNames
        var order: [[String]] = []
        var runsByCell: [[String]: [ExperimentResults.Run]] = [:]
        for run in results.runs {
            var key: [String]
            if let selection {
                let cell = selection.cellAxes.map { run.axes[$0] ?? "" }
                let chosen = selection.chosen[cell]
                guard chosen == nil || selection.isSelected(run) else { continue }
                key = axisNames.dropLast().map { run.axes[$0] ?? "" } + [chosen ?? ""]
            } else {
                key = axisNames.map { run.axes[$0] ?? "" }
            }
            if runsByCell[key] == nil { order.append(key) }
            runsByCell[key, default: []].append(run)
        }
        cells = order.flatMap { key in
            let runs = runsByCell[key]!
            return results.finalMetricColumns.map { column in
                let (split, metric) = Self.splitAndMetric(column)
                let values = runs.filter { $0.status == .completed }.compactMap { $0.evalMetrics[column] }
                return Cell(axes: key, split: split, metric: metric, runs: runs.count, diverged: runs.filter { $0.status == .diverged }.count,
                            failed: runs.filter { $0.status == .failed }.count, nonFinite: values.filter { !$0.isFinite }.count,
                            summary: SampleSummary(values.filter(\.isFinite)))
            }
        }
    }

    /// `final_eval_accuracy` → (eval, accuracy); `final_validation_loss` → (validation, loss).
    private static func splitAndMetric(_ column: String) -> (String, String) {
        for split in EvalSplit.allCases where column.hasPrefix("final_\(split.rawValue)_") {
            return (split.rawValue, String(column.dropFirst("final_\(split.rawValue)_".count)))
        }
        return ("", column)
    }

    public var header: [String] { axisNames + Self.statisticColumns }

    public var rows: [[String]] {
        cells.map { cell in
            let summary = cell.summary
            return cell.axes + [cell.split, cell.metric, String(cell.runs), String(cell.diverged), String(cell.failed),
                                String(cell.nonFinite),
                                String(summary?.count ?? 0), summary.map { formatNumber($0.mean) } ?? "",
                                summary?.standardDeviation.map(formatNumber) ?? "", summary?.interval95.map { formatNumber($0.lowerBound) } ?? "",
                                summary?.interval95.map { formatNumber($0.upperBound) } ?? "", cell.intervalNote]
        }
    }

    public var text: String { ([header] + rows).map(CSV.line).joined() }

    /// The cells of a results folder as `lorabench report` and `export --cells` show them:
    /// from its summary.csv, with its selection.csv when it has one.
    public static func load(resultsDirectory directory: String) throws -> CellTable {
        CellTable(results: try ExperimentResults.load(directory: directory), selection: try SelectedSettings.load(resultsDirectory: directory))
    }
}
