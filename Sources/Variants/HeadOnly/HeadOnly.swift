import LoRABenchTraining
import LoRABenchAdapters

/// The baseline without adapters (`- head_only`): only the task's head trains, so every adapter
/// axis (rank, α, init, target modules, dropout, rsLoRA) collapses to one run per seed.
public struct HeadOnlyVariant: Variant {
    public static let name = "head_only"
    public static let summary = "no adapters: only the task's head trains (a task that has one)"
    public static let keys: [String] = []

    public init(settings: any SettingsReader) throws {}

    public var label: String { Self.name }
    public var layerKind: String { "none" }
    public var axes: VariantAxes { [] }

    public func plan(for run: RunShape) throws -> any AdapterPlan { Plan() }

    struct Plan: AdapterPlan {
        var adapterRank: Int { 0 }
        var scaling: Float { 0 }
        var settings: SettingList { [] }

        func layerBuilder(for modules: [ModuleShape]) throws -> (any LayerBuilder)? { nil }

        /// No adapted modules (`target_modules: []`, r = 0): the saved adapter holds only the head.
        func peftAdapter(layers: [NamedAdapter], method: any AdaptationMethod) throws -> PeftAdapter {
            var config = LoRALayout.config(run: RunShape(rank: 0, alpha: 0, steps: 0), rank: 0, alpha: 0, useDoRA: false)
            config["target_modules"] = .array([])
            return PeftAdapter(config: config)
        }
    }
}
