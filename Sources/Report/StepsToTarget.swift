import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults

/// `lorabench compare RESULTS --steps-to X`: how many optimizer steps each run took for its dev
/// (eval) metric to reach X, the first evaluation step at which it did (metrics.csv), and for
/// each pair of cells (against a variant or a rank, paired as `CellPairing` says) the paired
/// difference in those steps over seeds: the speed-up LoRA+ claims, as a test.
///
/// A run that never reached X is censored: all its log says is that it needed more steps than its
/// last evaluation. It is reported as such and never dropped:
///
/// - a pair where both runs reached X has a difference in steps; the mean of those differences
///   and, with n ≥ 3 such pairs, its Student-t 95 % interval are over them alone (conditional on
///   both reaching X, the only pairs with a number), and the pairs where one or neither reached X
///   are counted beside it;
/// - the sign test (Dixon & Mood 1946) counts every pair whose sign is known: both reached X, or
///   one reached X at a step by which the other, evaluated at least that long, had not (the one
///   that reached is then the faster, whatever the other's true number). Equal steps are ties and
///   drop out, as the test prescribes; pairs where neither reached X, or where the censored run's
///   last evaluation comes before the other reached X, have no known sign and are counted. The
///   p-value is the exact two-sided binomial one, min(1, 2·P(K ≤ min(faster, slower))) for
///   K ~ Binomial(faster + slower, ½); none when no pair has a sign. Holm's (1979) correction runs
///   over the table's sign tests.
///
/// The sign test rather than Wilcoxon's signed-rank test: a censored pair has a sign but no size,
/// which only the sign test can use, and with a few seeds it assumes nothing of the differences.
/// A failed run (an error, not a result) is left out and its seed counted as excluded; a diverged
/// one keeps the evaluations it made.
public struct StepsToTarget {
    /// steps-to-runs.csv's columns after the run's axes (`run_id` and summary.csv's axis columns).
    public static let runColumns = ["status", "metric", "better", "target", "steps_to_target", "censored_after_step"]
    /// steps-to.csv's columns after the cell axes.
    public static let pairColumns = [
        "baseline", "baseline_cell", "metric", "better", "target", "seeds", "seeds_excluded", "both_reached", "only_compared_reached",
        "only_baseline_reached", "neither_reached", "steps", "baseline_steps", "difference", "t_low", "t_high", "faster", "slower",
        "ties", "sign_unknown", "sign_p", "holm_p", "significant", "summary_sha256",
    ]

    /// When one run reached the target: at an evaluation step, or not by its last one.
    public enum Reach: Equatable, Sendable {
        case reached(step: Int)
        case censored(afterStep: Int)
        /// No evaluation logged (a run that failed before its first), or a failed run.
        case unknown
    }

    /// One run's answer: a line of steps-to-runs.csv.
    public struct RunSteps {
        public var run: ExperimentResults.Run
        public var reach: Reach
    }

    /// One compared cell against one baseline cell: a line of steps-to.csv.
    public struct Pair {
        public var cell: [String]
        public var baselineCell: String
        public var pairedSeeds: [String]
        /// Seeds of either cell without a run of known reach on both sides.
        public var excludedSeeds: [String]
        public var bothReached = 0, onlyComparedReached = 0, onlyBaselineReached = 0, neitherReached = 0
        /// The mean steps of each side and of their differences, over the pairs where both reached X.
        public var steps: Double?, baselineSteps: Double?, difference: Double?
        /// The t interval of the mean difference over those pairs; nil below 3 of them.
        public var interval: ClosedRange<Double>?
        /// Pairs by sign: the compared run reached X in fewer steps, in more, in as many, or unknown.
        public var faster = 0, slower = 0, ties = 0, signUnknown = 0
        /// The sign test's two-sided p, and that p Holm-adjusted; nil when no pair has a sign.
        public var signP: Double?
        public var holmP: Double?
        public var significant: Bool { (holmP ?? 1) < PairedComparison.alpha }
    }

    /// summary.csv's axis columns (`run_id` first), for steps-to-runs.csv.
    public var runAxisNames: [String]
    /// The cell axes (as compare.csv's), for steps-to.csv.
    public var axisNames: [String]
    /// The variant or rank every cell is compared with.
    public var against: ComparisonBaseline
    public var metric: EvalMetric
    public var target: Double
    public var summarySHA256: String
    /// Every run of summary.csv, in its order.
    public var runs: [RunSteps]
    public var pairs: [Pair]
    /// Compared cells that no baseline cell pairs with any seed.
    public var unmatched: [[String]]

