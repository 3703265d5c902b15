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

/// `lorabench validate MANIFEST`: parses and expands a manifest without running anything.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a manifest: every key, type and value, and that every run of its grid can be built."
    )

    @Argument(help: "The experiment manifest (YAML).")
    var manifest: String

    func run() throws {
        let parsed = try Manifest.load(path: manifest)
        let axes = parsed.sweep
        // head_only has no rank axis: one run per seed, counted apart.
        let adapterVariants = axes.variants.filter(\.hasAdapters).count
        let headOnly = axes.variants.count - adapterVariants
        let product = (adapterVariants * axes.ranks.count + headOnly) * axes.seeds.count
        var shape = "\(adapterVariants) variants × \(axes.ranks.count) ranks × \(axes.seeds.count) seeds"
        if headOnly > 0 { shape += " + \(headOnly) head_only × \(axes.seeds.count) seeds" }
        if parsed.runs.count != product {
            // Other axes (learning rates, a variant's own ranks, α, init, …) multiply some variants' runs: count each.
            shape = "by variant: " + axes.variants.map { variant in
                "\(variant.label) \(parsed.runs.filter { $0.variant.label == variant.label }.count)"
            }.joined(separator: ", ")
        }
        print("\(manifest): ok — experiment \(parsed.experiment), \(parsed.runs.count) runs of \(parsed.training.steps) steps (\(shape))")
    }
}
