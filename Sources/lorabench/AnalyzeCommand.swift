import ArgumentParser
import Foundation
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

/// `lorabench analyze …`: the analyses of the LoRA, DoRA and AdaLoRA papers on trained adapters,
/// as CSV + SVG in an analysis folder whose index.html shows them all.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Analyse trained adapters: subspace similarity, ΔW spectra, magnitude/direction changes, AdaLoRA ranks.",
        discussion: "Each subcommand writes CSV and SVG files into --out (default results/analysis) and rebuilds its index.html.",
        subcommands: [Subspace.self, Spectrum.self, MagnitudeDirection.self, Ranks.self]
    )

    struct Output: ParsableArguments {
        @Option(help: "The analysis folder.")
        var out = "results/analysis"

        @Option(help: "The base model, when an adapter's base_model_name_or_path is not one LoRABench knows.")
        var model: ModelChoice?

        @Flag(help: "Overwrite files of the same names in --out, and an index.html that `analyze` did not write.")
        var force = false

        /// Writes `files` and rebuilds the index, after checking all of them: none may be one of
        /// `inputs` (the adapter or run folders read), and none may exist unless --force, so a
        /// refusal writes nothing.
        func write(_ files: [AnalysisReports.File], inputs: [String]) throws {
            for file in files {
                try OutputFile.check("\(out)/\(file.name)", inputs: inputs, overwrite: force)
            }
            try OutputFile.check(AnalysisIndex.path(in: out), inputs: inputs, overwrite: true)
            try AnalysisIndex.check(directory: out, overwrite: force)
            try FileSystem.createDirectory(out)
            for file in files {
                try AtomicFile.write(file.contents, to: "\(out)/\(file.name)")
                print("  \(out)/\(file.name)")
            }
            try AnalysisIndex.write(directory: out)
            print("  \(out)/index.html")
        }

        /// The adapter in `path` on its base model, labelled as the analyses show it.
        func open(_ path: String) throws -> AnalysisReports.Labelled {
            (AnalysisReports.label(path), try AdaptedModel.open(path, model: model?.family).adapted)
        }
    }

    struct Subspace: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "φ(i, j) between two adapters of the same model, per module (LoRA paper, section 7.2).",
            discussion: "On the A factors (the paper's measure, input directions) and on the B factors (output directions); heatmaps for the modules of --kinds.")

        @Argument(help: "The two adapter folders, e.g. the r = 8 and r = 64 runs.")
        var adapters: [String]

        @Option(parsing: .upToNextOption, help: "Module kinds drawn as heatmaps (all go to the CSV).")
        var kinds: [String] = ["query", "value"]

        @OptionGroup var output: Output

        func validate() throws {
            guard adapters.count == 2 else { throw ValidationError("give exactly two adapter folders") }
        }

        func run() throws {
            try output.write(AnalysisReports.subspace(output.open(adapters[0]), output.open(adapters[1]), kinds: kinds), inputs: adapters)
        }
    }

    struct Spectrum: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ΔW per module: singular values, stable and effective rank, ‖ΔW‖/‖W0‖, amplification (LoRA paper, section 7.3).")

        @Argument(help: "Adapter folders.")
        var adapters: [String]

        @Option(help: "The name of the files written.")
        var name = "delta-weight"

        @OptionGroup var output: Output

        /// Before any adapter is opened; `AnalysisReports.spectrum` refuses the name too.
        func validate() throws {
            guard FileName.isSafe(name) else { throw ValidationError(AnalysisError.invalidFileName(name: name).description) }
        }

        func run() throws {
            try output.write(AnalysisReports.spectrum(adapters.map(output.open), name: name), inputs: adapters)
        }
    }

    struct MagnitudeDirection: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "magnitude-direction",
            abstract: "ΔM and ΔD per layer across a run's checkpoints (DoRA paper, section 2.2).",
            discussion: "Each RUN folder needs checkpoints (save_every); its final adapter is the last point.")

        @Argument(help: "Run folders, e.g. results/sst2-checkpoints/runs/<id>.")
        var runs: [String]

        @Option(parsing: .upToNextOption, help: "Module kinds drawn as scatter plots (all go to the CSV).")
        var kinds: [String] = ["query", "value"]

        @OptionGroup var output: Output

        func run() throws {
            let timelines = try runs.map { run -> AnalysisReports.Timeline in
                (AnalysisReports.label(run), try ResultsLayout.adapterTimeline(ofRun: run).map { step, folder in
                    (step, try AdaptedModel.open(folder, model: output.model?.family).adapted)
                })
            }
            try output.write(AnalysisReports.magnitudeDirection(timelines, kinds: kinds), inputs: runs)
        }
    }

    struct Ranks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The final rank of every module and layer (AdaLoRA's kept triplets, svd-prune's ranks), as heatmaps.")

        @Argument(help: "Adapter folders of rank-allocating runs.")
        var adapters: [String]

        @OptionGroup var output: Output

        func run() throws {
            try output.write(AnalysisReports.ranks(adapters.map(output.open)), inputs: adapters)
        }
    }
}
