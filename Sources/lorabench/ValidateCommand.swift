import ArgumentParser
import LoRABench

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
        let product = axes.variants.count * axes.ranks.count * axes.seeds.count
        let shape = "\(axes.variants.count) variants × \(axes.ranks.count) ranks × \(axes.seeds.count) seeds"
        let others = parsed.runs.count == product ? "" : " and the other axes"
        print("\(manifest): ok — experiment \(parsed.experiment), \(parsed.runs.count) runs of \(parsed.training.steps) steps (\(shape)\(others))")
    }
}
