import Foundation

/// A run's trained adapter in peft's layout: the adapters under their peft module names, the
/// `adapter_config.json` that reproduces their scaling, and the head saved as `modules_to_save`.
struct PeftExport {
    let adapters: [NamedAdapter]
    let config: PeftConfig
    let savedTensors: [String: TensorToWrite]
    let baseModelSHA256: String?

    /// The config follows the variant:
    /// - LoRA, LoRA+, DoRA: a `LORA` config with the run's r, α, rsLoRA and DoRA flags.
    /// - AdaLoRA peft mode: an `ADALORA` config with init_r, the schedule and the kept triplets
    ///   (`rank_pattern`, keys `<module>.lora_E`; absent before the first masking).
    /// - svd-prune: a `LORA` config of rank r0 with every module's final rank k_l in
    ///   `rank_pattern` and α_l in `alpha_pattern` chosen so that peft's scaling α_l/k_l
    ///   (α_l/√k_l with rsLoRA) equals the α/r0 (α/√r0) the adapter trained with:
    ///   α_l = α·k_l/r0, or α·√(k_l/r0) with rsLoRA.
    /// - head_only: no adapters (`target_modules: []`, r = 0), only the head.
    init(run: RunSpec, model: any PeftExportable, method: any AdaptationMethod) {
        let variant = run.variant
        let r0 = variant.adapterRank
        var config = PeftConfig(peftType: variant.spec.adapterKind == .adalora ? .adalora : .lora, rank: r0,
                                alpha: Float(run.alpha), targetModules: run.targetModules)
        config.dropout = Float(run.dropout)
        config.useRSLoRA = variant.spec.usesFactorInit && run.useRSLoRA
        config.useDoRA = variant.spec.adapterKind == .dora
        config.modulesToSave = model.savedModules.names
        config.baseModelNameOrPath = model.baseModelName
        switch variant.method {
        case .fixed:
            break
        case let .adaloraPeft(schedule):
            config.adalora = PeftConfig.AdaLoRAFields(
                initialRank: r0, targetRank: schedule.targetRank, tinit: schedule.initialWarmup, tfinal: schedule.finalWarmup,
                deltaT: schedule.maskInterval, beta1: schedule.beta1, beta2: schedule.beta2,
                orthRegWeight: schedule.orthogonalRegularization, totalStep: schedule.totalSteps)
            if let allocator = method as? AdaLoRAAllocator, !allocator.rankPattern.isEmpty {
                config.adaloraRankPattern = Dictionary(uniqueKeysWithValues: allocator.rankPattern.map { ("\($0.key).lora_E", $0.value) })
            }
        case .svdPrune:
            let alpha = run.alpha
            for named in model.adapters {
                let k = method.ranks[named.name] ?? r0
                let share = Double(k) / Double(r0)
                config.rankPattern.append((named.name, k))
                config.alphaPattern.append((named.name, Float(alpha * (run.useRSLoRA ? share.squareRoot() : share))))
            }
        }
        self.adapters = model.adapters
        self.config = config
        self.savedTensors = model.savedModules.tensors
        self.baseModelSHA256 = model.baseModelSHA256
    }

    func save(to directory: String) throws {
        try PeftCheckpoint.save(adapters, config: config, to: directory, extraTensors: savedTensors, baseModelSHA256: baseModelSHA256)
    }
}