    /// `metricName` nil: the report's headline metric (the task's official GLUE metric, else the
    /// loss). A named metric must be one of `taskMetrics` (the task's eval metrics, from the
    /// results' manifest copy; without one, the loss and the GLUE metrics) that metrics.csv logs.
    public static func compute(resultsDirectory directory: String, baseline: ComparisonBaseline, target: Double,
                               metricName: String? = nil, taskMetrics: [EvalMetric]? = nil) throws -> StepsToTarget {
        guard target.isFinite else { throw ComparisonError.targetNotFinite(target) }
        let (summaryData, _) = try CellPairing.summary(of: directory)
        let results = try ExperimentResults.load(directory: directory)
        let metric: EvalMetric
        if let metricName {
            let known = taskMetrics ?? [EvalMetric(name: "loss", higherIsBetter: false)] + GLUEMetric.allCases.map(\.evalMetric)
            let logged = Set(results.series.values.flatMap { $0.keys.filter { $0.split == EvalSplit.eval.rawValue }.map(\.metric) })
            let available = known.filter { logged.contains($0.name) }
            guard let found = available.first(where: { $0.name == metricName }) else {
                throw ComparisonError.unknownStepsMetric(metricName, available: available.map(\.name))
            }
            metric = found
        } else {
            let headline = HeadlineMetric.choose(columns: results.finalMetricColumns, runs: results.runs)
            metric = EvalMetric(name: headline.name, higherIsBetter: headline.higherIsBetter)
        }

        let key = ExperimentResults.SeriesKey(split: EvalSplit.eval.rawValue, metric: metric.name)
        func reach(of run: ExperimentResults.Run) -> Reach {
            let points = results.series[run.runID]?[key] ?? []
            guard run.status != .failed, let last = points.last else { return .unknown }
            let first = points.first { metric.higherIsBetter ? $0.value >= target : $0.value <= target }
            return first.map { .reached(step: $0.step) } ?? .censored(afterStep: last.step)
        }
        let runs = results.runs.map { RunSteps(run: $0, reach: reach(of: $0)) }
        let reaches = Dictionary(uniqueKeysWithValues: runs.map { ($0.run.runID, $0.reach) })

        let pairing = try CellPairing(results: results, selection: try SelectedSettings.load(resultsDirectory: directory), baseline: baseline)
        var pairs: [Pair] = []
        var unmatched: [[String]] = []
        for entry in pairing.entries {
            let pairsBefore = pairs.count
            for base in entry.baselines {
                if let pair = Self.pair(entry.runs, against: base.runs, cell: entry.cell, baselineCell: base.description, reaches: reaches) {
                    pairs.append(pair)
                }
            }
            if pairs.count == pairsBefore { unmatched.append(entry.cell) }
        }
        let tested = pairs.indices.compactMap { index in pairs[index].signP.map { (index, $0) } }
        for (index, adjusted) in zip(tested.map(\.0), holmAdjusted(tested.map(\.1))) { pairs[index].holmP = adjusted }
        return StepsToTarget(runAxisNames: ["run_id"] + results.axisNames, axisNames: pairing.axisNames, against: baseline,
                             metric: metric, target: target, summarySHA256: SHA256Digest.hex(of: summaryData), runs: runs,
                             pairs: pairs, unmatched: unmatched)
    }

    /// One compared cell against one baseline cell over the seeds both have a run of known reach; nil when none.
    private static func pair(_ runs: [ExperimentResults.Run], against baselineRuns: [ExperimentResults.Run], cell: [String],
                             baselineCell: String, reaches: [String: Reach]) -> Pair? {
        var pair = Pair(cell: cell, baselineCell: baselineCell, pairedSeeds: [], excludedSeeds: [])
        var compared: [Double] = [], reference: [Double] = []
        for seed in CellPairing.unique((runs + baselineRuns).map(\.seed)) {
            guard let run = runs.first(where: { $0.seed == seed }), let base = baselineRuns.first(where: { $0.seed == seed }),
                  let mine = reaches[run.runID], let theirs = reaches[base.runID], mine != .unknown, theirs != .unknown else {
                pair.excludedSeeds.append(seed)
                continue
            }
            pair.pairedSeeds.append(seed)
            switch (mine, theirs) {
            case let (.reached(step), .reached(baselineStep)):
                pair.bothReached += 1
                compared.append(Double(step))
                reference.append(Double(baselineStep))
                if step < baselineStep { pair.faster += 1 } else if step > baselineStep { pair.slower += 1 } else { pair.ties += 1 }
            case let (.reached(step), .censored(after)):
                pair.onlyComparedReached += 1
                if step <= after { pair.faster += 1 } else { pair.signUnknown += 1 }
            case let (.censored(after), .reached(baselineStep)):
                pair.onlyBaselineReached += 1
                if baselineStep <= after { pair.slower += 1 } else { pair.signUnknown += 1 }
            default:
                pair.neitherReached += 1
                pair.signUnknown += 1
            }
        }
        guard !pair.pairedSeeds.isEmpty else { return nil }
        let differences = zip(compared, reference).map { $0 - $1 }
        pair.steps = SampleSummary(compared)?.mean
        pair.baselineSteps = SampleSummary(reference)?.mean
        pair.difference = SampleSummary(differences)?.mean
        pair.interval = differences.count >= 3 ? SampleSummary(differences)?.interval95 : nil
        let signed = pair.faster + pair.slower
        pair.signP = signed == 0 ? nil : min(1, 2 * binomialLowerTail(min(pair.faster, pair.slower), trials: signed, probability: 0.5))
        return pair
    }

