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

/// `lorabench compare RESULTS --baseline VARIANT`: paired tests of every variant's cells against
/// the baseline's, written to RESULTS/compare.csv (which `lorabench report` then shows).
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Paired tests against a baseline variant: metric differences with bootstrap and t intervals, McNemar for accuracy, Holm.",
        discussion: """
        Pairs each cell's runs with the baseline cell's runs of the same seeds, on their dev predictions (runs/<id>/predictions.csv, \
        written by the GLUE tasks), in every metric the predictions give. Writes RESULTS/compare.csv and prints one line per \
        comparison; run `lorabench report` afterwards to show it on the page. The statistics are documented in Experiments/README.md.
        """
    )

    @Argument(help: "The experiment's results directory, e.g. results/sst2-study.")
    var results: String

    @Option(help: "The variant (its label in summary.csv) every other one is compared with, e.g. lora.")
    var baseline: String

    @Option(help: "Bootstrap resamples of the dev examples (100 to 1,000,000).")
    var resamples = PairedComparison.defaultResamples

    @Option(help: "Seed of the bootstrap's draws: the same seed gives the same intervals.")
    var bootstrapSeed = PairedComparison.defaultBootstrapSeed

    func validate() throws {
        guard PairedComparison.allowedResamples.contains(resamples) else {
            throw ValidationError(ComparisonError.resamplesOutOfRange(resamples).description)
        }
    }

    func run() throws {
        let layout = ResultsLayout(root: results)
        let comparison = try PairedComparison.compute(resultsDirectory: results, baseline: baseline, labelCount: layout.taskLabelCount(),
                                                      resamples: resamples, bootstrapSeed: bootstrapSeed)
        let path = layout.compareFile
        try AtomicFile.write(comparison.text, to: path)
        print(comparison.summaryText)
        print("\(comparison.comparisons.count) comparisons → \(path)")
    }
}
