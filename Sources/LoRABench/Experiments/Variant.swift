import Yams

/// One entry of `sweep.variants`: which adapter, which optimizer grouping, which rank policy.
/// Settings that depend on the run (its rank, the number of steps) stay rules here and are
/// resolved per run by `resolve(rank:steps:)`.
public struct VariantSpec {
    public enum Name: String, CaseIterable, Sendable {
        case lora, loraplus, dora, adalora
        /// The baseline without adapters: only the task's head trains (a task that has one).
        case headOnly = "head_only"
    }

    /// How the rank evolves during training.
    public enum RankPolicy: Equatable {
        case fixed
        case adaloraPeft(AdaLoRAPeft)
        case svdPrune(SVDPrune)
    }

    /// peft's AdaLoRA (`AdaLoraConfig`); nil step counts default from the run's steps.
    public struct AdaLoRAPeft: Equatable {
        public var initRank: ScaledValue = .timesRank(1.5)
        public var targetRank: ScaledValue = .timesRank(1)
        public var tinit: Int?
        public var tfinal: Int?
        public var deltaT = 10
        public var beta1 = 0.85
        public var beta2 = 0.85
        public var orthRegWeight = 0.5
    }

    /// LoRABench's svd-prune mode; nil step counts default from the run's steps.
    public struct SVDPrune: Equatable {
        public var interval: Int?
        public var energyThreshold = 0.95
        public var minRank = 1
        public var maxRank: ScaledValue = .timesRank(1)
        public var startStep: Int?
        public var stopStep: Int?
        public var optimizerState: OptimizerStatePolicy = .reset
    }

    /// The `variant` column and the first part of run ids.
    public var label: String
    public var name: Name
    /// nil for `head_only`, which builds no adapters.
    public var adapterKind: AdapterKind?
    /// λ of LoRA+ (η_B = λ·η_A); nil trains every parameter at the base learning rate.
    public var loraPlusRatio: Double?
    /// Overrides `training.learning_rate` for this variant (AdaLoRA and LoRA+ like other rates).
    public var learningRate: Double?
    public var rankPolicy: RankPolicy
    /// Where the entry is, for errors found when a run resolves it.
    let location: ManifestNode

    static let commonKeys = ["name", "label", "learning_rate"]
    static let peftKeys = ["init_r", "target_r", "tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight"]
    static let svdKeys = ["interval", "energy_threshold", "min_rank", "max_rank", "start_step", "stop_step", "optimizer_state", "dora"]
    static let modes = ["peft", "svd-prune"]

    /// `- lora` (defaults) or `- {name: adalora, mode: svd-prune, interval: 50, …}`.
    init(_ node: ManifestNode) throws {
        let names = Name.allCases.map(\.rawValue)
        guard case let .mapping(raw) = node.node else {
            let name = try node.choice(names)
            self.init(name: Name(rawValue: name)!, mode: nil, block: nil, location: node)
            return
        }
        guard let nameNode = raw["name"] else {
            throw node.error(allowed: "a variant with a 'name' (\(names.joined(separator: ", ")))",
                             found: "a mapping without 'name'")
        }
        let name = Name(rawValue: try ManifestNode(node: nameNode, keyPath: node.child("name"), file: node.file).choice(names))!
        var mode: String?
        if name == .adalora, let modeNode = raw["mode"] {
            mode = try ManifestNode(node: modeNode, keyPath: node.child("mode"), file: node.file).choice(Self.modes)
        }
        let block = try node.mapping(keys: Self.keys(for: name, mode: mode))
        self.init(name: name, mode: mode, block: block, location: node)
        try parseSettings(block)
    }

    private init(name: Name, mode: String?, block: ManifestMapping?, location: ManifestNode) {
        self.name = name
        self.location = location
        self.label = name.rawValue
        switch name {
        case .lora, .loraplus: adapterKind = .lora
        case .dora: adapterKind = .dora
        case .adalora: adapterKind = mode == "svd-prune" ? .lora : .adalora
        case .headOnly: adapterKind = nil
        }
        loraPlusRatio = name == .loraplus ? 16 : nil
        switch (name, mode) {
        case (.adalora, "svd-prune"): rankPolicy = .svdPrune(SVDPrune())
        case (.adalora, _): rankPolicy = .adaloraPeft(AdaLoRAPeft())
        default: rankPolicy = .fixed
        }
        label = defaultLabel
    }

    static func keys(for name: Name, mode: String?) -> [String] {
        switch name {
        case .lora, .dora: return commonKeys + ["loraplus"]
        case .loraplus: return commonKeys + ["lr_ratio"]
        case .adalora: return commonKeys + ["mode", "loraplus"] + (mode == "svd-prune" ? svdKeys : peftKeys)
        case .headOnly: return commonKeys
        }
    }

