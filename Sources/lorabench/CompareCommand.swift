import ArgumentParser
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop
import LoRABenchExperiments
import LoRABenchPlotting
import LoRABenchReport
import LoRABenchAnalysis
import LoRABenchBench

/// `lorabench compare RESULTS --baseline VARIANT | --baseline-rank R [--steps-to X]`: paired
/// tests of every cell against the baseline's, written into RESULTS (compare.csv, which
/// `lorabench report` then shows; compare-rank.csv; steps-to.csv and steps-to-runs.csv).
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Paired tests against a baseline variant or rank: metric differences with bootstrap and t intervals, McNemar for accuracy, Holm; or steps to reach a dev metric.",
        discussion: """
        Pairs each cell's runs with the baseline cell's runs of the same seeds: against a variant (--baseline, every other variant's \
        cells; writes RESULTS/compare.csv, which `lorabench report` shows) or a rank (--baseline-rank, each variant's other ranks \
        against its own cell of that rank; writes RESULTS/compare-rank.csv), on their dev predictions (runs/<id>/predictions.csv) \
        in every metric they give. With --steps-to X, instead: the first evaluation step at which each run's dev metric reaches X \
        (RESULTS/steps-to-runs.csv; a run that never does is censored) and per pair of cells the paired difference in steps with \
        a sign test (RESULTS/steps-to.csv). Prints one line per comparison. The statistics are documented in Experiments/README.md.
        """
    )

    @Argument(help: "The experiment's results directory, e.g. results/sst2-study.")
    var results: String

    @Option(help: "The variant (its label in summary.csv) every other one is compared with, e.g. lora.")
    var baseline: String?

    @Option(help: "The rank each variant's other ranks are compared with, within the variant, e.g. 8.")
    var baselineRank: Int?

    @Option(help: "Instead of the predictions: the steps each run took for its dev metric to reach this value, paired over seeds.")
    var stepsTo: Double?

    @Option(help: "With --steps-to: the eval metric (default: the headline, the task's official GLUE metric, else loss).")
    var metric: String?

    @Option(help: "Bootstrap resamples of the dev examples (100 to 1,000,000; default \(PairedComparison.defaultResamples)).")
    var resamples: Int?

    @Option(help: "Seed of the bootstrap's draws: the same seed gives the same intervals (default \(PairedComparison.defaultBootstrapSeed)).")
    var bootstrapSeed: UInt64?

    func validate() throws {
        guard (baseline == nil) != (baselineRank == nil) else {
            throw ValidationError("give one baseline: --baseline VARIANT (variants against it) or --baseline-rank R (each variant's ranks against its rank R)")
        }
        if let resamples, !PairedComparison.allowedResamples.contains(resamples) {
            throw ValidationError(ComparisonError.resamplesOutOfRange(resamples).description)
        }
        if stepsTo == nil, metric != nil { throw ValidationError("--metric names the metric of --steps-to; give --steps-to X too") }
        if stepsTo != nil, resamples != nil || bootstrapSeed != nil {
            throw ValidationError("--resamples and --bootstrap-seed set the bootstrap over dev predictions, which --steps-to does not use")
        }
        if let stepsTo, !stepsTo.isFinite { throw ValidationError(ComparisonError.targetNotFinite(stepsTo).description) }
    }

    func run() throws {
        let layout = ResultsLayout(root: results)
        // validate() has made sure exactly one of the two is given.
        let against: ComparisonBaseline = baseline.map { .variant($0) } ?? .rank(baselineRank ?? 0)
        if let stepsTo {
            let steps = try StepsToTarget.compute(resultsDirectory: results, baseline: against, target: stepsTo, metricName: metric,
                                                 taskMetrics: metric == nil ? nil : layout.taskEvalMetrics())
            let paths = try steps.write(resultsDirectory: results)
            print(steps.summaryText)
            print("\(steps.pairs.count) pairs → \(paths[0]); every run → \(paths[1])")
            return
        }
        let comparison = try PairedComparison.compute(resultsDirectory: results, baseline: against, labelCount: layout.taskLabelCount(),
                                                      resamples: resamples ?? PairedComparison.defaultResamples,
                                                      bootstrapSeed: bootstrapSeed ?? PairedComparison.defaultBootstrapSeed)
        let path = try comparison.write(resultsDirectory: results)
        print(comparison.summaryText)
        print("\(comparison.comparisons.count) comparisons → \(path)")
    }
}
