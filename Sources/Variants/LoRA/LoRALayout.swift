import Foundation
import LoRABenchAdapters
import LoRABenchKernels
import LoRABenchTensorIO

/// A layer with LoRA's factors, A [r, in] and B [out, r] at a scaling s (LoRA, DoRA). What works
/// on the factors sees layers through it: svd-prune's re-factoring, LoRA-FA's frozen A, and
/// peft's LORA layout.
public protocol LowRankFactored: LowRankUpdate {
    /// A [r, in].
    var a: Parameter { get }
    /// B [out, r].
    var b: Parameter { get }
    /// A and B as drawn, when the initialisation replaced W0 by a residual (PiSSA, OLoRA).
    var residualInitialization: ResidualInitialization? { get }
}

extension LowRankFactored {
    public var downProjection: Matrix { a.value }
    public var upProjection: Matrix { b.value }
}

/// peft's `LORA` layout (`LoraConfig`), shared by the variants whose layers have LoRA factors:
/// `<module>.lora_A.weight` [r, in], `<module>.lora_B.weight` [out, r], per-module ranks and α in
/// `rank_pattern` / `alpha_pattern`.
public enum LoRALayout {
    /// A `LORA` config with the fields peft 0.21.2 writes; r, α, dropout and rsLoRA as given.
    public static func config(run: RunShape, rank: Int, alpha: Double, useDoRA: Bool) -> PeftConfig {
        var config = PeftConfig(peftType: "LORA", targetModules: run.targetModules)
        config["r"] = .int(rank)
        config["lora_alpha"] = .number(Float(alpha))
        config["lora_dropout"] = .number(run.dropout)
        config["use_rslora"] = .bool(run.useRSLoRA)
        config["use_dora"] = .bool(useDoRA)
        config["lora_bias"] = .bool(false)
        config["init_lora_weights"] = .bool(true)
        config["exclude_modules"] = .null
        config["rank_pattern"] = .object([:])
        config["alpha_pattern"] = .object([:])
        return config
    }

    /// The layers as a `LORA` adapter. Every layer's scaling is the run's s = α/r0 (α/√r0 with
    /// rsLoRA); a layer whose rank k differs from the config's r (svd-prune) gets `rank_pattern`
    /// k and `alpha_pattern` α_k = s·k (s·√k), so that peft's α_k/k equals s.
    ///
    /// A layer whose initialisation replaced W0 by a residual (PiSSA, OLoRA) is written as peft's
    /// `path_initial_model_for_weight_conversion` writes it, so it applies to the original W0:
    /// ΔW = s·(B·A − B0·A0) = s·[B | −B0]·[A ; A0], rank k + r0 (the config's r and α doubled,
    /// α·√2 with rsLoRA, init_lora_weights true). `extraTensors` adds per-layer tensors (DoRA's
    /// magnitude, which this rewrite leaves valid: W0 + ΔW is the same V).
    public static func adapter(layers: [NamedAdapter], run: RunShape, rank r0: Int, useDoRA: Bool,
                               extraTensors: (any Adapter) -> [String: TensorToWrite] = { _ in [:] }) throws -> PeftAdapter {
        let factored = try layers.map { named -> (name: String, layer: any LowRankFactored) in
            guard let layer = named.adapter as? any LowRankFactored else {
                throw AdapterError.invalidSetting(name: "peft LORA layout", value: "\(named.name) (\(type(of: named.adapter)))",
                                                  allowed: "it holds layers with LoRA factors A and B")
            }
            return (named.name, layer)
        }
        let converted = factored.contains { $0.layer.residualInitialization != nil }
        let scalingPerRank = run.useRSLoRA ? run.alpha / Double(r0).squareRoot() : run.alpha / Double(r0)
        func alpha(forRank k: Int) -> Double { scalingPerRank * (run.useRSLoRA ? Double(k).squareRoot() : Double(k)) }
        let globalRank = converted ? 2 * r0 : r0
        var config = Self.config(run: run, rank: globalRank, alpha: converted ? alpha(forRank: globalRank) : run.alpha, useDoRA: useDoRA)
        var adapter = PeftAdapter(config: config)
        var rankPattern: [String: JSONValue] = [:], alphaPattern: [String: JSONValue] = [:]
        for (name, layer) in factored {
            var a = layer.a.value, b = layer.b.value
            if converted {
                // A layer without a residual initialisation has no B0·A0 to subtract: zero rows keep one rank.
                let initial = layer.residualInitialization ?? ResidualInitialization(a: .zeros(r0, a.cols), b: .zeros(b.rows, r0))
                a = a.stackingRows(initial.a)
                b = b.joiningColumns(initial.b, scaledBy: -1)
            }
            adapter.add(name, "lora_A.weight", TensorToWrite(a))
            adapter.add(name, "lora_B.weight", TensorToWrite(b))
            for (suffix, tensor) in extraTensors(layer) { adapter.add(name, suffix, tensor) }
            if a.rows != globalRank {
                rankPattern[name] = .int(a.rows)
                alphaPattern[name] = .number(Float(alpha(forRank: a.rows)))
            }
        }
        config["rank_pattern"] = .object(rankPattern)
        config["alpha_pattern"] = .object(alphaPattern)
        adapter.config = config
        adapter.addTrainedBiases(of: layers)
        return adapter
    }

