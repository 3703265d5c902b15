import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults

/// Why a comparison cannot be made from a results folder.
public enum ComparisonError: Error, Equatable, CustomStringConvertible {
    case unknownBaseline(String, available: [String])
    case noPredictions(path: String)
    case mismatchedExamples(path: String, other: String)
    /// Two runs' predictions.csv hold different numbers of examples, though every run is scored on the same eval split.
    case mismatchedExampleCounts(path: String, count: Int, other: String, otherCount: Int)
    /// A predictions.csv that disagrees with what the run recorded of itself.
    case inconsistentPredictions(path: String, reason: String)
    case resamplesOutOfRange(Int)

    public var description: String {
        switch self {
        case let .unknownBaseline(baseline, available):
            return "no variant '\(baseline)' in the results; variants: \(available.joined(separator: ", "))"
        case let .noPredictions(path):
            return "\(path): the results hold no predictions.csv of a completed run: paired tests need a classification task "
                + "(sst2, rte, cola) run by a LoRABench that saves predictions"
        case let .mismatchedExamples(path, other):
            return "\(path) and \(other) are not predictions on the same examples (indices or labels differ)"
        case let .mismatchedExampleCounts(path, count, other, otherCount):
            return "\(path) holds \(count) predictions but \(other) holds \(otherCount): every run of an experiment is scored on the "
                + "same eval examples, so one of the files is truncated or from another data set"
        case let .inconsistentPredictions(path, reason):
            return "\(path): \(reason)"
        case let .resamplesOutOfRange(resamples):
            return "--resamples \(resamples) is outside the allowed range \(PairedComparison.allowedResamples.lowerBound)..."
                + "\(PairedComparison.allowedResamples.upperBound) (at least 100 for a 95 % percentile interval; the upper bound "
                + "keeps the bootstrap's memory and time bounded)"
        }
    }
}

/// `lorabench compare RESULTS --baseline VARIANT`: each cell of every other variant against the
/// baseline variant's matching cell, on the dev predictions of the runs of the same seeds.
///
/// Runs of two variants with the same seed see the same data order, and both are scored on the
/// same dev examples, so their differences pair twice over. For each pair of cells:
///
/// - the difference in accuracy, the mean over the paired seeds of acc(variant) − acc(baseline);
/// - a paired bootstrap 95 % interval over dev examples (Efron & Tibshirani 1993, ch. 13,
///   percentile interval): examples are resampled with replacement, the same draw for every
///   seed, and the mean-over-seeds difference recomputed; this is the uncertainty from the
///   finite dev set;
/// - with n ≥ 3 paired seeds, a Student-t 95 % interval over the per-seed differences: the
///   uncertainty from training (initialisation, data order);
/// - McNemar's test (McNemar 1947) on the discordant examples summed over seeds: b = baseline
///   alone right, c = variant alone right. Summing the seeds' 2×2 tables is the
///   Cochran–Mantel–Haenszel test stratified by seed, which for matched pairs reduces to McNemar
///   on the summed counts (so each seed is a stratum, not pooled into one population of runs);
///   exact binomial below 25 discordant examples, χ² with continuity correction above;
/// - Holm's (1979) correction over all comparisons of the table: `significant` means the
///   Holm-adjusted McNemar p-value is below 0.05.
///
/// Cells match on the axes along which the baseline's own cells differ (e.g. rank), where the
/// compared cell has a value; an axis the baseline does not vary (head_only's rank 0, LoRA's α
/// rule against VeRA's n/a) does not separate them. With a selection, each cell is its selected
/// learning rate, which need not be the baseline's; without one, learning rates match like any
/// other axis. Seeds where either run did not complete are left out and counted.
public struct PairedComparison {
    public static let alpha = 0.05
    public static let defaultResamples = 2000
    /// Every resample keeps its mean in memory; a million of them take 8 MB and a few seconds per
    /// comparison, far past where a percentile interval stops moving.
    public static let allowedResamples = 100...1_000_000
    public static let defaultBootstrapSeed: UInt64 = 0

    public struct Row {
        /// The compared cell's values of `axisNames`.
        public var cell: [String]
        /// The baseline cell, as `axis=value` pairs of its axes other than the variant.
        public var baselineCell: String
        public var pairedSeeds: [String]
        /// Seeds of either cell without a completed run (with predictions) on both sides.
        public var excludedSeeds: [String]
        public var examples: Int
        public var accuracy: Double
        public var baselineAccuracy: Double
        public var difference: Double { accuracy - baselineAccuracy }
        public var exampleInterval: ClosedRange<Double>
        /// nil with fewer than 3 paired seeds.
        public var seedInterval: ClosedRange<Double>?
        public var mcnemar: McNemarTest
        public var holmP: Double
        public var significant: Bool { holmP < PairedComparison.alpha }
    }

