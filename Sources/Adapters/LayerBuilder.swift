import LoRABenchKernels

/// One adaptable linear module of a model, as `target_modules` names it.
public struct ModuleShape: Equatable, Sendable {
    public var name: String
    public var inFeatures: Int
    public var outFeatures: Int

    public init(name: String, inFeatures: Int, outFeatures: Int) {
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// The largest rank an adapter of this module may have.
    public var maxRank: Int { min(inFeatures, outFeatures) }

    /// peft's rule: a target matches the module's full name or its last dotted components
    /// (`query` matches `encoder.layer.0.attention.self.query`).
    public func matches(_ target: String) -> Bool { name == target || name.hasSuffix("." + target) }

    /// The names peft's `layers_to_transform` finds a layer index after when `layers_pattern` is
    /// unset (peft's `COMMON_LAYERS_PATTERN`).
    public static let layerPatterns: Set<Substring> = ["layers", "h", "block", "blocks", "layer"]

    /// The N of `….layers.N.…` (`encoder.layer.N.…`, …), as peft finds it; nil for a module
    /// outside numbered layers.
    public var layerIndex: Int? { Self.layerIndex(in: name) }

    public static func layerIndex(in name: String) -> Int? {
        let parts = name.split(separator: ".")
        guard let at = parts.firstIndex(where: layerPatterns.contains), at + 1 < parts.count else { return nil }
        return Int(parts[at + 1])
    }

    /// The name after its layer's index (`self_attn.q_proj`), or the whole name outside layers.
    public var nameInLayer: String {
        let parts = name.split(separator: ".")
        guard let at = parts.firstIndex(where: Self.layerPatterns.contains), at + 2 < parts.count, Int(parts[at + 1]) != nil else {
            return name
        }
        return parts[(at + 2)...].joined(separator: ".")
    }
}

/// An adapter with its module name (peft's naming, e.g. `fc1` or `encoder.layer.0.attention.self.query`).
public struct NamedAdapter {
    public var name: String
    public var adapter: any Adapter

    public init(name: String, adapter: any Adapter) {
        self.name = name
        self.adapter = adapter
    }
}

/// Builds one model's adapters, module by module. One builder serves one model, so state that
/// spans its layers has a home here (VeRA's shared random projections); a model asks it once
/// per targeted Linear, in model order.
public protocol LayerBuilder: AnyObject {
    /// Wraps `base` (the module's frozen Linear) in an adapter; `seed` is the module's own stream.
    func adapter(for module: ModuleShape, base: FrozenLinear, seed: UInt64) throws -> any Adapter
}
