import LoRABenchAdapters

/// The one list of what LoRABench can train and load. Adding a variant, an optimizer policy or an
/// initialisation is one line here plus its own file or folder; nothing else names them.
public enum VariantRegistry {
    public static let variants: [any Variant.Type] = [
        LoRAVariant.self,
        DoRAVariant.self,
        AdaLoRAVariant.self,
        VeRAVariant.self,
        HeadOnlyVariant.self,
    ]

    public static let optimizerPolicies: [any OptimizerPolicy.Type] = [
        LoRAPlus.self,
        LoRAFA.self,
    ]

    public static let initializations: [any FactorInitialization.Type] = [
        KaimingInit.self,
        GaussianInit.self,
        PiSSAInit.self,
        OLoRAInit.self,
        ZeroAInit.self,
        BothGaussianInit.self,
    ]

    public static func variant(named name: String) -> (any Variant.Type)? { variants.first { $0.name == name } }

    public static func optimizerPolicy(named name: String) -> (any OptimizerPolicy.Type)? {
        optimizerPolicies.first { $0.name == name }
    }

    /// Every name a manifest's variant entry may have: the variants, then the policies (which
    /// stand for LoRA trained with them).
    public static var entryNames: [String] { variants.map { $0.name } + optimizerPolicies.map { $0.name } }

    /// The variant a policy's name stands for when it is the entry's name (`- loraplus`).
    public static let policyBaseVariant: any Variant.Type = LoRAVariant.self

    /// Every entry with its summary and manifest keys, as `lorabench variants` prints it.
    public static var catalog: String {
        func keys(_ keys: [String]) -> String { keys.isEmpty ? "" : "\n      keys: " + keys.joined(separator: ", ") }
        let sections = [
            ("variants (`- <name>` in sweep.variants)", variants.map { "  \($0.name): \($0.summary)\(keys($0.keys))" }),
            ("optimizer policies (`- <name>` for LoRA with it, or `<name>: {…}` in another variant)",
             optimizerPolicies.map { "  \($0.name): \($0.summary)\(keys($0.keys))" }),
            ("initialisations (sweep.init, or a variant's init)", initializations.map { "  \($0.name): \($0.summary)" }),
        ]
        return sections.map { title, lines in ([title] + lines).joined(separator: "\n") }.joined(separator: "\n\n")
    }

    /// The plan of the variant called `name` at its default settings, for one run.
    public static func plan(named name: String, for run: RunShape) throws -> any AdapterPlan {
        guard let variant = variant(named: name) else {
            throw AdapterError.invalidSetting(name: "variant", value: name, allowed: "one of \(variants.map { $0.name }.joined(separator: ", "))")
        }
        return try variant.init(settings: DefaultSettings()).plan(for: run)
    }

    /// The variants that read checkpoints back from peft's layout.
    public static var peftCodecs: [any PeftCodec.Type] { variants.compactMap { $0 as? any PeftCodec.Type } }

    /// The codec for a checkpoint's config; an unknown type is an error naming what is known.
    public static func codec(for config: PeftConfig) throws -> any PeftCodec.Type {
        for codec in peftCodecs where try codec.decodes(config) { return codec }
        throw CheckpointError.unknownPeftType(path: config.path, found: "peft_type \(config.peftType)",
                                              known: peftCodecs.map { "\($0)" })
    }
}
