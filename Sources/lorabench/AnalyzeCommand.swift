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
        var model: PretrainedModel?

        func prepare() throws {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        }

        func write(_ text: String, _ name: String) throws {
            try AtomicFile.write(text, to: "\(out)/\(name)")
            print("  \(out)/\(name)")
        }

        func finish() throws {
            try AnalysisIndex.write(directory: out)
            print("  \(out)/index.html")
        }
    }

    /// A run's id without its settings hash for `…/runs/<id>/adapter` (or `…/runs/<id>`), else the folder's own name.
    static func label(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let name = url.lastPathComponent == "adapter" ? url.deletingLastPathComponent().lastPathComponent : url.lastPathComponent
        guard let dash = name.lastIndex(of: "-"), name[name.index(after: dash)...].count == 6,
              name[name.index(after: dash)...].allSatisfy(\.isHexDigit) else { return name }
        return String(name[..<dash])
    }

    static func panelLabel(_ module: String) -> String {
        ModulePosition(module).map { "layer \($0.layer) · \($0.kind)" } ?? module
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
            try output.prepare()
            let first = try AdaptedModel.open(adapters[0], model: output.model).adapted
            let second = try AdaptedModel.open(adapters[1], model: output.model).adapted
            let comparisons = try AdapterAnalyses.subspaceSimilarity(first, second)
            guard !comparisons.isEmpty else { throw CommandError("the two adapters share no adapted module") }
            let name = "subspace-\(label(adapters[0]))-vs-\(label(adapters[1]))"
            try output.write(AdapterAnalyses.subspaceCSV(comparisons), name + ".csv")
            let drawn = comparisons.filter { comparison in kinds.contains { ModulePosition(comparison.module)?.kind == $0 } }
            for (measure, title, phi) in [("A", "of the A factors", \AdapterAnalyses.SubspaceComparison.factorA),
                                          ("B", "of the B factors", \AdapterAnalyses.SubspaceComparison.factorB)] {
                let svg = AnalysisFigures.subspaceHeatmaps(
                    title: "Subspace similarity φ(i, j) \(title): \(label(adapters[0])) (i) vs \(label(adapters[1])) (j)",
                    panels: drawn.map { (panelLabel($0.module), $0[keyPath: phi]) }, columns: max(1, kinds.count))
                try output.write(svg, "\(name)-\(measure).svg")
            }
            try output.finish()
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

        func run() throws {
            try output.prepare()
            var summary = CSV.line(["adapter", "module", "layer", "kind", "rank", "frobenius_norm", "relative_norm", "stable_rank",
                                    "effective_rank", "amplification", "projection_on_delta", "projection_on_base", "projection_on_random"])
            var spectra = CSV.line(["adapter", "module", "index", "singular_value"])
            var series: [(label: String, singularValues: [Float])] = []
            for path in adapters {
                let adapted = try AdaptedModel.open(path, model: output.model).adapted
                let rows = try AdapterAnalyses.deltaWeightStatistics(adapted)
                let label = AnalyzeCommand.label(path)
                var meanSpectrum = [Double](repeating: 0, count: rows.map(\.rank).max() ?? 0)
                for (module, rank, statistics) in rows {
                    let position = ModulePosition(module)
                    summary += CSV.line([label, module, position.map { String($0.layer) } ?? "", position?.kind ?? "", String(rank)]
                        + [statistics.frobeniusNorm, statistics.relativeNorm, statistics.stableRank, statistics.effectiveRank,
                           statistics.amplification, statistics.projectionOnDelta, statistics.projectionOnBase,
                           statistics.projectionOnRandom].map { String(format: "%.6g", $0) })
                    let values = statistics.singularValues.prefix(max(rank, 1) * 2)
                    for (index, value) in values.enumerated() { spectra += CSV.line([label, module, String(index + 1), String(format: "%.6g", value)]) }
                    let largest = Double(statistics.singularValues.first ?? 0)
                    for index in meanSpectrum.indices where largest > 0 && index < statistics.singularValues.count {
                        meanSpectrum[index] += Double(statistics.singularValues[index]) / largest / Double(rows.count)
                    }
                }
                series.append((label, meanSpectrum.map(Float.init)))
            }
            try output.write(summary, name + ".csv")
            try output.write(spectra, name + "-singular-values.csv")
            try output.write(AnalysisFigures.spectra(title: "ΔW singular values, mean over modules of σᵢ/σ₁", series: series), name + "-spectra.svg")
            try output.finish()
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
            try output.prepare()
            var table = CSV.line(["run", "module", "layer", "kind", "step", "delta_m", "delta_d"])
            var correlations = CSV.line(["run", "kind", "points", "pearson_r"])
            var points: [String: [(run: String, kind: String, deltaD: Double, deltaM: Double, step: Int)]] = [:]
            for run in runs {
                let label = AnalyzeCommand.label(run)
                let folder = URL(fileURLWithPath: run).standardizedFileURL
                let id = folder.lastPathComponent
                let layout = ResultsLayout(root: folder.deletingLastPathComponent().deletingLastPathComponent().path)
                let steps = layout.checkpointSteps(id)
                guard !steps.isEmpty else {
                    throw CommandError("\(run) has no checkpoints; run its manifest with training.save_every set")
                }
                var folders = steps.map { ($0, layout.checkpointDirectory(id, step: $0)) }
                if let outcome = try layout.outcome(of: id) { folders.append((outcome.stepsCompleted, layout.peftAdapterDirectory(id))) }
                for (step, folder) in folders {
                    let adapted = try AdaptedModel.open(folder, model: output.model).adapted
                    for (module, change) in try AdapterAnalyses.magnitudeDirection(adapted) {
                        guard let position = ModulePosition(module) else { continue }
                        table += CSV.line([label, module, String(position.layer), position.kind, String(step),
                                           String(format: "%.6g", change.magnitude), String(format: "%.6g", change.direction)])
                        points[position.kind, default: []].append((label, position.kind, change.direction, change.magnitude, step))
                    }
                }
            }
            for kind in ModulePosition.kinds where points[kind] != nil {
                let byRun = Dictionary(grouping: points[kind]!, by: \.run)
                var series: [(label: String, points: [(deltaD: Double, deltaM: Double, step: Int)], correlation: Double?)] = []
                for run in runs.map(AnalyzeCommand.label) {
                    let runPoints = byRun[run] ?? []
                    let r = pearsonCorrelation(runPoints.map(\.deltaD), runPoints.map(\.deltaM))
                    correlations += CSV.line([run, kind, String(runPoints.count), r.map { String(format: "%.4f", $0) } ?? ""])
                    series.append((run, runPoints.map { ($0.deltaD, $0.deltaM, $0.step) }, r))
                }
                if kinds.contains(kind) {
                    let svg = AnalysisFigures.magnitudeDirectionScatter(title: "Magnitude vs direction change of the \(kind) weights, every layer and checkpoint",
                                                                        series: series)
                    try output.write(svg, "magnitude-direction-\(kind).svg")
                }
            }
            try output.write(table, "magnitude-direction.csv")
            try output.write(correlations, "magnitude-direction-correlation.csv")
            try output.finish()
        }
    }

    struct Ranks: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The final rank of every module and layer (AdaLoRA's kept triplets, svd-prune's ranks), as heatmaps.")

        @Argument(help: "Adapter folders of rank-allocating runs.")
        var adapters: [String]

        @OptionGroup var output: Output

        func run() throws {
            try output.prepare()
            var table = CSV.line(["adapter", "module", "layer", "kind", "rank", "initial_rank"])
            for path in adapters {
                let ranks = AdapterAnalyses.ranks(try AdaptedModel.open(path).adapted)
                let label = AnalyzeCommand.label(path)
                let initial = ranks.map(\.initialRank).max() ?? 0
                var grid: [Int: [String: Int]] = [:]
                for (module, rank, _) in ranks {
                    guard let position = ModulePosition(module) else { continue }
                    table += CSV.line([label, module, String(position.layer), position.kind, String(rank), String(initial)])
                    grid[position.layer, default: [:]][position.kind] = rank
                }
                let layers = grid.keys.sorted()
                let kinds = ModulePosition.kinds.filter { kind in grid.values.contains { $0[kind] != nil } }
                let svg = AnalysisFigures.rankHeatmap(
                    title: "Final ranks of \(label) (initial rank \(initial), \(ranks.map(\.rank).reduce(0, +)) of \(initial * ranks.count) triplets kept)",
                    rowLabels: layers.map { "layer \($0)" }, columnLabels: kinds,
                    values: layers.map { layer in kinds.map { grid[layer]?[$0] } }, maximum: initial)
                try output.write(svg, "adalora-ranks-\(label).svg")
            }
            try output.write(table, "adalora-ranks.csv")
            try output.finish()
        }
    }
}