    private mutating func parseSettings(_ block: ManifestMapping) throws {
        if let value = block.optional("learning_rate") {
            learningRate = try value.number(allowed: "a number > 0 (e.g. 1e-3)", where: { $0 > 0 })
        }
        let ratioAllowed = "a number > 0 (LoRA+ λ: B learns at λ × learning_rate)"
        if let value = block.optional("lr_ratio") { loraPlusRatio = try value.number(allowed: ratioAllowed, where: { $0 > 0 }) }
        if let value = block.optional("loraplus") {
            let nested = try value.mapping(keys: ["lr_ratio"])
            loraPlusRatio = try nested.optional("lr_ratio").map { try $0.number(allowed: ratioAllowed, where: { $0 > 0 }) } ?? 16
        }
        switch rankPolicy {
        case .fixed: break
        case var .adaloraPeft(peft):
            try parsePeft(&peft, block)
            rankPolicy = .adaloraPeft(peft)
        case var .svdPrune(svd):
            try parseSVD(&svd, block)
            rankPolicy = .svdPrune(svd)
        }
        label = defaultLabel
        if let value = block.optional("label") {
            label = try value.string(allowed: "a label of letters, digits, '.', '_' and '-'")
            guard label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw value.error(allowed: "a label of letters, digits, '.', '_' and '-' (it becomes part of run ids and paths)")
            }
        }
    }

    private func parsePeft(_ peft: inout AdaLoRAPeft, _ block: ManifestMapping) throws {
        let rankAllowed = "an integer ≥ 1, or a multiple of the run's rank such as r or 1.5r"
        if let value = block.optional("init_r") { peft.initRank = try ScaledValue.parse(value, allowed: rankAllowed, where: Self.isWholeRank) }
        if let value = block.optional("target_r") { peft.targetRank = try ScaledValue.parse(value, allowed: rankAllowed, where: Self.isWholeRank) }
        if let value = block.optional("tinit") { peft.tinit = try value.int(allowed: "an integer ≥ 0 (warm-up steps)", in: 0...Int.max) }
        if let value = block.optional("tfinal") { peft.tfinal = try value.int(allowed: "an integer ≥ 0 (final steps)", in: 0...Int.max) }
        if let value = block.optional("deltaT") { peft.deltaT = try value.int(allowed: "an integer ≥ 1 (steps between maskings)", in: 1...Int.max) }
        let betaAllowed = "a number in (0, 1)"
        if let value = block.optional("beta1") { peft.beta1 = try value.number(allowed: betaAllowed, where: { $0 > 0 && $0 < 1 }) }
        if let value = block.optional("beta2") { peft.beta2 = try value.number(allowed: betaAllowed, where: { $0 > 0 && $0 < 1 }) }
        if let value = block.optional("orth_reg_weight") {
            peft.orthRegWeight = try value.number(allowed: "a number ≥ 0", where: { $0 >= 0 })
        }
    }

    private mutating func parseSVD(_ svd: inout SVDPrune, _ block: ManifestMapping) throws {
        if let value = block.optional("interval") { svd.interval = try value.int(allowed: "an integer ≥ 1 (steps)", in: 1...Int.max) }
        if let value = block.optional("energy_threshold") {
            svd.energyThreshold = try value.number(allowed: "a number in (0, 1] (share of Σσ² kept)", where: { $0 > 0 && $0 <= 1 })
        }
        if let value = block.optional("min_rank") { svd.minRank = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("max_rank") {
            svd.maxRank = try ScaledValue.parse(value, allowed: "an integer ≥ 1, or a multiple of the run's rank such as r",
                                                where: Self.isWholeRank)
        }
        if let value = block.optional("start_step") { svd.startStep = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("stop_step") { svd.stopStep = try value.int(allowed: "an integer ≥ 1", in: 1...Int.max) }
        if let value = block.optional("optimizer_state") {
            svd.optimizerState = OptimizerStatePolicy(rawValue: try value.choice(OptimizerStatePolicy.allCases.map(\.rawValue)))!
        }
        if let value = block.optional("dora"), try value.bool() { adapterKind = .dora }
    }

    private static func isWholeRank(_ value: Double) -> Bool { value >= 1 && value.rounded() == value }

    /// lora, loraplus, dora, dora-loraplus, adalora-peft, adalora-svd, adalora-svd-dora, …
    private var defaultLabel: String {
        var parts: [String]
        switch rankPolicy {
        case .fixed: parts = [name.rawValue]
        case .adaloraPeft: parts = ["adalora-peft"]
        case .svdPrune: parts = ["adalora-svd"] + (adapterKind == .dora ? ["dora"] : [])
        }
        if loraPlusRatio != nil, name != .loraplus { parts.append("loraplus") }
        return parts.joined(separator: "-")
    }

    /// Whether the `init` and `use_rslora` axes change this variant's runs: AdaLoRA's peft layer
    /// has its own initialisation (P, Q ~ N(0, 0.02²), Λ = 0) and scaling α/r0, and `head_only`
    /// has no adapters.
    public var usesFactorInit: Bool { adapterKind == .lora || adapterKind == .dora }

    /// Whether the run builds adapters at all; `head_only` does not, so every adapter axis
    /// (rank, α, init, target modules, dropout, rsLoRA) collapses to one `n/a` run per seed.
    public var hasAdapters: Bool { adapterKind != nil }

    /// The run's concrete settings at rank `rank` under `training`.
    public func resolve(rank: Int, training: TrainingSettings) throws -> ResolvedVariant {
        let steps = training.steps
        let learningRate = self.learningRate ?? training.learningRate
        do {
            switch rankPolicy {
            case .fixed:
                return ResolvedVariant(spec: self, adapterRank: rank, learningRate: learningRate, method: .fixed)
            case let .adaloraPeft(peft):
                let initRank = peft.initRank.rank(for: rank)
                let schedule = try AdaLoRASchedule(
                    targetRank: peft.targetRank.rank(for: rank), initialWarmup: peft.tinit ?? steps / 10,
                    finalWarmup: peft.tfinal ?? steps / 5, maskInterval: peft.deltaT, beta1: Float(peft.beta1),
                    beta2: Float(peft.beta2), orthogonalRegularization: Float(peft.orthRegWeight), totalSteps: steps)
                guard schedule.targetRank <= initRank else {
                    throw location.error(allowed: "target_r ≤ init_r", found: "target_r = \(schedule.targetRank) > init_r = \(initRank) at rank \(rank)")
                }
                return ResolvedVariant(spec: self, adapterRank: initRank, learningRate: learningRate, method: .adaloraPeft(schedule))
            case let .svdPrune(svd):
                let interval = svd.interval ?? max(1, steps / 20)
                let start = svd.startStep ?? max(interval, steps / 5)
                let settings = try SVDPruneSettings(
                    interval: interval, energy: Float(svd.energyThreshold), minRank: svd.minRank,
                    maxRank: min(svd.maxRank.rank(for: rank), rank), startStep: start,
                    stopStep: svd.stopStep ?? max(start, steps * 7 / 10), optimizerState: svd.optimizerState)
                return ResolvedVariant(spec: self, adapterRank: rank, learningRate: learningRate, method: .svdPrune(settings))
            }
        } catch let AdapterError.invalidSetting(name, value, allowed) {
            throw location.error(allowed: allowed, found: "\(name) = \(value) for a run of rank \(rank) and \(steps) steps")
        } catch let error as AdapterError {
            throw location.error(allowed: "settings that fit rank \(rank) and \(steps) steps", found: error.description)
        }
    }
}

/// A variant's settings for one run: everything needed to build its adapters, optimizer groups
/// and adaptation method.
public struct ResolvedVariant {
    public enum Method {
        case fixed
        case adaloraPeft(AdaLoRASchedule)
        case svdPrune(SVDPruneSettings)
    }

    public let spec: VariantSpec
    /// The rank adapters are built with (AdaLoRA peft: init_r).
    public let adapterRank: Int
    /// The base learning rate (A's with LoRA+).
    public let learningRate: Double
    public let method: Method

    public var label: String { spec.label }
    public var grouping: GroupingPolicy { spec.loraPlusRatio.map { .loraPlus(ratio: Float($0)) } ?? .uniform }
    /// Whether the rank can change during training (the runner then logs `rank/<module>`).
    public var isAdaptive: Bool {
        if case .fixed = method { return false }
        return true
    }

    public func makeMethod(layers: [NamedAdapter]) throws -> any AdaptationMethod {
        switch method {
        case .fixed: return FixedRankMethod(layers: layers)
        case let .adaloraPeft(schedule): return try AdaLoRAAllocator(layers: layers, schedule: schedule)
        case let .svdPrune(settings): return try SVDPruneMethod(layers: layers, settings: settings)
        }
    }

    /// The variant block of settings.yaml: every setting with its default filled in.
    public var resolved: Node {
        var pairs: [(String, Node)] = [
            ("label", Settings.text(spec.label)),
            ("name", Settings.text(spec.name.rawValue)),
            ("adapter", Settings.text(spec.adapterKind?.rawValue ?? "none")),
            ("learning_rate", Settings.number(learningRate)),
        ]
        if let ratio = spec.loraPlusRatio { pairs.append(("loraplus_lr_ratio", Settings.number(ratio))) }
        switch method {
        case .fixed:
            break
        case let .adaloraPeft(schedule):
            pairs += [
                ("mode", Settings.text("peft")),
                ("init_r", Settings.int(adapterRank)),
                ("target_r", Settings.int(schedule.targetRank)),
                ("tinit", Settings.int(schedule.initialWarmup)),
                ("tfinal", Settings.int(schedule.finalWarmup)),
                ("deltaT", Settings.int(schedule.maskInterval)),
                ("beta1", Settings.float(schedule.beta1)),
                ("beta2", Settings.float(schedule.beta2)),
                ("orth_reg_weight", Settings.float(schedule.orthogonalRegularization)),
            ]
        case let .svdPrune(settings):
            pairs += [
                ("mode", Settings.text("svd-prune")),
                ("interval", Settings.int(settings.interval)),
                ("energy_threshold", Settings.float(settings.energy)),
                ("min_rank", Settings.int(settings.minRank)),
                ("max_rank", Settings.int(settings.maxRank)),
                ("start_step", Settings.int(settings.startStep)),
                ("stop_step", Settings.int(settings.stopStep)),
                ("optimizer_state", Settings.text(settings.optimizerState.rawValue)),
            ]
        }
        return Settings.map(pairs)
    }
}
