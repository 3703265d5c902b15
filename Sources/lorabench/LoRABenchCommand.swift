import ArgumentParser
import LoRABench

@main
struct LoRABenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorabench",
        abstract: "A workbench for low-rank adaptation: LoRA, LoRA+, AdaLoRA and DoRA on OpenBLAS.",
        subcommands: [
            RunCommand.self, ValidateCommand.self, ReportCommand.self, ExportCommand.self, MergeCommand.self, InferCommand.self, AnalyzeCommand.self,
            BenchCommand.self, FetchModelCommand.self,
        ]
    )
}
