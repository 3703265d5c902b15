import Foundation
import LoRABenchTensorIO
import LoRABenchResults

/// What a paired question sets each cell against.
public enum ComparisonBaseline: Equatable, Sendable {
    /// Every other variant's cells against this variant's matching cell (`compare --baseline`).
    case variant(String)
    /// Each variant's cells of other ranks against its own cell of this rank, the other axes
    /// equal (`compare --baseline-rank`): the papers' question whether the rank matters.
    case rank(Int)

    var isRank: Bool {
        if case .rank = self { return true }
        return false
    }

    /// The `baseline` column of the files: `lora`, or `rank=8`.
    public var label: String {
        switch self {
        case let .variant(name): return name
        case let .rank(rank): return "rank=\(rank)"
        }
    }
}

/// The cells of a results folder (every axis but the seed; with a selection, each cell's chosen
/// learning rate only, named in `selected_learning_rate`), each with the baseline cells it is
/// paired with. Runs of two cells with the same seed see the same data order and are scored on
/// the same dev examples, so whatever the question, it pairs them seed by seed.
///
/// Against a variant, a cell meets the baseline's cells that agree with it on the axes along
/// which the baseline's own cells differ (e.g. rank), where the cell has a value; an axis the
/// baseline does not vary (head_only's rank 0, LoRA's α rule against VeRA's n/a) does not
/// separate them. Against a rank, a cell of another rank meets its variant's cell of that rank
/// that agrees with it on every other axis. A chosen learning rate never has to match.
struct CellPairing {
    /// One compared cell and the baseline cells it meets.
    struct Entry {
        var cell: [String]
        var runs: [ExperimentResults.Run]
        /// Each matching baseline cell: its runs, and its axes but the variant as `axis=value; …`.
        var baselines: [(runs: [ExperimentResults.Run], description: String)]
    }

    /// The cell axes, the variant first (with a selection, `selected_learning_rate` last).
    var axisNames: [String]
    /// The compared cells in table order.
    var entries: [Entry]

    init(results: ExperimentResults, selection: SelectedSettings?, baseline: ComparisonBaseline) throws {
        var axisNames = results.axisNames.filter { $0 != "seed" }
        var cellOf: (ExperimentResults.Run) -> [String]? = { run in axisNames.map { run.axes[$0] ?? "" } }
        if let selection {
            axisNames = axisNames.filter { $0 != "learning_rate" } + ["selected_learning_rate"]
            let named = axisNames
            cellOf = { run in
                guard selection.isSelected(run) else { return nil }
                return named.dropLast().map { run.axes[$0] ?? "" } + [run.axes["learning_rate"] ?? ""]
            }
        }
        var order: [[String]] = []
        var runsByCell: [[String]: [ExperimentResults.Run]] = [:]
        for run in results.runs {
            guard let cell = cellOf(run) else { continue }
            if runsByCell[cell] == nil { order.append(cell) }
            runsByCell[cell, default: []].append(run)
        }
        let variantIndex = axisNames.firstIndex(of: "variant")!, rankIndex = axisNames.firstIndex(of: "rank")!
        let chosenRate = axisNames.firstIndex(of: "selected_learning_rate")

        let isBaseline: ([String]) -> Bool
        let matches: ([String], [String]) -> Bool
        switch baseline {
        case let .variant(name):
            let variants = Self.unique(results.runs.map(\.variant))
            guard variants.contains(name) else { throw ComparisonError.unknownBaseline(name, available: variants) }
            isBaseline = { $0[variantIndex] == name }
            let baselineCells = order.filter(isBaseline)
            // The axes that tell the baseline's cells apart.
            let matchingAxes = axisNames.indices.filter { index in
                index != variantIndex && index != chosenRate && Set(baselineCells.map { $0[index] }).count > 1
            }
            matches = { cell, base in matchingAxes.allSatisfy { cell[$0] == base[$0] || cell[$0] == "n/a" } }
        case let .rank(rank):
            let ranks = Self.unique(results.runs.map { String($0.rank) })
            guard ranks.contains(String(rank)) else { throw ComparisonError.unknownBaselineRank(rank, available: ranks) }
            isBaseline = { $0[rankIndex] == String(rank) }
            matches = { cell, base in axisNames.indices.allSatisfy { $0 == rankIndex || $0 == chosenRate || cell[$0] == base[$0] } }
        }
        let baselineCells = order.filter(isBaseline)
        self.axisNames = axisNames
        entries = order.filter { !isBaseline($0) }.map { cell in
            Entry(cell: cell, runs: runsByCell[cell]!, baselines: baselineCells.filter { matches(cell, $0) }.map { base in
                (runsByCell[base]!, axisNames.indices.filter { $0 != variantIndex }.map { "\(axisNames[$0])=\(base[$0])" }.joined(separator: "; "))
            })
        }
    }

    static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }

    /// The summary.csv of `directory` (its bytes, for the SHA-256 the files record) and its runs.
    static func summary(of directory: String) throws -> (data: Data, results: ExperimentResults) {
        let layout = ResultsLayout(root: directory)
        guard let data = FileManager.default.contents(atPath: layout.summaryFile) else {
            throw ResultsError.missingFile(path: layout.summaryFile, producer: ExperimentResults.producer)
        }
        return (data, try ExperimentResults(name: directory, summary: CSVTable(data: data, path: layout.summaryFile)))
    }
}

/// Writes one of `lorabench compare`'s files into a results folder, atomically (a temporary file
/// renamed into place). A file already at `path` is replaced only when lorabench wrote it, which
/// its header tells (it ends in `fixedColumns`): a file of someone else's is never written over.
enum ComparisonOutput {
    /// Throws unless `path` is free or holds a file lorabench wrote with these columns.
    static func checkReplaceable(_ path: String, fixedColumns: [String]) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let header = try? CSVTable(data: data, path: path).header
        guard let header, header.count >= fixedColumns.count, Array(header.suffix(fixedColumns.count)) == fixedColumns else {
            throw ComparisonError.foreignFile(path: path)
        }
    }

    static func write(_ text: String, to path: String, fixedColumns: [String]) throws {
        try checkReplaceable(path, fixedColumns: fixedColumns)
        try AtomicFile.write(text, to: path)
    }
}
