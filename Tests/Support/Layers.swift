import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchVariants

/// The registered variants that build adapted layers (every one but `head_only`), for tests that
/// run one battery over all of them, as peft's `TEST_CASES` do.
package let adapterVariantNames: [String] = VariantRegistry.variants.filter { !(try! $0.init(settings: DefaultSettings())).axes.isEmpty }
    .map { $0.name }

/// One layer of the variant called `name`, at its default settings and `config`'s rank, α, init,
/// dropout and bias, built as a run builds it (its plan's layer builder).
package func makeLayer(_ name: String, base: FrozenLinear, config: AdapterConfig = AdapterConfig(), seed: UInt64 = 0) throws -> any Adapter {
    let run = RunShape(rank: config.rank, alpha: Double(config.alpha), steps: 100, initialization: config.initialization,
                       useRSLoRA: config.useRSLoRA, dropout: Double(config.dropout))
    let module = ModuleShape(name: "layer", inFeatures: base.inFeatures, outFeatures: base.outFeatures)
    guard let builder = try VariantRegistry.plan(named: name, for: run).layerBuilder(for: [module]) else {
        throw AdapterError.invalidSetting(name: "variant", value: name, allowed: "a variant that builds layers")
    }
    if config.bias != .none { base.biasIsTrainable = true }
    return try builder.adapter(for: module, base: base, seed: seed)
}
