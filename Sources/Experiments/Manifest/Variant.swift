import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchTensorIO
import Yams

/// One entry of `sweep.variants`: a registered variant, an optional optimizer policy, a label
/// and a learning rate. `- lora`, `- loraplus` (a policy's name stands for LoRA trained with
/// it), `- {name: dora, loraplus: {lr_ratio: 4}, label: dora-lp4}`, `- {name: adalora, mode: svd-prune}`.
/// The variant and the policy read their own keys; this type knows none of them.
public struct VariantSpec {
    /// The `variant` column and the first part of run ids.
    public var label: String
    /// The entry's `name`.
    public let name: String
    public let variant: any Variant
    public let policy: (any OptimizerPolicy)?
    /// Overrides `training.learning_rate` for this variant: one value or an axis of several.
    public var learningRates: [Double]?
    /// Overrides `sweep.ranks` for this variant (an extra arm at one rank: `ranks: [64]`).
    public var ranks: [Int]?
    /// Overrides `sweep.use_rslora` for this variant.
    public var useRSLoRA: [Bool]?
    /// The YAML node of each of `ranks`, for errors found when a run resolves it.
    package var rankNodes: [ManifestNode] = []
    /// Overrides the sweep's `init` axis for this variant (`{name: lora, init: olora, label: olora}`).
    public var initialization: AdapterInit?
    /// Where the entry is, for errors found when a run resolves it.
    package let location: ManifestNode

    static let commonKeys = ["name", "label", "learning_rate", "init", "ranks", "use_rslora"]

    package init(_ node: ManifestNode) throws {
        let names = VariantRegistry.entryNames
        let policyNames = VariantRegistry.optimizerPolicies.map { $0.name }
        let nameNode: ManifestNode
        var raw: Node.Mapping?
        if case let .mapping(mapping) = node.node {
            guard let value = mapping["name"] else {
                throw node.error(allowed: "a variant with a 'name' (\(names.joined(separator: ", ")))", found: "a mapping without 'name'")
            }
            nameNode = ManifestNode(node: value, keyPath: node.child("name"), file: node.file)
            raw = mapping
        } else {
            nameNode = node
        }
        let name = try nameNode.choice(names)
        // A policy's name alone stands for the base variant trained with that policy, its keys in the entry itself.
        let namedPolicy = VariantRegistry.optimizerPolicy(named: name)
        let variantType = VariantRegistry.variant(named: name) ?? VariantRegistry.policyBaseVariant
        let keys = Self.commonKeys + variantType.keys + (namedPolicy?.keys ?? policyNames)
        let block = raw == nil ? nil : try node.mapping(keys: keys)
        let settings = ManifestSettings(block: block, entry: node)
        self.name = name
        self.location = node
        self.variant = try variantType.init(settings: settings)
        if let namedPolicy {
            policy = try namedPolicy.init(settings: settings)
        } else {
            let given = try policyNames.compactMap { policyName -> (any OptimizerPolicy)? in
                guard let policyType = VariantRegistry.optimizerPolicy(named: policyName),
                      let nested = try settings.block(policyName, keys: policyType.keys) else { return nil }
                return try policyType.init(settings: nested)
            }
            if given.count > 1, let second = block?.optional(type(of: given[1]).name) {
                throw second.error(allowed: "at most one optimizer policy per variant", found: given.map { type(of: $0).name }.joined(separator: " and "))
            }
            policy = given.first
        }
        label = namedPolicy != nil ? name : ([variant.label] + (policy.map { [type(of: $0).name] } ?? [])).joined(separator: "-")
        if let value = block?.optional("learning_rate") { learningRates = try TrainingSettings.parseLearningRates(value) }
        if let value = block?.optional("ranks") {
            guard variant.axes.contains(.rank) else {
                throw value.error(allowed: "no ranks for \(name): it has no adapters", found: value.foundDescription)
            }
            rankNodes = try value.axis(allowed: SweepAxes.rankAllowed)
            ranks = try SweepAxes.parseRanks(rankNodes)
        }
        if let value = block?.optional("use_rslora") {
            guard variant.axes.contains(.rsLoRA) else {
                throw value.error(allowed: "no use_rslora for \(name): its scaling has no α/r", found: value.foundDescription)
            }
            useRSLoRA = try value.axis(allowed: "true, false, or [false, true]").map { try $0.bool() }
        }
        if let value = block?.optional("init") {
            guard variant.axes.contains(.initialization) else {
                throw value.error(allowed: "no init for \(name): it has its own initialisation", found: value.foundDescription)
            }
            let names = VariantRegistry.initializations.map { $0.name }
            initialization = try AdapterInit(named: try value.choice(names))
        }
        if let value = block?.optional("label") {
            label = try value.string(allowed: "a label of " + FileName.allowed)
            guard FileName.isSafe(label) else {
                throw value.error(allowed: "a label of \(FileName.allowed) (it becomes part of run ids and paths)")
            }
        }
    }

