import Foundation
import LoRABenchAdapters
import LoRABenchModels
import LoRABenchTensorIO
import LoRABenchVariants

extension BertEncoder {
    /// Loads `config.json` and `model.safetensors` of a fetched model, with `plan`'s adapters on the
    /// Linears `targetModules` selects (no adapters when `plan` is nil).
    public convenience init(files: ModelFiles, labelCount: Int, seed: UInt64, plan: (any AdapterPlan)? = nil,
                            targetModules: [String] = BertEncoder.allLinearTargets, bias: BiasMode = .none,
                            baseFormat: BaseWeightFormat = .float32) throws {
        let config = try BertConfig(contentsOf: URL(fileURLWithPath: files.configPath))
        try self.init(config: config, weights: SafetensorsFile(path: files.weightsPath), labelCount: labelCount, seed: seed,
                      adapters: try plan?.layerBuilder(for: BertEncoder.targeted(targetModules, of: config)), bias: bias,
                      targetModules: targetModules, baseFormat: baseFormat)
    }
}