    /// The cell axes, the variant first (with a selection, `selected_learning_rate` last).
    public var axisNames: [String]
    public var baseline: String
    public var resamples: Int
    public var bootstrapSeed: UInt64
    /// The SHA-256 of the summary.csv the comparison was computed from: compare.csv records it in
    /// every row, so that a report made after runs were added or redone knows the file is stale.
    public var summarySHA256: String
    public var rows: [Row]
    /// Cells of other variants that no baseline cell matches.
    public var unmatched: [[String]]

    /// `labelCount` is the task's number of classes (`ResultsLayout.taskLabelCount()` reads it
    /// from the results' manifest copy): every label and prediction must lie below it. Without
    /// it (a folder put together by hand) the files are checked against each other only.
    public static func compute(resultsDirectory directory: String, baseline: String, labelCount: Int? = nil,
                               resamples: Int = defaultResamples, bootstrapSeed: UInt64 = defaultBootstrapSeed) throws -> PairedComparison {
        guard allowedResamples.contains(resamples) else { throw ComparisonError.resamplesOutOfRange(resamples) }
        let layout = ResultsLayout(root: directory)
        guard let summaryData = FileManager.default.contents(atPath: layout.summaryFile) else {
            throw ResultsError.missingFile(path: layout.summaryFile, producer: ExperimentResults.producer)
        }
        let summary = try CSVTable(data: summaryData, path: layout.summaryFile)
        let results = try ExperimentResults(name: directory, summary: summary)
        let selection = try SelectedSettings.load(resultsDirectory: directory)
        let variants = unique(results.runs.map(\.variant))
        guard variants.contains(baseline) else { throw ComparisonError.unknownBaseline(baseline, available: variants) }

        // Cells: every axis but the seed; with a selection, the chosen learning rate of each.
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
        let variantIndex = axisNames.firstIndex(of: "variant")!
        let baselineCells = order.filter { $0[variantIndex] == baseline }
        // The axes that tell the baseline's cells apart; a chosen learning rate never matches.
        let matchingAxes = axisNames.indices.filter { index in
            index != variantIndex && axisNames[index] != "selected_learning_rate" && Set(baselineCells.map { $0[index] }).count > 1
        }

        var predictionsCache: [String: [Prediction]] = [:]
        // The first file read: every run is scored on the same eval split, so every file must hold as many predictions.
        var firstFile: (path: String, count: Int)?
        func predictions(_ run: ExperimentResults.Run) throws -> [Prediction]? {
            let path = layout.predictionsFile(run.runID)
            if let cached = predictionsCache[path] { return cached }
            guard run.status == .completed, FileManager.default.fileExists(atPath: path) else { return nil }
            let read = try PredictionsCSV.read(path, labelCount: labelCount)
            if let firstFile, firstFile.count != read.count {
                throw ComparisonError.mismatchedExampleCounts(path: path, count: read.count, other: firstFile.path, otherCount: firstFile.count)
            }
            firstFile = firstFile ?? (path, read.count)
            try checkAccuracy(of: read, path: path, run: run, layout: layout)
            predictionsCache[path] = read
            return read
        }

        var rows: [Row] = []
        var unmatched: [[String]] = []
        for cell in order where cell[variantIndex] != baseline {
            let matches = baselineCells.filter { base in matchingAxes.allSatisfy { cell[$0] == base[$0] || cell[$0] == "n/a" } }
            let rowsBefore = rows.count
            for base in matches {
                let described = axisNames.indices.filter { $0 != variantIndex }.map { "\(axisNames[$0])=\(base[$0])" }.joined(separator: "; ")
                if let row = try compare(runsByCell[cell]!, against: runsByCell[base]!, cell: cell, baselineCell: described,
                                         predictions: predictions, layout: layout, resamples: resamples, seed: bootstrapSeed) {
                    rows.append(row)
                }
            }
            if rows.count == rowsBefore { unmatched.append(cell) }
        }
        if rows.isEmpty, !results.runs.contains(where: { FileManager.default.fileExists(atPath: layout.predictionsFile($0.runID)) }) {
            throw ComparisonError.noPredictions(path: layout.runsDirectory)
        }
        let adjusted = holmAdjusted(rows.map(\.mcnemar.pValue))
        for index in rows.indices { rows[index].holmP = adjusted[index] }
        return PairedComparison(axisNames: axisNames, baseline: baseline, resamples: resamples, bootstrapSeed: bootstrapSeed,
                                summarySHA256: SHA256Digest.hex(of: summaryData), rows: rows, unmatched: unmatched)
    }