    public var axes: VariantAxes { variant.axes }

    /// The first (with an axis) or only learning rate this entry sets, if it sets one.
    public var learningRate: Double? { learningRates?.first }

    /// Whether the run builds adapters at all; a variant without the rank axis (`head_only`)
    /// does not, so every adapter axis collapses to one `n/a` run per seed.
    public var hasAdapters: Bool { axes.contains(.rank) }

    /// The run's concrete settings at `learningRate` (one of this entry's or the training
    /// block's); a setting that does not fit the run is an error at the entry.
    public func resolve(_ run: RunShape, learningRate: Double) throws -> ResolvedVariant {
        do {
            return ResolvedVariant(spec: self, plan: try variant.plan(for: run), learningRate: learningRate)
        } catch let AdapterError.invalidSetting(name, value, allowed) {
            throw location.error(allowed: allowed, found: "\(name) = \(value) for a run of rank \(run.rank) and \(run.steps) steps")
        } catch let error as AdapterError {
            throw location.error(allowed: "settings that fit rank \(run.rank) and \(run.steps) steps", found: error.description)
        }
    }
}

/// A variant's settings for one run: its plan, its optimizer, its learning rate.
public struct ResolvedVariant {
    public let spec: VariantSpec
    public let plan: any AdapterPlan
    /// The base learning rate (A's with LoRA+).
    public let learningRate: Double

    public var label: String { spec.label }
    public var adapterRank: Int { plan.adapterRank }

    /// The optimizer over the model's trainable parameters, after the policy has prepared the
    /// layers (LoRA-FA freezes A, so it must run before the parameters are collected).
    public func makeOptimizer(layers: [NamedAdapter], parameters: () -> [Parameter], weightDecay: Double) throws -> AdamW {
        guard let policy = spec.policy else {
            return AdamW(groups: [ParameterGroup(name: "all", parameters: parameters(), learningRate: Float(learningRate),
                                                 weightDecay: Float(weightDecay))])
        }
        try policy.prepare(layers)
        return try policy.makeOptimizer(parameters: parameters(), layers: layers, learningRate: Float(learningRate),
                                        weightDecay: Float(weightDecay))
    }

    /// The variant block of settings.yaml: every setting with its default filled in.
    public var resolved: Node {
        var pairs: [(String, Node)] = [
            ("label", Settings.text(spec.label)),
            ("name", Settings.text(spec.name)),
            ("adapter", Settings.text(spec.variant.layerKind)),
            ("learning_rate", Settings.number(learningRate)),
        ]
        for (key, value) in (spec.policy?.settings ?? []) + plan.settings { pairs.append((key, Node(value.text))) }
        return Settings.map(pairs)
    }
}

/// A variant entry's keys as a variant reads them (`SettingsReader`), each error located at
/// the key's line in the manifest.
struct ManifestSettings: SettingsReader {
    let block: ManifestMapping?
    let entry: ManifestNode

    func int(_ key: String, allowed: String, in range: ClosedRange<Int>) throws -> Int? {
        try block?.optional(key)?.int(allowed: allowed, in: range)
    }

    func number(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> Double? {
        try block?.optional(key)?.number(allowed: allowed, where: isValid)
    }

    func bool(_ key: String) throws -> Bool? { try block?.optional(key)?.bool() }

    func choice(_ key: String, from options: [String]) throws -> String? { try block?.optional(key)?.choice(options) }

    func scaledValue(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> ScaledValue? {
        try block?.optional(key).map { try ScaledValue.parse($0, allowed: allowed, where: isValid) }
    }

    func block(_ key: String, keys: [String]) throws -> (any SettingsReader)? {
        guard let value = block?.optional(key) else { return nil }
        if case .scalar = value.node {
            guard try value.bool() else { return nil }
            return ManifestSettings(block: nil, entry: value)
        }
        return ManifestSettings(block: try value.mapping(keys: keys), entry: value)
    }

    func reject(_ keys: [String], because why: String) throws {
        guard let block else { return }
        for key in keys {
            if let value = block.entries.first(where: { $0.key == key })?.value {
                throw value.error(allowed: "not '\(key)' here: \(why)", found: "'\(key)'")
            }
        }
    }
}
