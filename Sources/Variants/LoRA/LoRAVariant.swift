import LoRABenchTraining
import LoRABenchAdapters
import LoRABenchKernels

/// LoRA as a manifest variant (`- lora`): the layer in `LoRA.swift`, peft's LORA layout.
public struct LoRAVariant: Variant, PeftCodec {
    public static let name = "lora"
    public static let summary = "LoRA (Hu et al. 2022): W0 + s·B·A, s = α/r (α/√r with rsLoRA)"
    public static let keys: [String] = []

    public init(settings: any SettingsReader) throws {}

    public var label: String { Self.name }
    public var layerKind: String { "lora" }
    public var axes: VariantAxes { .factorAdapter }

    public func plan(for run: RunShape) throws -> any AdapterPlan {
        FactorPlan(run: run, makeLayer: { try LoRA(base: $0, config: $1, seed: $2) },
                   export: { try LoRALayout.adapter(layers: $0, run: $1, rank: $1.rank, useDoRA: false) })
    }

    // MARK: peft codec

    public static func decodes(_ config: PeftConfig) throws -> Bool { try LoRALayout.decodes(config, useDoRA: false) }
    public static var moduleMarkers: [String] { LoRALayout.moduleMarkers }

    public static func adapter(for module: String, base: FrozenLinear, from checkpoint: PeftTensors) throws -> any Adapter {
        let (a, b, scaling) = try LoRALayout.factors(module, base: base, from: checkpoint)
        return try LoRA(base: base, a: a, b: b, scaling: scaling)
    }
}
