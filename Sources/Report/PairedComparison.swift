import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults

/// Why a comparison cannot be made from a results folder.
public enum ComparisonError: Error, Equatable, CustomStringConvertible {
    case unknownBaseline(String, available: [String])
    /// `--baseline-rank R` where no run has rank R.
    case unknownBaselineRank(Int, available: [String])
    case noPredictions(path: String)
    case mismatchedExamples(path: String, other: String)
    /// Two runs' predictions.csv hold different numbers of examples, though every run is scored on the same eval split.
    case mismatchedExampleCounts(path: String, count: Int, other: String, otherCount: Int)
    /// One run's predictions.csv holds classes and another's scores, though every run of an experiment is one task's.
    case mismatchedPredictionKinds(path: String, kind: GLUEMetric.Kind, other: String, otherKind: GLUEMetric.Kind)
    /// summary.csv records a metric that the predictions cannot give (a correlation of classes, an accuracy of scores).
    case metricOfAnotherKind(metric: GLUEMetric, path: String, kind: GLUEMetric.Kind)
    /// A regression's predictions, but summary.csv records no metric of scores to compare them by.
    case noMetricOfScores(path: String)
    /// A predictions.csv that disagrees with what the run recorded of itself.
    case inconsistentPredictions(path: String, reason: String)
    case resamplesOutOfRange(Int)
    /// A file where compare writes that lorabench did not write: never overwritten.
    case foreignFile(path: String)
    /// `--metric` names no eval metric of the task's, or one metrics.csv does not log.
    case unknownStepsMetric(String, available: [String])
    /// `--steps-to` is not a finite number.
    case targetNotFinite(Double)

    public var description: String {
        switch self {
        case let .unknownBaseline(baseline, available):
            return "no variant '\(baseline)' in the results; variants: \(available.joined(separator: ", "))"
        case let .unknownBaselineRank(rank, available):
            return "--baseline-rank: found \(rank), a rank no run of the results has; allowed: \(available.joined(separator: ", "))"
        case let .noPredictions(path):
            return "\(path): the results hold no predictions.csv of a completed run: paired tests need a task that saves its "
                + "predictions on the eval split (the GLUE tasks do), run by a LoRABench that saves them"
        case let .mismatchedExamples(path, other):
            return "\(path) and \(other) are not predictions on the same examples (indices or labels differ)"
        case let .mismatchedExampleCounts(path, count, other, otherCount):
            return "\(path) holds \(count) predictions but \(other) holds \(otherCount): every run of an experiment is scored on the "
                + "same eval examples, so one of the files is truncated or from another data set"
        case let .mismatchedPredictionKinds(path, kind, other, otherKind):
            return "\(path) holds \(Self.described(kind)) but \(other) holds \(Self.described(otherKind)): every run of an experiment "
                + "is one task's, so one of the files is from another task"
        case let .metricOfAnotherKind(metric, path, kind):
            return "summary.csv records final_eval_\(metric.name), a metric of \(Self.described(metric.kind)), but \(path) holds "
                + "\(Self.described(kind)): the predictions are not the ones the runs were scored on"
        case let .noMetricOfScores(path):
            return "\(path) holds predicted scores, but summary.csv records none of "
                + GLUEMetric.allCases.filter { $0.kind == .regression }.map { "final_eval_\($0.name)" }.joined(separator: ", ")
                + ": there is no metric to compare the runs by"
        case let .inconsistentPredictions(path, reason):
            return "\(path): \(reason)"
        case let .resamplesOutOfRange(resamples):
            return "--resamples \(resamples) is outside the allowed range \(PairedComparison.allowedResamples.lowerBound)..."
                + "\(PairedComparison.allowedResamples.upperBound) (at least 100 for a 95 % percentile interval; the upper bound "
                + "keeps the bootstrap's memory and time bounded)"
        case let .foreignFile(path):
            return "\(path) exists and is not a file lorabench compare wrote (its header is not one of them): lorabench never writes over "
                + "another file; move it away and run compare again"
        case let .unknownStepsMetric(metric, available):
            return "--metric: found '\(metric)'; allowed: " + (available.isEmpty ? "nothing: metrics.csv logs no eval metric"
                : available.joined(separator: ", ") + " (the eval metrics metrics.csv logs whose better direction the task gives)")
        case let .targetNotFinite(target):
            return "--steps-to: found \(target); allowed: a finite number, the value of the eval metric to reach"
        }
    }

