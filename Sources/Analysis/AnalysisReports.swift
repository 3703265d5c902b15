import Foundation
import LoRABenchKernels
import LoRABenchInterop
import LoRABenchTensorIO
import LoRABenchResults

/// The files each `lorabench analyze` subcommand writes (CSV tables and SVG figures), built from
/// adapters already opened: the command only opens them, writes these into the analysis folder
/// and rebuilds its index.
public enum AnalysisReports {
    public struct File: Equatable {
        public var name: String
        public var contents: String
    }

    /// An adapter with the label it carries in tables and figures.
    public typealias Labelled = (label: String, model: AdaptedModel)

    /// A run's id without its settings hash for `…/runs/<id>/adapter` (or `…/runs/<id>`), else the folder's own name.
    public static func label(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let name = url.lastPathComponent == "adapter" ? url.deletingLastPathComponent().lastPathComponent : url.lastPathComponent
        guard let dash = name.lastIndex(of: "-"), name[name.index(after: dash)...].count == 6,
              name[name.index(after: dash)...].allSatisfy(\.isHexDigit) else { return name }
        return String(name[..<dash])
    }

    static func panelLabel(_ module: String) -> String {
        ModulePosition(module).map { "layer \($0.layer) · \($0.kind)" } ?? module
    }

    /// φ(i, j) of two adapters per module (LoRA paper, section 7.2): the CSV of every module and
    /// heatmaps of the A and the B factors for the modules of `kinds`.
    public static func subspace(_ first: Labelled, _ second: Labelled, kinds: [String]) throws -> [File] {
        let comparisons = try AdapterAnalyses.subspaceSimilarity(first.model, second.model)
        guard !comparisons.isEmpty else { throw AnalysisError.nothingShared(first: first.label, second: second.label) }
        let name = "subspace-\(first.label)-vs-\(second.label)"
        var files = [File(name: name + ".csv", contents: AdapterAnalyses.subspaceCSV(comparisons))]
        let drawn = comparisons.filter { comparison in kinds.contains { ModulePosition(comparison.module)?.kind == $0 } }
        for (measure, title, phi) in [("A", "of the A factors", \AdapterAnalyses.SubspaceComparison.factorA),
                                      ("B", "of the B factors", \AdapterAnalyses.SubspaceComparison.factorB)] {
            let svg = AnalysisFigures.subspaceHeatmaps(
                title: "Subspace similarity φ(i, j) \(title): \(first.label) (i) vs \(second.label) (j)",
                panels: drawn.map { (panelLabel($0.module), $0[keyPath: phi]) }, columns: max(1, kinds.count))
            files.append(File(name: "\(name)-\(measure).svg", contents: svg))
        }
        return files
    }