    /// The file's accuracy must be the one the run recorded (outcome.json, or summary.csv where a
    /// folder has no outcome.json): otherwise the file is not the run's final predictions.
    private static func checkAccuracy(of predictions: [Prediction], path: String, run: ExperimentResults.Run,
                                      layout: ResultsLayout) throws {
        let outcomePath = layout.outcomeFile(run.runID)
        let recorded: (accuracy: Double, source: String)?
        if let outcome = try layout.outcome(of: run.runID) {
            recorded = outcome.finalEval["accuracy"].map { ($0, "\(outcomePath) records final_eval accuracy") }
        } else {
            recorded = run.evalMetrics["final_eval_accuracy"].map { ($0, "\(layout.summaryFile) records final_eval_accuracy") }
        }
        guard let recorded, !predictions.isEmpty else { return }
        let correct = predictions.filter { $0.predicted == $0.label }.count
        let accuracy = Double(correct) / Double(predictions.count)
        // Both are a count over the same examples: anything but rounding is a different count.
        guard abs(accuracy - recorded.accuracy) < 0.5 / Double(predictions.count) else {
            throw ComparisonError.inconsistentPredictions(
                path: path, reason: "its predictions are \(correct) of \(predictions.count) right (accuracy \(formatNumber(accuracy))), "
                    + "but \(recorded.source) \(formatNumber(recorded.accuracy)); the file is not this run's final predictions")
        }
    }

    /// One compared cell against one baseline cell; nil when no seed pairs.
    private static func compare(_ runs: [ExperimentResults.Run], against baselineRuns: [ExperimentResults.Run], cell: [String],
                                baselineCell: String, predictions: (ExperimentResults.Run) throws -> [Prediction]?,
                                layout: ResultsLayout, resamples: Int, seed: UInt64) throws -> Row? {
        let seeds = unique((runs + baselineRuns).map(\.seed))
        var paired: [String] = [], excluded: [String] = []
        var perSeedDifferences: [Double] = []
        var accuracySum = 0.0, baselineAccuracySum = 0.0
        var exampleDifferences: [Double] = []
        var baselineOnly = 0, comparedOnly = 0
        for seedValue in seeds {
            guard let run = runs.first(where: { $0.seed == seedValue }), let base = baselineRuns.first(where: { $0.seed == seedValue }),
                  let compared = try predictions(run), let reference = try predictions(base) else {
                excluded.append(seedValue)
                continue
            }
            guard compared.count == reference.count, zip(compared, reference).allSatisfy({ $0.index == $1.index && $0.label == $1.label }),
                  !compared.isEmpty else {
                throw ComparisonError.mismatchedExamples(path: layout.predictionsFile(run.runID), other: layout.predictionsFile(base.runID))
            }
            if exampleDifferences.isEmpty { exampleDifferences = [Double](repeating: 0, count: compared.count) }
            guard exampleDifferences.count == compared.count else {
                throw ComparisonError.mismatchedExamples(path: layout.predictionsFile(run.runID), other: layout.predictionsFile(base.runID))
            }
            var correct = 0, baselineCorrect = 0
            for (index, (mine, theirs)) in zip(compared, reference).enumerated() {
                let right = mine.predicted == mine.label, baselineRight = theirs.predicted == theirs.label
                correct += right ? 1 : 0
                baselineCorrect += baselineRight ? 1 : 0
                if right != baselineRight {
                    if right { comparedOnly += 1 } else { baselineOnly += 1 }
                    exampleDifferences[index] += right ? 1 : -1
                }
            }
            let count = Double(compared.count)
            accuracySum += Double(correct) / count
            baselineAccuracySum += Double(baselineCorrect) / count
            perSeedDifferences.append(Double(correct - baselineCorrect) / count)
            paired.append(seedValue)
        }
        guard !paired.isEmpty else { return nil }
        let n = Double(paired.count)
        // Example i's difference averaged over seeds: the bootstrap's unit is the example.
        let perExample = exampleDifferences.map { $0 / n }
        return Row(cell: cell, baselineCell: baselineCell, pairedSeeds: paired, excludedSeeds: excluded, examples: perExample.count,
                   accuracy: accuracySum / n, baselineAccuracy: baselineAccuracySum / n,
                   exampleInterval: bootstrapIntervalOfMean(perExample, resamples: resamples, seed: seed),
                   seedInterval: paired.count >= 3 ? SampleSummary(perSeedDifferences)?.interval95 : nil,
                   mcnemar: McNemarTest(baselineOnlyCorrect: baselineOnly, comparedOnlyCorrect: comparedOnly), holmP: 1)
    }