    private static func described(_ kind: GLUEMetric.Kind) -> String {
        switch kind {
        case .classification: return "class labels"
        case .regression: return "predicted scores"
        }
    }
}

/// `lorabench compare RESULTS --baseline VARIANT`: each cell of every other variant against the
/// baseline variant's matching cell, on the dev predictions of the runs of the same seeds.
///
/// Runs of two variants with the same seed see the same data order, and both are scored on the
/// same dev examples, so their differences pair twice over. Every metric the predictions can give
/// is compared: accuracy always and, where summary.csv records them, mcc and f1 for a classifier's
/// predictions; pearson and spearman, where recorded, for a regression's (`GLUEMetric`: what
/// applies follows from the files and the recorded names, never from the task's name). For each
/// pair of cells and each metric:
///
/// - the difference, the mean over the paired seeds of metric(variant) − metric(baseline);
/// - a paired bootstrap 95 % interval over dev examples (Efron & Tibshirani 1993, ch. 13,
///   percentile interval) and its p-value (`bootstrapTests`): examples are resampled with
///   replacement, the same draw for every seed, both runs and every metric, and the
///   mean-over-seeds difference recomputed; this is the uncertainty from the finite dev set.
///   A metric undefined on some resample (a correlation of constant scores) has neither;
/// - with n ≥ 3 paired seeds, a Student-t 95 % interval over the per-seed differences: the
///   uncertainty from training (initialisation, data order);
/// - for accuracy, McNemar's test (McNemar 1947) on the discordant examples summed over seeds:
///   b = baseline alone right, c = variant alone right. Summing the seeds' 2×2 tables is the
///   Cochran–Mantel–Haenszel test stratified by seed, which for matched pairs reduces to McNemar
///   on the summed counts (so each seed is a stratum, not pooled into one population of runs);
///   exact binomial below 25 discordant examples, χ² with continuity correction above;
/// - Holm's (1979) correction over the comparisons of each metric: McNemar's p-values of the
///   accuracy comparisons, and the bootstrap's of each metric. `significant` means the row's
///   headline test, McNemar's for accuracy and the bootstrap's otherwise, is below 0.05 after it.
///
/// The baseline is a variant (`compare --baseline`) or a rank (`compare --baseline-rank`: each
/// variant's other ranks against that one), and cells pair as `CellPairing` says. With a
/// selection, each cell is its selected learning rate, which need not be the baseline's; without
/// one, learning rates match like any other axis. Seeds where either run did not complete are
/// left out and counted.
public struct PairedComparison {
    public static let alpha = 0.05
    public static let defaultResamples = 2000
    /// Every resample keeps each metric's difference in memory and scores every paired run on it:
    /// a million of them take 8 MB per metric and minutes per comparison of a thousand dev
    /// examples, far past where a percentile interval stops moving.
    public static let allowedResamples = 100...1_000_000
    public static let defaultBootstrapSeed: UInt64 = 0

    /// One compared cell against one baseline cell in one metric: a line of compare.csv.
    public struct MetricComparison {
        /// The compared cell's values of `axisNames`.
        public var cell: [String]
        /// The baseline cell, as `axis=value` pairs of its axes other than the variant.
        public var baselineCell: String
        public var pairedSeeds: [String]
        /// Seeds of either cell without a completed run (with predictions) on both sides.
        public var excludedSeeds: [String]
        public var examples: Int
        public var metric: GLUEMetric
        /// The metric on the whole eval split, averaged over the paired seeds; nan where a seed's is.
        public var value: Double
        public var baselineValue: Double
        public var difference: Double { value - baselineValue }
        /// The paired bootstrap 95 % interval of the difference; nil where the metric is undefined on some resample.
        public var exampleInterval: ClosedRange<Double>?
        /// The bootstrap's two-sided p-value of "no difference", and that p Holm-adjusted over the metric's comparisons.
        public var bootstrapP: Double?
        public var bootstrapHolmP: Double?
        /// nil with fewer than 3 paired seeds, or where a seed's difference is not finite.
        public var seedInterval: ClosedRange<Double>?
        /// Accuracy's McNemar test, and its p Holm-adjusted over the accuracy comparisons; nil for other metrics.
        public var mcnemar: McNemarTest?
        public var mcnemarHolmP: Double?
        /// The Holm-adjusted p of the row's headline test: McNemar's for accuracy, the bootstrap's otherwise.
        public var holmP: Double? { mcnemar == nil ? bootstrapHolmP : mcnemarHolmP }
        public var significant: Bool { (holmP ?? 1) < PairedComparison.alpha }
    }