    /// Whether a config is peft's LORA with `use_dora` as given.
    public static func decodes(_ config: PeftConfig, useDoRA: Bool) throws -> Bool {
        guard config.peftType == "LORA" else { return false }
        return try (config.bool("use_dora") ?? false) == useDoRA
    }

    public static let moduleMarkers = [".lora_A.", ".lora_B.", ".lora_magnitude_vector"]

    /// One module's A and B from a LORA checkpoint, with the scaling its config gives it.
    public static func factors(_ module: String, base: FrozenLinear, from checkpoint: PeftTensors) throws -> (a: Matrix, b: Matrix, scaling: Float) {
        let config = checkpoint.config
        if case let .string(initialization)? = config["init_lora_weights"], ["pissa", "olora"].contains(where: initialization.hasPrefix) {
            throw config.invalid("init_lora_weights", "\(initialization): the adapter applies to a residual base, not to the model's own weights; save it with peft's path_initial_model_for_weight_conversion (LoRABench's own saves are already converted)")
        }
        let (rank, alpha) = try rankAndAlpha(for: module, in: config)
        let a = try checkpoint.tensor(module, "lora_A.weight", shape: [rank, base.inFeatures])
        let b = try checkpoint.tensor(module, "lora_B.weight", shape: [base.outFeatures, rank])
        let useRSLoRA = try config.bool("use_rslora") ?? false
        return (a, b, useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank))
    }

    /// The rank and α of one module: the `rank_pattern` / `alpha_pattern` key whose regex
    /// `(.*\.)?(key)$` matches the module name, else the global r and α (peft's rule). peft takes
    /// the first matching key in file order, which a JSON object read back does not keep: keys
    /// that match the same module with different values are an error, not a guess.
    public static func rankAndAlpha(for module: String, in config: PeftConfig) throws -> (rank: Int, alpha: Float) {
        func value(_ key: String) throws -> Double? {
            let matches = (try config.object(key) ?? [:]).filter { patternMatches($0.key, module) }.sorted { $0.key < $1.key }
            guard let first = matches.first else { return nil }
            func number(_ value: JSONValue) throws -> Double {
                switch value {
                case let .int(int): return Double(int)
                case let .number(number): return number
                default: throw config.invalid(key, "'\(first.key)' is \(value.summary), expected a number")
                }
            }
            let firstValue = try number(first.value)
            if let other = try matches.first(where: { try number($0.value) != firstValue }) {
                throw config.invalid(key, "'\(first.key)' and '\(other.key)' both match \(module) with different values (\(first.value.summary), \(other.value.summary)); peft takes the first in file order, keep only one")
            }
            return firstValue
        }
        let patternRank = try value("rank_pattern")
        // A rank from the pattern must be a whole number Int can hold (Int(1e300) would trap).
        if let patternRank, !(patternRank.rounded() == patternRank && patternRank >= 1 && patternRank <= Double(Int32.max)) {
            throw config.invalid("rank_pattern", "\(patternRank) for \(module); allowed: an integer ≥ 1")
        }
        let rank = try patternRank.map { Int($0) } ?? config.int("r") ?? 8
        guard rank >= 1 else { throw config.invalid("r", "\(rank) for \(module); a rank is at least 1") }
        if let patternAlpha = try value("alpha_pattern") {
            guard PeftConfig.isValidAlpha(patternAlpha) else {
                throw config.invalid("alpha_pattern", "\(patternAlpha) for \(module); allowed: \(PeftConfig.alphaAllowed)")
            }
            return (rank, Float(patternAlpha))
        }
        return (rank, try config.alpha ?? 8)
    }

    static func patternMatches(_ key: String, _ module: String) -> Bool {
        guard let regex = try? NSRegularExpression(pattern: "^(.*\\.)?(\(key))$") else { return false }
        return regex.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil
    }
}
