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

/// `lorabench export RESULTS --metric NAME`: one metric as a CSV for pandas, R or a spreadsheet;
/// `--cells`: the statistics over seeds per cell.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write one metric of an experiment as a CSV ready for plotting (long, or wide by an axis), or its cells' statistics.",
        discussion: """
        Long keeps the rows of RESULTS/metrics.csv for the metric; wide has one column per value of the axis, e.g. rank=4,rank=8,…         --selected keeps the runs of the learning rates chosen on the validation split (RESULTS/selection.csv). --cells writes,         per cell (every axis but the seed), n, mean, standard deviation and the 95 % t interval of each final metric.
        """
    )

    @Argument(help: "The experiment's results directory, e.g. results/rank-sweep.")
    var results: String

    @Option(help: "The metric, e.g. loss, r2, gradient_norm, rank/fc1 (not with --cells).")
    var metric: String?

    @Option(help: "Only this split (train, eval or validation).")
    var split: String?

    @Option(help: ArgumentHelp("Spread this axis into columns.", valueName: MetricsExport.wideAxes.joined(separator: "|")))
    var wideBy: String?

    @Flag(help: "Only the runs of the settings a `selection:` block chose (selection.csv).")
    var selected = false

    @Flag(help: "The statistics over seeds per cell (cells.csv; with a selection, of the chosen settings).")
    var cells = false

    @Option(help: "Write here instead of standard output (never over the results' own files).")
    var out: String?

    @Flag(help: "Overwrite --out if it exists.")
    var force = false

    func validate() throws {
        if cells, metric != nil || split != nil || wideBy != nil {
            throw ValidationError("--cells writes every final metric of every cell; leave out --metric, --split and --wide-by")
        }
        if !cells, metric == nil { throw ValidationError("give --metric NAME, or --cells") }
    }

    func run() throws {
        if let out { try OutputFile.check(out, inputs: MetricsExport.inputs(results: results), overwrite: force) }
        let table: ExportedTable
        if let metric {
            table = try MetricsExport.table(results: results, metric: metric, split: split, wideBy: wideBy, selectedOnly: selected)
        } else {
            // --cells are of the chosen settings whenever there is a selection; --selected only insists on one.
            if selected, try SelectedSettings.load(resultsDirectory: results) == nil {
                throw ExportError.noSelection(path: ResultsLayout(root: results).selectionFile)
            }
            table = try MetricsExport.cells(results: results)
        }
        if let out {
            try AtomicFile.write(table.text, to: out)
            print("\(table.rows.count) rows → \(out)")
        } else {
            print(table.text, terminator: "")
        }
    }
}