    /// An accuracy comparison with its McNemar test (compare.csv's accuracy lines), for callers
    /// that read accuracy alone.
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

        /// nil for a comparison of another metric (accuracy always has an interval and a McNemar test).
        init?(_ comparison: MetricComparison) {
            guard let mcnemar = comparison.mcnemar, let holmP = comparison.mcnemarHolmP,
                  let exampleInterval = comparison.exampleInterval else { return nil }
            (cell, baselineCell, pairedSeeds, excludedSeeds, examples) =
                (comparison.cell, comparison.baselineCell, comparison.pairedSeeds, comparison.excludedSeeds, comparison.examples)
            (accuracy, baselineAccuracy, self.exampleInterval, seedInterval) =
                (comparison.value, comparison.baselineValue, exampleInterval, comparison.seedInterval)
            (self.mcnemar, self.holmP) = (mcnemar, holmP)
        }
    }

    /// The cell axes, the variant first (with a selection, `selected_learning_rate` last).
    public var axisNames: [String]
    /// The variant or rank every cell is compared with.
    public var against: ComparisonBaseline
    public var resamples: Int
    public var bootstrapSeed: UInt64
    /// The SHA-256 of the summary.csv the comparison was computed from: compare.csv records it in
    /// every row, so that a report made after runs were added or redone knows the file is stale.
    public var summarySHA256: String
    /// Every pair of cells in every metric, the pairs in table order and each pair's metrics in
    /// `GLUEMetric`'s order.
    public var comparisons: [MetricComparison]
    /// Cells of other variants that no baseline cell matches.
    public var unmatched: [[String]]

    /// The accuracy comparisons, with McNemar's test.
    public var rows: [Row] { comparisons.compactMap(Row.init) }

    /// `labelCount` is the task's number of classes (`ResultsLayout.taskLabelCount()` reads it
    /// from the results' manifest copy): every label and prediction must lie below it. Without
    /// it (a folder put together by hand) the files are checked against each other only.
    public static func compute(resultsDirectory directory: String, baseline: ComparisonBaseline, labelCount: Int? = nil,
                               resamples: Int = defaultResamples, bootstrapSeed: UInt64 = defaultBootstrapSeed) throws -> PairedComparison {
        guard allowedResamples.contains(resamples) else { throw ComparisonError.resamplesOutOfRange(resamples) }
        let layout = ResultsLayout(root: directory)
        let (summaryData, results) = try CellPairing.summary(of: directory)
        let pairing = try CellPairing(results: results, selection: try SelectedSettings.load(resultsDirectory: directory), baseline: baseline)

        // The metrics summary.csv records for the eval split, by name; `metrics(for:path:)` keeps those the files can give.
        let recorded = Set(results.finalMetricColumns.compactMap { column in
            column.hasPrefix("final_eval_") ? GLUEMetric(rawValue: String(column.dropFirst("final_eval_".count))) : nil
        })
        func metrics(for kind: GLUEMetric.Kind, path: String) throws -> [GLUEMetric] {
            if let foreign = GLUEMetric.allCases.first(where: { recorded.contains($0) && $0.kind != kind }) {
                throw ComparisonError.metricOfAnotherKind(metric: foreign, path: path, kind: kind)
            }
            switch kind {
            // Accuracy is compared whether or not summary.csv records it: McNemar's test needs nothing else.
            case .classification: return GLUEMetric.allCases.filter { $0 == .accuracy || ($0.kind == kind && recorded.contains($0)) }
            case .regression:
                let named = GLUEMetric.allCases.filter { recorded.contains($0) }
                guard !named.isEmpty else { throw ComparisonError.noMetricOfScores(path: path) }
                return named
            }
        }

        var predictionsCache: [String: RunPredictions] = [:]
        // The first file read: every run is one task's, scored on the same eval split, so every file must be of its kind and length.
        var firstFile: (path: String, predictions: RunPredictions, metrics: [GLUEMetric])?
        func predictions(_ run: ExperimentResults.Run) throws -> RunPredictions? {
            let path = layout.predictionsFile(run.runID)
            if let cached = predictionsCache[path] { return cached }
            guard run.status == .completed, FileManager.default.fileExists(atPath: path) else { return nil }
            let read = try RunPredictions.read(path, labelCount: labelCount)
            if let firstFile, firstFile.predictions.kind != read.kind {
                throw ComparisonError.mismatchedPredictionKinds(path: path, kind: read.kind, other: firstFile.path, otherKind: firstFile.predictions.kind)
            }
            if let firstFile, firstFile.predictions.count != read.count {
                throw ComparisonError.mismatchedExampleCounts(path: path, count: read.count, other: firstFile.path,
                                                              otherCount: firstFile.predictions.count)
            }
            let metrics = try firstFile?.metrics ?? metrics(for: read.kind, path: path)
            firstFile = firstFile ?? (path, read, metrics)
            try checkRecordedMetrics(metrics, of: read, path: path, run: run, layout: layout)
            predictionsCache[path] = read
            return read
        }

        var comparisons: [MetricComparison] = []
        var unmatched: [[String]] = []
        for entry in pairing.entries {
            let comparisonsBefore = comparisons.count
            for base in entry.baselines {
                comparisons += try compare(entry.runs, against: base.runs, cell: entry.cell, baselineCell: base.description,
                                           predictions: predictions, metrics: { firstFile?.metrics ?? [] }, layout: layout,
                                           resamples: resamples, seed: bootstrapSeed)
            }
            if comparisons.count == comparisonsBefore { unmatched.append(entry.cell) }
        }
        if comparisons.isEmpty, !results.runs.contains(where: { FileManager.default.fileExists(atPath: layout.predictionsFile($0.runID)) }) {
            throw ComparisonError.noPredictions(path: layout.runsDirectory)
        }
        let mcnemarTested = comparisons.indices.compactMap { index in comparisons[index].mcnemar.map { (index, $0.pValue) } }
        for (index, adjusted) in zip(mcnemarTested.map(\.0), holmAdjusted(mcnemarTested.map(\.1))) { comparisons[index].mcnemarHolmP = adjusted }
        for metric in GLUEMetric.allCases {
            let tested = comparisons.indices.compactMap { index in
                comparisons[index].metric == metric ? comparisons[index].bootstrapP.map { (index, $0) } : nil
            }
            for (index, adjusted) in zip(tested.map(\.0), holmAdjusted(tested.map(\.1))) { comparisons[index].bootstrapHolmP = adjusted }
        }
        return PairedComparison(axisNames: pairing.axisNames, against: baseline, resamples: resamples, bootstrapSeed: bootstrapSeed,
                                summarySHA256: SHA256Digest.hex(of: summaryData), comparisons: comparisons, unmatched: unmatched)
    }

    /// Each metric of the file must be the one the run recorded (outcome.json, or summary.csv
    /// where a folder has no outcome.json): otherwise the file is not the run's final predictions.
    private static func checkRecordedMetrics(_ metrics: [GLUEMetric], of predictions: RunPredictions, path: String,
                                             run: ExperimentResults.Run, layout: ResultsLayout) throws {
        guard predictions.count > 0 else { return }
        let outcomePath = layout.outcomeFile(run.runID)
        let outcome = try layout.outcome(of: run.runID)
        let values = Scorer(predictions).values(metrics, multiplicities: nil)
        for (metric, value) in zip(metrics, values) {
            let recorded: (value: Double, source: String)?
            if let outcome {
                recorded = outcome.finalEval[metric.name].map { ($0, "\(outcomePath) records final_eval \(metric.name)") }
            } else {
                recorded = run.evalMetrics["final_eval_\(metric.name)"].map { ($0, "\(layout.summaryFile) records final_eval_\(metric.name)") }
            }
            guard let recorded else { continue }
            if metric == .accuracy {
                // Both are a count over the same examples: anything but rounding is a different count.
                guard abs(value - recorded.value) >= 0.5 / Double(predictions.count) else { continue }
                let correct = Int((value * Double(predictions.count)).rounded())
                throw ComparisonError.inconsistentPredictions(
                    path: path, reason: "its predictions are \(correct) of \(predictions.count) right (accuracy \(formatNumber(value))), "
                        + "but \(recorded.source) \(formatNumber(recorded.value)); the file is not this run's final predictions")
            }
            // Another file differs in the second or third digit. The same numbers summed in another order (batches
            // sorted by length) differ by 1e-16, and summary.csv writes a value that is exactly a Float in Float's
            // shortest form (`formatMetric`), up to 1e-7 off; nan matches nan.
            let agrees = (value.isNaN && recorded.value.isNaN) || abs(value - recorded.value) <= 1e-6
            guard !agrees else { continue }
            throw ComparisonError.inconsistentPredictions(
                path: path, reason: "its predictions give \(metric.name) \(formatNumber(value)), but \(recorded.source) "
                    + "\(formatNumber(recorded.value)); the file is not this run's final predictions")
        }
    }

    /// One compared cell against one baseline cell, a comparison per metric; none when no seed pairs.
    private static func compare(_ runs: [ExperimentResults.Run], against baselineRuns: [ExperimentResults.Run], cell: [String],
                                baselineCell: String, predictions: (ExperimentResults.Run) throws -> RunPredictions?,
                                metrics: () -> [GLUEMetric], layout: ResultsLayout, resamples: Int, seed: UInt64) throws -> [MetricComparison] {
        let seeds = CellPairing.unique((runs + baselineRuns).map(\.seed))
        var paired: [String] = [], excluded: [String] = []
        var pairs: [(compared: RunPredictions, reference: RunPredictions)] = []
        for seedValue in seeds {
            guard let run = runs.first(where: { $0.seed == seedValue }), let base = baselineRuns.first(where: { $0.seed == seedValue }),
                  let compared = try predictions(run), let reference = try predictions(base) else {
                excluded.append(seedValue)
                continue
            }
            guard compared.count > 0, compared.isOnTheSameExamples(as: reference) else {
                throw ComparisonError.mismatchedExamples(path: layout.predictionsFile(run.runID), other: layout.predictionsFile(base.runID))
            }
            pairs.append((compared, reference))
            paired.append(seedValue)
        }
        guard let examples = pairs.first?.compared.count else { return [] }
        let metrics = metrics()
        let scorers = pairs.map { (compared: Scorer($0.compared), reference: Scorer($0.reference)) }
        let values = scorers.map { $0.compared.values(metrics, multiplicities: nil) }
        let baselineValues = scorers.map { $0.reference.values(metrics, multiplicities: nil) }
        let n = Double(pairs.count)
        let tests = bootstrapTests(examples: examples, resamples: resamples, seed: seed) { multiplicities in
            var differences = [Double](repeating: 0, count: metrics.count)
            for (compared, reference) in scorers {
                let (mine, theirs) = (compared.values(metrics, multiplicities: multiplicities), reference.values(metrics, multiplicities: multiplicities))
                for index in metrics.indices { differences[index] += mine[index] - theirs[index] }
            }
            return differences.map { $0 / n }
        }
        return metrics.enumerated().map { index, metric in
            let perSeedDifferences = zip(values, baselineValues).map { $0[index] - $1[index] }
            return MetricComparison(
                cell: cell, baselineCell: baselineCell, pairedSeeds: paired, excludedSeeds: excluded, examples: examples, metric: metric,
                value: values.reduce(0) { $0 + $1[index] } / n, baselineValue: baselineValues.reduce(0) { $0 + $1[index] } / n,
                exampleInterval: tests[index].interval, bootstrapP: tests[index].pValue, bootstrapHolmP: nil,
                seedInterval: pairs.count >= 3 && perSeedDifferences.allSatisfy(\.isFinite) ? SampleSummary(perSeedDifferences)?.interval95 : nil,
                mcnemar: metric == .accuracy ? mcnemarTest(pairs) : nil, mcnemarHolmP: nil)
        }
    }

    /// McNemar's test on the discordant examples of a classifier's paired runs, summed over seeds.
    private static func mcnemarTest(_ pairs: [(compared: RunPredictions, reference: RunPredictions)]) -> McNemarTest {
        var baselineOnly = 0, comparedOnly = 0
        for pair in pairs {
            guard case let (.classes(compared), .classes(reference)) = (pair.compared, pair.reference) else { continue }
            for (mine, theirs) in zip(compared, reference) {
                let right = mine.predicted == mine.label, baselineRight = theirs.predicted == theirs.label
                if right && !baselineRight { comparedOnly += 1 }
                if baselineRight && !right { baselineOnly += 1 }
            }
        }
        return McNemarTest(baselineOnlyCorrect: baselineOnly, comparedOnlyCorrect: comparedOnly)
    }

    // MARK: - Output

    /// compare.csv's columns after the cell axes. `metric`, `value` and `baseline_value` name the
    /// line's metric and its means; `accuracy`, `baseline_accuracy` and the McNemar columns are
    /// filled on accuracy lines only; `difference`, the intervals and the bootstrap's p-values are
    /// the line's metric's; `holm_p` and `significant` are the headline test's (McNemar's for
    /// accuracy, the bootstrap's otherwise).
    public static let statisticColumns = [
        "baseline", "baseline_cell", "seeds", "seeds_excluded", "examples", "metric", "value", "baseline_value", "accuracy",
        "baseline_accuracy", "difference", "bootstrap_low", "bootstrap_high", "bootstrap_p", "bootstrap_holm_p", "seed_t_low",
        "seed_t_high", "baseline_only_correct", "compared_only_correct", "mcnemar_method", "mcnemar_p", "holm_p", "significant",
        "bootstrap_resamples", "bootstrap_seed", "summary_sha256",
    ]

    public var header: [String] { axisNames + Self.statisticColumns }

    /// The `baseline` column: the variant, or `rank=R`.
    public var baseline: String { against.label }

    /// Writes the table into the results folder, atomically, and returns its path: compare.csv
    /// against a variant (what `lorabench report` shows), compare-rank.csv against a rank. A
    /// compare-rank.csv lorabench did not write is never written over.
    @discardableResult
    public func write(resultsDirectory directory: String) throws -> String {
        let layout = ResultsLayout(root: directory)
        switch against {
        case .variant:
            try AtomicFile.write(text, to: layout.compareFile)
            return layout.compareFile
        case .rank:
            try ComparisonOutput.write(text, to: layout.rankComparisonFile, fixedColumns: Self.statisticColumns)
            return layout.rankComparisonFile
        }
    }

    public var csvRows: [[String]] {
        comparisons.map { row in
            let isAccuracy = row.metric == .accuracy
            return row.cell + [
                baseline, row.baselineCell, String(row.pairedSeeds.count), row.excludedSeeds.joined(separator: "+"), String(row.examples),
                row.metric.name, formatNumber(row.value), formatNumber(row.baselineValue),
                isAccuracy ? formatNumber(row.value) : "", isAccuracy ? formatNumber(row.baselineValue) : "", formatNumber(row.difference),
                row.exampleInterval.map { formatNumber($0.lowerBound) } ?? "", row.exampleInterval.map { formatNumber($0.upperBound) } ?? "",
                row.bootstrapP.map(formatNumber) ?? "", row.bootstrapHolmP.map(formatNumber) ?? "",
                row.seedInterval.map { formatNumber($0.lowerBound) } ?? "", row.seedInterval.map { formatNumber($0.upperBound) } ?? "",
                row.mcnemar.map { String($0.baselineOnlyCorrect) } ?? "", row.mcnemar.map { String($0.comparedOnlyCorrect) } ?? "",
                row.mcnemar?.method.rawValue ?? "", row.mcnemar.map { formatNumber($0.pValue) } ?? "",
                row.holmP.map(formatNumber) ?? "", String(row.significant), String(resamples), String(bootstrapSeed), summarySHA256,
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

    /// What `lorabench compare` prints: one line per comparison, differences in points (the
    /// metric × 100, as GLUE tables print Matthews and Pearson correlations too).
    public var summaryText: String {
        let variantIndex = axisNames.firstIndex(of: "variant")!
        // Against a rank, each line names its rank even where every compared cell has the same one.
        let shownAxes = axisNames.indices.filter { index in
            index != variantIndex && (Set(comparisons.map { $0.cell[index] }).count > 1 || (against.isRank && axisNames[index] == "rank"))
        }
        func points(_ value: Double) -> String { String(format: "%+.2f", 100 * value) }
        func probability(_ value: Double?) -> String { value.map { String(format: "%.3g", $0) } ?? "none" }
        var metrics: [GLUEMetric] = []
        for comparison in comparisons where !metrics.contains(comparison.metric) { metrics.append(comparison.metric) }
        let others = metrics.filter { $0 != .accuracy }.map(\.name).joined(separator: ", ")
        let tests = !metrics.contains(.accuracy) ? "paired bootstrap p" : others.isEmpty ? "McNemar p" : "p (McNemar for accuracy, paired bootstrap for \(others))"
        let comparisonsPerMetric = metrics.isEmpty ? 0 : comparisons.count / metrics.count
        var lines = ["against \(baseline): \(metrics.map(\.name).joined(separator: ", ")) difference\(metrics.count > 1 ? "s" : "") in points, "
            + "paired bootstrap 95 % interval over dev examples (\(resamples) resamples, seed \(bootstrapSeed)), t interval over seeds "
            + "(n ≥ 3), \(tests), Holm-adjusted p (* significant at 5 % over \(comparisonsPerMetric) comparisons"
            + (metrics.count > 1 ? " of each metric)" : ")")]
        for row in comparisons {
            let name = ([row.cell[variantIndex]] + shownAxes.map { "\(axisNames[$0])=\(row.cell[$0])" }).joined(separator: " ")
            var line = "\(name) vs \(baseline)\(row.baselineCell.isEmpty ? "" : " (\(row.baselineCell))") \(row.metric.name): \(points(row.difference))"
            if let interval = row.exampleInterval {
                line += " [\(points(interval.lowerBound)), \(points(interval.upperBound))]"
            } else {
                line += " (no bootstrap interval: \(row.metric.name) is undefined on some resample)"
            }
            if let interval = row.seedInterval { line += ", seeds [\(points(interval.lowerBound)), \(points(interval.upperBound))]" }
            line += ", n=\(row.pairedSeeds.count)"
            if !row.excludedSeeds.isEmpty { line += " (\(row.excludedSeeds.count) seed(s) without a completed pair)" }
            line += ", p=\(probability(row.mcnemar?.pValue ?? row.bootstrapP)), holm p=\(probability(row.holmP))" + (row.significant ? " *" : "")
            lines.append(line)
        }
        if !unmatched.isEmpty { lines.append("\(unmatched.count) cell(s) have no completed runs paired with a \(baseline) cell") }
        return lines.joined(separator: "\n")
    }
}

/// A run's predictions, ready to be scored on the whole split and on every resample.
private enum Scorer {
    case classes(ClassPredictions)
    case scores(ScorePredictions)

    init(_ predictions: RunPredictions) {
        switch predictions {
        case let .classes(predictions): self = .classes(ClassPredictions(labels: predictions.map(\.label), predicted: predictions.map(\.predicted)))
        case let .scores(predictions): self = .scores(ScorePredictions(targets: predictions.map(\.score), predicted: predictions.map(\.predicted)))
        }
    }

    func values(_ metrics: [GLUEMetric], multiplicities: [Int]?) -> [Double] {
        switch self {
        case let .classes(predictions): return predictions.values(metrics, multiplicities: multiplicities)
        case let .scores(predictions): return predictions.values(metrics, multiplicities: multiplicities)
        }
    }
}

private extension RunPredictions {
    /// The same examples in the same order, with the same gold labels or scores.
    func isOnTheSameExamples(as other: RunPredictions) -> Bool {
        switch (self, other) {
        case let (.classes(mine), .classes(theirs)):
            return mine.count == theirs.count && zip(mine, theirs).allSatisfy { $0.index == $1.index && $0.label == $1.label }
        case let (.scores(mine), .scores(theirs)):
            return mine.count == theirs.count && zip(mine, theirs).allSatisfy { $0.index == $1.index && $0.score == $1.score }
        default:
            return false
        }
    }
}
