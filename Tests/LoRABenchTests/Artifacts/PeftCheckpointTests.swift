import Foundation
import LoRABench
import Testing

/// Saving in peft's layout and loading it back gives the same adapted outputs; a checkpoint that
/// does not fit its base model is an error naming what it expects.
@Suite struct PeftCheckpointTests {
    static let modules = ["encoder.layer.0.attention.self.query", "encoder.layer.0.output.dense"]

    static func bases(seed: UInt64 = 1, inFeatures: Int = 12) throws -> [String: FrozenLinear] {
        var rng = SplitMix64(seed: seed)
        return try Dictionary(uniqueKeysWithValues: modules.map {
            ($0, try FrozenLinear(weight: .gaussian(10, inFeatures, std: 0.3, using: &rng), bias: .gaussian(1, 10, std: 0.1, using: &rng)))
        })
    }

    static func trained(_ kind: AdapterKind, on bases: [String: FrozenLinear]) throws -> [NamedAdapter] {
        var rng = SplitMix64(seed: 8)
        return try modules.map { name in
            let adapter = try kind.make(base: bases[name]!, config: AdapterConfig(rank: 4, alpha: 8), seed: 3)
            for parameter in adapter.parameters { parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.2, using: &rng) }
            return NamedAdapter(name: name, adapter: adapter)
        }
    }

    static func config(_ kind: AdapterKind, pattern: [String: [Bool]]? = nil) -> PeftConfig {
        var config = PeftConfig(peftType: kind == .adalora ? .adalora : .lora, rank: 4, alpha: 8, targetModules: ["query", "output.dense"])
        config.useDoRA = kind == .dora
        config.baseModelNameOrPath = "test-base"
        if kind == .adalora {
            config.adalora = .init(initialRank: 4, targetRank: 2, tinit: 0, tfinal: 0, deltaT: 1, beta1: 0.85, beta2: 0.85, orthRegWeight: 0.5, totalStep: 10)
            config.adaloraRankPattern = pattern
        }
        return config
    }

    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "lorabench-checkpoint-\(UUID().uuidString)"
    }

    @Test(arguments: AdapterKind.allCases)
    func savedAdapterLoadsBackWithTheSameOutputs(_ kind: AdapterKind) throws {
        let adapters = try Self.trained(kind, on: Self.bases())
        var pattern: [String: [Bool]]?
        if kind == .adalora {
            // Mask triplet 1 of the first module, as the allocator would; saving slices it away.
            (adapters[0].adapter as! AdaLoRALayer).e.value.storage[1] = 0
            pattern = Dictionary(uniqueKeysWithValues: Self.modules.map { ("\($0).lora_E", [true, $0 != Self.modules[0], true, true]) })
        }
        let directory = Self.temporaryDirectory()
        try PeftCheckpoint.save(adapters, config: Self.config(kind, pattern: pattern), to: directory, baseModelSHA256: "abc")
        let loaded = try PeftCheckpoint.load(directory)
        #expect(loaded.modules == Self.modules)
        #expect(loaded.baseModelSHA256 == "abc")
        let fresh = try Self.bases()
        let restored = try loaded.attach(to: { fresh[$0] }, baseModelSHA256: "abc")
        var rng = SplitMix64(seed: 4)
        let x = Matrix.gaussian(3, 12, std: 1, using: &rng)
        for (original, copy) in zip(adapters, restored) {
            #expect(original.name == copy.name)
            let want = try original.adapter.forward(x, training: false)
            #expect(relativeError(try copy.adapter.forward(x, training: false), want) < 1e-6, "\(kind) \(copy.name)")
        }
        if kind == .adalora { #expect(restored[0].adapter.rank == 3) }
    }

    @Test func configRoundTripsThroughJSON() throws {
        var config = Self.config(.lora)
        config.rankPattern = [("query", 8)]
        config.alphaPattern = [("query", 16)]
        config.useRSLoRA = true
        let path = Self.temporaryDirectory() + ".json"
        try config.write(to: path)
        let read = try PeftConfig(contentsOf: path)
        #expect(read == config)
        #expect(try read.rankAndAlpha(for: "encoder.layer.3.attention.self.query") == (8, 16))
        #expect(try read.rankAndAlpha(for: "encoder.layer.3.attention.self.value") == (4, 8))
    }

    /// peft applies the first matching key in file order, which LoRABench cannot see once the
    /// JSON is parsed: two keys matching one module with different values are refused.
    @Test func conflictingPatternKeysAreAnError() throws {
        var config = Self.config(.lora)
        config.alphaPattern = [("encoder.layer.0.attention.self.query", 8), ("query", 32)]
        #expect(try config.rankAndAlpha(for: "encoder.layer.3.attention.self.query") == (4, 32))
        do {
            _ = try config.rankAndAlpha(for: "encoder.layer.0.attention.self.query")
            Issue.record("conflicting alpha_pattern keys must be rejected")
        } catch {
            #expect("\(error)" == "adapter_config.json: invalid adapter_config.json key 'alpha_pattern': 'encoder.layer.0.attention.self.query' and 'query' both match encoder.layer.0.attention.self.query with different values (8.0, 32.0); peft takes the first in file order, keep only one")
        }
    }

    @Test func adapterOnAnotherBaseModelIsRejected() throws {
        let directory = Self.temporaryDirectory()
        try PeftCheckpoint.save(Self.trained(.lora, on: Self.bases()), config: Self.config(.lora), to: directory, baseModelSHA256: "abc")
        let loaded = try PeftCheckpoint.load(directory)
        let path = "\(directory)/adapter_model.safetensors"
        #expect(throws: (any Error).self) { _ = try loaded.attach(to: { _ in nil }, baseModelSHA256: "def") }
        do {
            _ = try loaded.attach(to: { _ in nil }, baseModelSHA256: "def")
        } catch {
            #expect("\(error)" == "\(path): the adapter was trained on test-base with weights sha256 abc, but the base model given has sha256 def; load it onto the model it was trained on")
        }
        let wider = try Self.bases(inFeatures: 16)
        do {
            _ = try loaded.attach(to: { wider[$0] }, baseModelSHA256: nil)
            Issue.record("a base of another shape must be rejected")
        } catch {
            #expect("\(error)" == "\(path): tensor 'base_model.model.encoder.layer.0.attention.self.query.lora_A.weight' has shape [4, 12] but this base model needs [4, 16]; the adapter was trained on test-base")
        }
        do {
            _ = try loaded.attach(to: { _ in nil }, baseModelSHA256: nil)
            Issue.record("a module missing from the base must be rejected")
        } catch {
            #expect("\(error)" == "\(path): module 'encoder.layer.0.attention.self.query' does not exist in this base model; the adapter was trained on test-base")
        }
    }
}
