import Foundation
import LoRABenchAdapters
import LoRABenchModels
import LoRABenchTensorIO
import LoRABenchVariants

extension BertEncoder {
    /// Loads `config.json` and `model.safetensors` of a fetched model, with the registered variant
    /// called `variant` (at its default settings) on the Linears `run.targetModules` selects, all
    /// six module types when it names none; no adapters when `variant` is nil.
    public convenience init(files: ModelFiles, labelCount: Int, seed: UInt64, variant: String? = nil,
                            run: RunShape = RunShape(rank: 8, alpha: 16, steps: 100), bias: BiasMode = .none) throws {
        let config = try BertConfig(contentsOf: URL(fileURLWithPath: files.configPath))
        let targets = run.targetModules.isEmpty ? BertEncoder.allLinearTargets : run.targetModules
        let builder = try variant.flatMap { name in
            try VariantRegistry.plan(named: name, for: run).layerBuilder(for: BertEncoder.targeted(targets, of: config))
        }
        try self.init(config: config, weights: SafetensorsFile(path: files.weightsPath), labelCount: labelCount, seed: seed,
                      adapters: builder, bias: bias, targetModules: targets)
    }
}
