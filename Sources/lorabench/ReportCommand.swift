import ArgumentParser
import Foundation
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

/// `lorabench report RESULTS`: plots and a page to look at, written next to the CSV files.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write SVG plots and an index.html showing an experiment's results.",
        discussion: "Reads RESULTS/summary.csv and RESULTS/metrics.csv (written by `lorabench run`) and writes the plots and index.html into RESULTS."
    )

    @Argument(help: "The experiment's results directory, e.g. results/rank-sweep.")
    var results: String

    func run() throws {
        let written = try Report.write(resultsDirectory: results)
        for path in written { print(path) }
        print("open file://\(URL(fileURLWithPath: written.last!).standardizedFileURL.path)")
    }
}