    // MARK: - Output

    /// The `baseline` column: the variant, or `rank=R`.
    public var baseline: String { against.label }

    private var better: String { metric.higherIsBetter ? "higher" : "lower" }

    /// steps-to-runs.csv: every run, its first step at the target or the step after which it is censored.
    public var runsText: String {
        CSV.line(runAxisNames + Self.runColumns) + runs.map { steps in
            let (reached, censored): (String, String)
            switch steps.reach {
            case let .reached(step): (reached, censored) = (String(step), "")
            case let .censored(after): (reached, censored) = ("", String(after))
            case .unknown: (reached, censored) = ("", "")
            }
            return CSV.line(runAxisNames.map { $0 == "run_id" ? steps.run.runID : steps.run.axes[$0] ?? "" }
                            + [steps.run.status.rawValue, metric.name, better, formatNumber(target), reached, censored])
        }.joined()
    }

    /// steps-to.csv: every pair of cells.
    public var pairsText: String {
        func number(_ value: Double?) -> String { value.map(formatNumber) ?? "" }
        return CSV.line(axisNames + Self.pairColumns) + pairs.map { pair in
            CSV.line(pair.cell + [
                baseline, pair.baselineCell, metric.name, better, formatNumber(target), String(pair.pairedSeeds.count),
                pair.excludedSeeds.joined(separator: "+"), String(pair.bothReached), String(pair.onlyComparedReached),
                String(pair.onlyBaselineReached), String(pair.neitherReached), number(pair.steps), number(pair.baselineSteps),
                number(pair.difference), number(pair.interval?.lowerBound), number(pair.interval?.upperBound), String(pair.faster),
                String(pair.slower), String(pair.ties), String(pair.signUnknown), number(pair.signP), number(pair.holmP),
                String(pair.significant), summarySHA256,
            ])
        }.joined()
    }

    /// Writes steps-to.csv and steps-to-runs.csv into the results folder, each atomically, and
    /// returns their paths; a file of those names that lorabench did not write is never written over.
    @discardableResult
    public func write(resultsDirectory directory: String) throws -> [String] {
        let layout = ResultsLayout(root: directory)
        // Both checked before either is written, so a refusal leaves the two as they were.
        try ComparisonOutput.checkReplaceable(layout.stepsToRunsFile, fixedColumns: Self.runColumns)
        try ComparisonOutput.write(pairsText, to: layout.stepsToFile, fixedColumns: Self.pairColumns)
        try ComparisonOutput.write(runsText, to: layout.stepsToRunsFile, fixedColumns: Self.runColumns)
        return [layout.stepsToFile, layout.stepsToRunsFile]
    }

    /// What `lorabench compare --steps-to` prints: one line per pair.
    public var summaryText: String {
        let variantIndex = axisNames.firstIndex(of: "variant")!
        let shownAxes = axisNames.indices.filter { index in
            index != variantIndex && (Set(pairs.map { $0.cell[index] }).count > 1 || (against.isRank && axisNames[index] == "rank"))
        }
        func probability(_ value: Double?) -> String { value.map { String(format: "%.3g", $0) } ?? "none" }
        func steps(_ value: Double) -> String { String(format: "%+.1f", value) }
        var lines = ["steps to eval \(metric.name) \(metric.higherIsBetter ? "≥" : "≤") \(formatNumber(target)) against \(baseline): "
            + "mean difference in steps over the seeds where both reached it, t interval (n ≥ 3), sign test over every pair of known "
            + "sign (censored pairs included), Holm-adjusted p (* significant at 5 % over \(pairs.filter { $0.signP != nil }.count) tests)"]
        for pair in pairs {
            let name = ([pair.cell[variantIndex]] + shownAxes.map { "\(axisNames[$0])=\(pair.cell[$0])" }).joined(separator: " ")
            var line = "\(name) vs \(baseline)\(pair.baselineCell.isEmpty ? "" : " (\(pair.baselineCell))"): "
            line += pair.difference.map { steps($0) + " steps" } ?? "no seed where both reached it"
            if let interval = pair.interval { line += " [\(steps(interval.lowerBound)), \(steps(interval.upperBound))]" }
            line += ", both reached \(pair.bothReached) of \(pair.pairedSeeds.count)"
            if pair.onlyComparedReached + pair.onlyBaselineReached + pair.neitherReached > 0 {
                line += " (only it \(pair.onlyComparedReached), only \(baseline) \(pair.onlyBaselineReached), neither \(pair.neitherReached))"
            }
            if !pair.excludedSeeds.isEmpty { line += ", \(pair.excludedSeeds.count) seed(s) without a pair" }
            line += "; sooner \(pair.faster), later \(pair.slower), ties \(pair.ties), unknown \(pair.signUnknown): sign p=\(probability(pair.signP)), "
                + "holm p=\(probability(pair.holmP))" + (pair.significant ? " *" : "")
            lines.append(line)
        }
        if !unmatched.isEmpty { lines.append("\(unmatched.count) cell(s) have no runs paired with a \(baseline) cell") }
        return lines.joined(separator: "\n")
    }
}
