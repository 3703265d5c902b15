import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// The manifest's `sweep:` block: the axes whose Cartesian product is the set of runs. Every
/// axis but `variants` and `ranks` may be a single value (a one-element axis).
public struct SweepAxes {
    public static let keys = ["variants", "ranks", "alpha", "seeds", "init", "target_modules", "layers", "dropout", "use_rslora", "base"]

    public var variants: [VariantSpec]
    public var ranks: [Int]
    /// α per run: a number, or a multiple of the rank (`2r`).
    public var alphas: [ScaledValue] = [.timesRank(2)]
    public var seeds: [UInt64] = [0]
    public var inits: [AdapterInit] = [.kaiming]
    /// Each entry is one setting: the module names (or peft-style suffixes) to adapt.
    public var targetModules: [[String]]
    /// peft's `layers_to_transform`: the targets are adapted in these layers only (nil: all). One
    /// setting for the whole sweep, so runs differing only here never share a CSV cell.
    public var layers: Set<Int>?
    public var dropouts: [Double] = [0]
    public var useRSLoRA: [Bool] = [false]
    /// The frozen base's weight format per run: `model.base`, or the axis `base: [fp32, nf4]`
    /// (NF4 with `model`'s block size and double quantization).
    public var bases: [BaseWeightFormat]
    /// The YAML node of each rank, for errors found when a run resolves it.
    package let rankNodes: [ManifestNode]

    /// `model` is the manifest's model block: its base format, and the NF4 settings a `base` axis uses.
    package init(_ node: ManifestNode, modules: [ModuleShape], model: ModelSettings) throws {
        let block = try node.mapping(keys: Self.keys)
        let variantsAllowed = "a list of variants: " + VariantRegistry.entryNames.joined(separator: ", ")
        variants = try block.required("variants", allowed: variantsAllowed).axis(allowed: variantsAllowed, valuesAreMappings: true).map(VariantSpec.init)
        var labels: [String: Int] = [:]
        for (index, variant) in variants.enumerated() {
            if let first = labels[variant.label] {
                throw variant.location.error(allowed: "distinct variant labels; add `label:` to tell them apart",
                                             found: "a second variant labelled '\(variant.label)' (the first is variants[\(first)])")
            }
            labels[variant.label] = index
        }

        rankNodes = try block.required("ranks", allowed: Self.rankAllowed).axis(allowed: Self.rankAllowed)
        ranks = try Self.parseRanks(rankNodes)
        targetModules = [modules.map(\.name)]

        if let value = block.optional("alpha") {
            let allowed = "a number > 0 or a multiple of the rank such as 2r or r (or a list of them)"
            alphas = try value.axis(allowed: allowed).map { try ScaledValue.parse($0, allowed: allowed, where: { $0 > 0 }) }
        }
        if let value = block.optional("seeds") {
            let nodes = try value.axis(allowed: "a list of integers ≥ 0")
            seeds = try nodes.map { UInt64(try $0.int(allowed: "an integer ≥ 0", in: 0...Int.max)) }
            try Self.rejectRepeats(seeds, at: nodes, what: "seed")
        }
        if let value = block.optional("init") {
            let names = VariantRegistry.initializations.map { $0.name }
            inits = try value.axis(allowed: names.joined(separator: ", ")).map { try AdapterInit(named: try $0.choice(names)) }
        }
        if let value = block.optional("target_modules") { targetModules = try Self.parseTargets(value, modules: modules) }
        if let value = block.optional("layers") { layers = try Self.parseLayers(value, modules: modules) }
        if let value = block.optional("dropout") {
            dropouts = try value.axis(allowed: "a number in [0, 1) or a list of them")
                .map { try $0.number(allowed: "a number in [0, 1)", where: { $0 >= 0 && $0 < 1 }) }
        }
        if let value = block.optional("use_rslora") {
            useRSLoRA = try value.axis(allowed: "true, false, or [false, true]").map { try $0.bool() }
        }
        bases = [model.base]
        if let value = block.optional("base") {
            let nodes = try value.axis(allowed: model.baseChoices.joined(separator: ", ") + ", or a list of them")
            bases = try nodes.map { try model.format($0.choice(model.baseChoices)) }
            try Self.rejectRepeats(bases, at: nodes, what: "base")
        }
    }

    /// Whether the experiment's CSVs carry a `base` column.
    public var showsBase: Bool { bases.contains { $0 != .float32 } }

    package static let rankAllowed = "a list of integers ≥ 1, e.g. [4, 8, 16, 64]"

    /// Distinct integers ≥ 1.
    package static func parseRanks(_ nodes: [ManifestNode]) throws -> [Int] {
        let ranks = try nodes.map { try $0.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        try rejectRepeats(ranks, at: nodes, what: "rank")
        return ranks
    }

    /// A repeated rank or seed would repeat runs under the same id.
    private static func rejectRepeats<T: Hashable>(_ values: [T], at nodes: [ManifestNode], what: String) throws {
        var seen = Set<T>()
        for (value, node) in zip(values, nodes) where !seen.insert(value).inserted {
            throw node.error(allowed: "distinct values", found: "\(what) \(value) a second time")
        }
    }

    /// A layer index or a list of them, each a layer of the model (peft's `layers_to_transform`).
    private static func parseLayers(_ node: ManifestNode, modules: [ModuleShape]) throws -> Set<Int> {
        let indices = Set(modules.compactMap(\.layerIndex))
        guard let last = indices.max() else {
            throw node.error(allowed: "no layers key: this task's modules (\(modules.map(\.name).joined(separator: ", "))) are not in numbered layers",
                             found: "layers")
        }
        let allowed = "a layer index from 0 to \(last), or a list of them"
        let nodes = try node.axis(allowed: allowed)
        let layers = try nodes.map { try $0.int(allowed: allowed, in: 0...last) }
        try rejectRepeats(layers, at: nodes, what: "layer")
        return Set(layers)
    }

    /// `[fc1, fc2]` is one setting; `[[fc1], [fc1, fc2]]` is an axis of two; `all` is every module.
    private static func parseTargets(_ node: ManifestNode, modules: [ModuleShape]) throws -> [[String]] {
        let names = modules.map(\.name)
        // A layer's modules stand for all of them: a decoder has 210, listed once as 7.
        var inLayer: [String] = []
        for name in modules.map(\.nameInLayer) where !inLayer.contains(name) { inLayer.append(name) }
        let entryAllowed = inLayer == names ? names.joined(separator: ", ")
            : inLayer.joined(separator: ", ") + ", or a module's full name such as \(names[0])"
        let allowed = "all, a list of module names (\(entryAllowed)), or a list of such lists"
        func targets(_ node: ManifestNode) throws -> [String] {
            if case .scalar = node.node, (try? node.string(allowed: allowed)) == "all" { return names }
            return try node.axis(allowed: allowed).map { entry in
                let target = try entry.string(allowed: entryAllowed)
                guard modules.contains(where: { $0.matches(target) }) else {
                    throw entry.error(allowed: entryAllowed, suggestion: closestMatch(to: target, in: inLayer + names))
                }
                return target
            }
        }
        if case let .sequence(sequence) = node.node, let first = sequence.first, case .sequence = first {
            return try node.list(allowed: allowed).map(targets)
        }
        return [try targets(node)]
    }
}