    private static func unique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }

    // MARK: - Output

    public static let statisticColumns = [
        "baseline", "baseline_cell", "seeds", "seeds_excluded", "examples", "accuracy", "baseline_accuracy", "difference",
        "bootstrap_low", "bootstrap_high", "seed_t_low", "seed_t_high", "baseline_only_correct", "compared_only_correct",
        "mcnemar_method", "mcnemar_p", "holm_p", "significant", "bootstrap_resamples", "bootstrap_seed",
        "summary_sha256",
    ]

    public var header: [String] { axisNames + Self.statisticColumns }

    public var csvRows: [[String]] {
        rows.map { row in
            row.cell + [
                baseline, row.baselineCell, String(row.pairedSeeds.count), row.excludedSeeds.joined(separator: "+"), String(row.examples),
                formatNumber(row.accuracy), formatNumber(row.baselineAccuracy), formatNumber(row.difference),
                formatNumber(row.exampleInterval.lowerBound), formatNumber(row.exampleInterval.upperBound),
                row.seedInterval.map { formatNumber($0.lowerBound) } ?? "", row.seedInterval.map { formatNumber($0.upperBound) } ?? "",
                String(row.mcnemar.baselineOnlyCorrect), String(row.mcnemar.comparedOnlyCorrect), row.mcnemar.method.rawValue,
                formatNumber(row.mcnemar.pValue), formatNumber(row.holmP), String(row.significant), String(resamples), String(bootstrapSeed),
                summarySHA256,
            ]
        }
    }

    /// Why compare.csv (`table`) no longer describes the results whose summary.csv is
    /// `summary`, or nil while it does: every row must record that summary.csv's SHA-256.
    public static func staleness(of table: CSVTable, summary: Data) -> String? {
        guard let column = table.header.firstIndex(of: "summary_sha256") else {
            return "it does not record the summary.csv it was computed from (it was written by an earlier lorabench)"
        }
        let current = SHA256Digest.hex(of: summary)
        guard table.records.allSatisfy({ $0.fields[column] == current }) else {
            return "it was computed from an earlier summary.csv: runs have been added or redone since"
        }
        return nil
    }

    /// compare.csv.
    public var text: String { ([header] + csvRows).map(CSV.line).joined() }

    /// What `lorabench compare` prints: one line per comparison, differences in accuracy points.
    public var summaryText: String {
        let variantIndex = axisNames.firstIndex(of: "variant")!
        let shownAxes = axisNames.indices.filter { index in index != variantIndex && Set(rows.map { $0.cell[index] }).count > 1 }
        func points(_ value: Double) -> String { String(format: "%+.2f", 100 * value) }
        var lines = ["against \(baseline): accuracy difference in points, paired bootstrap 95 % interval over dev examples "
            + "(\(resamples) resamples, seed \(bootstrapSeed)), t interval over seeds (n ≥ 3), McNemar p, Holm-adjusted p "
            + "(* significant at 5 % over \(rows.count) comparisons)"]
        for row in rows {
            let name = ([row.cell[variantIndex]] + shownAxes.map { "\(axisNames[$0])=\(row.cell[$0])" }).joined(separator: " ")
            var line = "\(name) vs \(baseline)\(row.baselineCell.isEmpty ? "" : " (\(row.baselineCell))"): "
                + "\(points(row.difference)) [\(points(row.exampleInterval.lowerBound)), \(points(row.exampleInterval.upperBound))]"
            if let interval = row.seedInterval { line += ", seeds [\(points(interval.lowerBound)), \(points(interval.upperBound))]" }
            line += ", n=\(row.pairedSeeds.count)"
            if !row.excludedSeeds.isEmpty { line += " (\(row.excludedSeeds.count) seed(s) without a completed pair)" }
            line += String(format: ", p=%.3g, holm p=%.3g", row.mcnemar.pValue, row.holmP) + (row.significant ? " *" : "")
            lines.append(line)
        }
        if !unmatched.isEmpty { lines.append("\(unmatched.count) cell(s) have no completed runs paired with a \(baseline) cell") }
        return lines.joined(separator: "\n")
    }
}
