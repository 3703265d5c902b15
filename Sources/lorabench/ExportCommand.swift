import ArgumentParser
import LoRABenchKernels
import LoRABenchTensorIO
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

/// `lorabench export RESULTS --metric NAME`: one metric as a CSV for pandas, R or a spreadsheet.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write one metric of an experiment as a CSV ready for plotting (long, or wide by an axis).",
        discussion: "Long keeps the rows of RESULTS/metrics.csv for the metric; wide has one column per value of the axis, e.g. rank=4,rank=8,…"
    )

    @Argument(help: "The experiment's results directory, e.g. results/rank-sweep.")
    var results: String

    @Option(help: "The metric, e.g. loss, r2, gradient_norm, rank/fc1.")
    var metric: String

    @Option(help: "Only this split (train or eval).")
    var split: String?

    @Option(help: ArgumentHelp("Spread this axis into columns.", valueName: MetricsExport.wideAxes.joined(separator: "|")))
    var wideBy: String?

    @Option(help: "Write here instead of standard output (never over the results' own files).")
    var out: String?

    @Flag(help: "Overwrite --out if it exists.")
    var force = false

    func run() throws {
        if let out { try OutputFile.check(out, inputs: MetricsExport.inputs(results: results), overwrite: force) }
        let table = try MetricsExport.table(results: results, metric: metric, split: split, wideBy: wideBy)
        if let out {
            try AtomicFile.write(table.text, to: out)
            print("\(table.rows.count) rows → \(out)")
        } else {
            print(table.text, terminator: "")
        }
    }
}
