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

@main
struct LoRABenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorabench",
        abstract: "A workbench for low-rank adaptation on OpenBLAS: " + VariantRegistry.entryNames.joined(separator: ", ") + ".",
        subcommands: [
            RunCommand.self, ValidateCommand.self, ReportCommand.self, ExportCommand.self, CompareCommand.self, MergeCommand.self, InferCommand.self, AnalyzeCommand.self,
            StatusCommand.self, CollectCommand.self, BenchCommand.self, FetchModelCommand.self, VariantsCommand.self,
        ]
    )
}
