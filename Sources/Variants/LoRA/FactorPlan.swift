import LoRABenchAdapters
import LoRABenchTraining

/// The plan of a variant whose layers carry LoRA's factors at a fixed rank (LoRA, DoRA): one
/// layer per module from the run's `AdapterConfig`, peft's LORA layout on save.
struct FactorPlan: AdapterPlan {
    let run: RunShape
    /// Builds one layer (`LoRA.init`, `DoRA.init`).
    let makeLayer: @Sendable (FrozenLinear, AdapterConfig, UInt64) throws -> any Adapter
    /// Writes the trained layers (LORA, with `use_dora` and the magnitudes for DoRA).
    let export: @Sendable ([NamedAdapter], RunShape) throws -> PeftAdapter

    var adapterRank: Int { run.rank }
    var scaling: Float { run.adapterConfig().scaling }
    var settings: SettingList { [] }

    func layerBuilder(for modules: [ModuleShape]) throws -> (any LayerBuilder)? {
        let (config, makeLayer) = (run.adapterConfig(), makeLayer)
        return ClosureLayerBuilder { _, base, seed in try makeLayer(base, config, seed) }
    }

    func peftAdapter(layers: [NamedAdapter], method: any AdaptationMethod) throws -> PeftAdapter { try export(layers, run) }
}
