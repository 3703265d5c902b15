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

    /// Runs the command, after re-executing once with `OPENBLAS_CORETYPE` set when OpenBLAS
    /// loaded kernels too weak for this CPU (`BLASCore`); every process started from here on
    /// (--jobs workers, bench children, Slurm tasks) inherits the setting.
    static func main() {
        if let core = BLASCore.correction() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // Reached only when the exec failed: stay on the loaded kernels, and so must children.
            unsetenv("OPENBLAS_CORETYPE")
        }
        main(nil)
    }
}
