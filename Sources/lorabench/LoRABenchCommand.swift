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

@main
struct LoRABenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorabench",
        abstract: "A workbench for low-rank adaptation on OpenBLAS: " + VariantRegistry.entryNames.joined(separator: ", ") + ".",
        subcommands: [
            RunCommand.self, ValidateCommand.self, ReportCommand.self, ExportCommand.self, CompareCommand.self, MergeCommand.self, InferCommand.self, AnalyzeCommand.self,
            StatusCommand.self, CollectCommand.self, BenchCommand.self, FetchModelCommand.self, VariantsCommand.self, BLASKernelsCommand.self,
        ]
    )

    /// Runs the command, after re-executing once with the OpenBLAS settings it lacks
    /// (`BLASCore.startupEnvironment`: a kernel set fit for this CPU, a short spin for idle
    /// workers), which OpenBLAS reads only when it loads; every process started from here on
    /// (--jobs workers, bench children, Slurm tasks) inherits them.
    static func main() {
        let missing = BLASCore.startupEnvironment()
        if !missing.isEmpty {
            for (name, value) in missing { setenv(name, value, 1) }
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // Reached only when the exec failed: stay as loaded, and so must children.
            for name in missing.keys { unsetenv(name) }
        }
        main(nil)
    }
}