    /// ΔW per module (LoRA paper, section 7.3): statistics, singular values, mean spectra;
    /// `name` starts the files' names, so it must be a plain file name.
    public static func spectrum(_ adapters: [Labelled], name: String) throws -> [File] {
        guard FileName.isSafe(name) else { throw AnalysisError.invalidFileName(name: name) }
        var summary = CSV.line(["adapter", "module", "layer", "kind", "rank", "frobenius_norm", "relative_norm", "stable_rank",
                                "effective_rank", "amplification", "projection_on_delta", "projection_on_base", "projection_on_random"])
        var spectra = CSV.line(["adapter", "module", "index", "singular_value"])
        var series: [(label: String, singularValues: [Float])] = []
        for (label, model) in adapters {
            let rows = try AdapterAnalyses.deltaWeightStatistics(model)
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
        return [File(name: name + ".csv", contents: summary),
                File(name: name + "-singular-values.csv", contents: spectra),
                File(name: name + "-spectra.svg",
                     contents: AnalysisFigures.spectra(title: "ΔW singular values, mean over modules of σᵢ/σ₁", series: series))]
    }

    /// One run's adapter at successive steps.
    public typealias Timeline = (label: String, points: [(step: Int, model: AdaptedModel)])

    /// ΔM and ΔD per layer across each run's checkpoints (DoRA paper, section 3.2, Eq. 3–4): the
    /// table, the Pearson r per run and module kind, and a scatter for the kinds of `kinds`.
    public static func magnitudeDirection(_ runs: [Timeline], kinds: [String]) throws -> [File] {
        var table = CSV.line(["run", "module", "layer", "kind", "step", "delta_m", "delta_d"])
        var correlations = CSV.line(["run", "kind", "points", "pearson_r"])
        var points: [String: [(run: String, deltaD: Double, deltaM: Double, step: Int)]] = [:]
        for (label, timeline) in runs {
            for (step, model) in timeline {
                for (module, change) in try AdapterAnalyses.magnitudeDirection(model) {
                    guard let position = ModulePosition(module) else { continue }
                    table += CSV.line([label, module, String(position.layer), position.kind, String(step),
                                       String(format: "%.6g", change.magnitude), String(format: "%.6g", change.direction)])
                    points[position.kind, default: []].append((label, change.direction, change.magnitude, step))
                }
            }
        }
        var files: [File] = []
        for kind in ModulePosition.kinds where points[kind] != nil {
            let byRun = Dictionary(grouping: points[kind]!, by: \.run)
            var series: [(label: String, points: [(deltaD: Double, deltaM: Double, step: Int)], correlation: Double?)] = []
            for run in runs.map(\.label) {
                let runPoints = byRun[run] ?? []
                let r = pearsonCorrelation(runPoints.map(\.deltaD), runPoints.map(\.deltaM))
                correlations += CSV.line([run, kind, String(runPoints.count), r.map { String(format: "%.4f", $0) } ?? ""])
                series.append((run, runPoints.map { ($0.deltaD, $0.deltaM, $0.step) }, r))
            }
            if kinds.contains(kind) {
                let svg = AnalysisFigures.magnitudeDirectionScatter(
                    title: "Magnitude vs direction change of the \(kind) weights, every layer and checkpoint", series: series)
                files.append(File(name: "magnitude-direction-\(kind).svg", contents: svg))
            }
        }
        return files + [File(name: "magnitude-direction.csv", contents: table),
                        File(name: "magnitude-direction-correlation.csv", contents: correlations)]
    }

    /// Every module's final rank against its initial one (AdaLoRA's kept triplets, svd-prune's
    /// ranks; a fixed-rank adapter keeps r): the table and one heatmap per adapter.
    public static func ranks(_ adapters: [Labelled]) -> [File] {
        var table = CSV.line(["adapter", "module", "layer", "kind", "rank", "initial_rank"])
        var files: [File] = []
        for (label, model) in adapters {
            let ranks = AdapterAnalyses.ranks(model)
            let initial = ranks.map(\.initialRank).max() ?? 0
            var grid: [Int: [String: Int]] = [:]
            for (module, rank, initialRank) in ranks {
                guard let position = ModulePosition(module) else { continue }
                table += CSV.line([label, module, String(position.layer), position.kind, String(rank), String(initialRank)])
                grid[position.layer, default: [:]][position.kind] = rank
            }
            let layers = grid.keys.sorted()
            let kinds = ModulePosition.kinds.filter { kind in grid.values.contains { $0[kind] != nil } }
            let svg = AnalysisFigures.rankHeatmap(
                title: "Final ranks of \(label) (initial rank \(initial), \(ranks.map(\.rank).reduce(0, +)) of \(ranks.map(\.initialRank).reduce(0, +)) kept)",
                rowLabels: layers.map { "layer \($0)" }, columnLabels: kinds,
                values: layers.map { layer in kinds.map { grid[layer]?[$0] } }, maximum: initial)
            files.append(File(name: "adalora-ranks-\(label).svg", contents: svg))
        }
        return files + [File(name: "adalora-ranks.csv", contents: table)]
    }
}
