import LoRABenchTraining
import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO

/// DoRA as a manifest variant (`- dora`): the layer in `DoRA.swift`, peft's LORA layout with
/// `use_dora` and each module's `lora_magnitude_vector` [out].
public struct DoRAVariant: Variant, PeftCodec {
    public static let name = "dora"
    public static let summary = "DoRA (Liu et al. 2024): m · (W0 + s·B·A)/‖W0 + s·B·A‖, the norm detached in backward"
    public static let keys: [String] = []

    public init(settings: any SettingsReader) throws {}

    public var label: String { Self.name }
    public var layerKind: String { "dora" }
    public var axes: VariantAxes { .factorAdapter }

    public func plan(for run: RunShape) throws -> any AdapterPlan {
        FactorPlan(run: run, makeLayer: { try DoRA(base: $0, config: $1, seed: $2) },
                   export: { try DoRAVariant.peftAdapter(layers: $0, run: $1, rank: $1.rank) })
    }

    /// DoRA layers in peft's layout (also svd-prune's DoRA layers, at their pruned ranks).
    static func peftAdapter(layers: [NamedAdapter], run: RunShape, rank: Int) throws -> PeftAdapter {
        try LoRALayout.adapter(layers: layers, run: run, rank: rank, useDoRA: true) { layer in
            guard let dora = layer as? DoRA else { return [:] }
            return ["lora_magnitude_vector": TensorToWrite(dora.magnitude.value, shape: [dora.outFeatures])]
        }
    }

    // MARK: peft codec

    public static func decodes(_ config: PeftConfig) throws -> Bool { try LoRALayout.decodes(config, useDoRA: true) }
    public static var moduleMarkers: [String] { LoRALayout.moduleMarkers }

    public static func adapter(for module: String, base: FrozenLinear, from checkpoint: PeftTensors) throws -> any Adapter {
        let (a, b, scaling) = try LoRALayout.factors(module, base: base, from: checkpoint)
        let magnitude = try checkpoint.tensor(module, "lora_magnitude_vector", shape: [base.outFeatures])
        return try DoRA(base: base, a: a, b: b, magnitude: magnitude, scaling: scaling)
    }
}
