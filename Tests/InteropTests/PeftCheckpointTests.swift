import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchInterop
import LoRABenchModels
import LoRABenchTestSupport
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

    static let run = RunShape(rank: 4, alpha: 8, steps: 10, seed: 5, targetModules: ["query", "output.dense"])

    /// Every module's adapter of `variant` as its plan builds them, with random (trained-looking) values.
    static func trained(_ variant: String, on bases: [String: FrozenLinear]) throws -> (plan: any AdapterPlan, layers: [NamedAdapter]) {
        let plan = try VariantRegistry.plan(named: variant, for: run)
        let shapes = modules.map { ModuleShape(name: $0, inFeatures: bases[$0]!.inFeatures, outFeatures: bases[$0]!.outFeatures) }
        let builder = try #require(try plan.layerBuilder(for: shapes))
        var rng = SplitMix64(seed: 8)
        let layers = try shapes.map { shape in
            let adapter = try builder.adapter(for: shape, base: bases[shape.name]!, seed: 3)
            for parameter in adapter.parameters { parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.2, using: &rng) }
            return NamedAdapter(name: shape.name, adapter: adapter)
        }
        return (plan, layers)
    }

    /// The plan's peft adapter, as a run saves it.
    static func save(_ plan: any AdapterPlan, _ layers: [NamedAdapter], method: (any AdaptationMethod)? = nil, to directory: String) throws {
        var adapter = try plan.peftAdapter(layers: layers, method: method ?? plan.makeMethod(layers: layers))
        adapter.config.baseModelNameOrPath = "test-base"
        try PeftCheckpoint.save(adapter, to: directory, baseModelSHA256: "abc")
    }

    static func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "lorabench-checkpoint-\(UUID().uuidString)"
    }

    @Test(arguments: adapterVariantNames)
    func savedAdapterLoadsBackWithTheSameOutputs(_ variant: String) throws {
        let (plan, adapters) = try Self.trained(variant, on: Self.bases())
        let method = try plan.makeMethod(layers: adapters)
        if let layer = adapters[0].adapter as? AdaLoRALayer {
            // Mask triplet 1 of the first module, as the allocator would; saving slices it away.
            layer.e.value.storage[1] = 0
            var kept = Matrix(rows: 1, cols: layer.rank, repeating: 1)
            kept.storage[1] = 0
            try method.restore(state: ["\(adapters[0].name).rank_pattern": kept])
        }
        let directory = Self.temporaryDirectory()
        try Self.save(plan, adapters, method: method, to: directory)
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
            #expect(relativeError(try copy.adapter.forward(x, training: false), want) < 1e-6, "\(variant) \(copy.name)")
        }
        if adapters[0].adapter is AdaLoRALayer { #expect(restored[0].adapter.rank == adapters[0].adapter.rank - 1) }
    }

    /// AdaLoRA's `rank_pattern` is keyed as peft 0.21.2 saves it: `<module>.lora_E`, the module
    /// named as in the base model. The encoder's masks of peft's own checkpoint give back its
    /// rank_pattern exactly; the decoder's keys are LlamaForCausalLM's module names.
    @Test(arguments: ["encoder", "decoder"])
    func adaLoRAsRankPatternIsKeyedAsPeftSavesIt(_ model: String) throws {
        let pattern: [String: [Bool]]
        if model == "encoder" {
            let config = try PeftConfig(contentsOf: peftCheckpointFixture("adalora-ffn").appendingPathComponent(PeftConfig.fileName).path)
            pattern = try #require(try config.object("rank_pattern")).mapValues { value in
                guard case let .array(kept) = value else { return [] }
                return kept.map { $0 == .bool(true) }
            }
        } else {
            pattern = Dictionary(uniqueKeysWithValues: SmolLM2().architecture.modules.prefix(7).enumerated().map { index, module in
                ("\(module.name).lora_E", (0..<6).map { ($0 + index) % 3 != 0 })
            })
        }
        #expect(pattern.count >= 7 && pattern.values.allSatisfy { $0.count == 6 })
        // init_r 6 (1.5 r); the shapes do not reach the config.
        let plan = try VariantRegistry.plan(named: "adalora", for: RunShape(rank: 4, alpha: 8, steps: 10))
        #expect(plan.adapterRank == 6)
        let shapes = pattern.keys.sorted().map { ModuleShape(name: String($0.dropLast(".lora_E".count)), inFeatures: 8, outFeatures: 8) }
        let builder = try #require(try plan.layerBuilder(for: shapes))
        var rng = SplitMix64(seed: 2)
        let layers = try shapes.map { NamedAdapter(name: $0.name, adapter: try builder.adapter(for: $0, base: FrozenLinear(weight: .gaussian(8, 8, std: 0.3, using: &rng)), seed: 1)) }
        let method = try plan.makeMethod(layers: layers)
        try method.restore(state: Dictionary(uniqueKeysWithValues: pattern.map { key, kept in
            (String(key.dropLast(".lora_E".count)) + ".rank_pattern", Matrix(rows: 1, cols: kept.count, storage: kept.map { $0 ? 1 : 0 }))
        }))
        let written = try plan.peftAdapter(layers: layers, method: method).config
        #expect(written["rank_pattern"] == .object(pattern.mapValues { .array($0.map(JSONValue.bool)) }))
        if model == "decoder" { #expect(pattern.keys.contains("model.layers.0.self_attn.q_proj.lora_E")) }
    }

    /// PiSSA and OLoRA replace W0 by a residual; the saved adapter is peft's conversion to a plain
    /// LoRA of rank 2r on the original W0, so loading it onto an untouched base gives the trained model.
    @Test(arguments: ["pissa", "olora"], [false, true])
    func aResidualInitialisationIsSavedForTheOriginalBase(_ initialization: String, _ useRSLoRA: Bool) throws {
        var run = Self.run
        run.initialization = try AdapterInit(named: initialization)
        run.useRSLoRA = useRSLoRA
        let plan = try VariantRegistry.plan(named: "lora", for: run)
        let bases = try Self.bases()
        let shapes = Self.modules.map { ModuleShape(name: $0, inFeatures: 12, outFeatures: 10) }
        let builder = try #require(try plan.layerBuilder(for: shapes))
        var rng = SplitMix64(seed: 6)
        let layers = try shapes.map { shape in
            let layer = try builder.adapter(for: shape, base: bases[shape.name]!, seed: 2) as! LoRA
            axpy(1, .gaussian(10, 4, std: 0.1, using: &rng), &layer.b.value)
            return NamedAdapter(name: shape.name, adapter: layer)
        }
        let directory = Self.temporaryDirectory()
        try Self.save(plan, layers, to: directory)
        let loaded = try PeftCheckpoint.load(directory)
        #expect(try loaded.config.int("r") == 8)
        let alpha = try #require(try loaded.config.number("lora_alpha"))
        #expect(abs(alpha - (useRSLoRA ? 8 * 2.0.squareRoot() : 16)) < 1e-5)
        let original = try Self.bases()
        let restored = try loaded.attach(to: { original[$0] }, baseModelSHA256: nil)
        let x = Matrix.gaussian(3, 12, std: 1, using: &rng)
        for (trained, copy) in zip(layers, restored) {
            #expect(relativeError(try copy.adapter.forward(x, training: false), try trained.adapter.forward(x, training: false)) < 1e-5)
        }
    }

    @Test func loraPatternsRoundTripThroughJSON() throws {
        var config = LoRALayout.config(run: Self.run, rank: 4, alpha: 8, useDoRA: false)
        config["rank_pattern"] = .object(["query": .int(8)])
        config["alpha_pattern"] = .object(["query": .int(16)])
        config["use_rslora"] = .bool(true)
        let path = Self.temporaryDirectory() + ".json"
        try config.write(to: path)
        let read = try PeftConfig(contentsOf: path)
        #expect(read == config)
        #expect(try LoRALayout.rankAndAlpha(for: "encoder.layer.3.attention.self.query", in: read) == (8, 16))
        #expect(try LoRALayout.rankAndAlpha(for: "encoder.layer.3.attention.self.value", in: read) == (4, 8))
    }

    /// peft applies the first matching key in file order, which LoRABench cannot see once the
    /// JSON is parsed: two keys matching one module with different values are refused.
    @Test func conflictingPatternKeysAreAnError() throws {
        var config = LoRALayout.config(run: Self.run, rank: 4, alpha: 8, useDoRA: false)
        config["alpha_pattern"] = .object(["encoder.layer.0.attention.self.query": .int(8), "query": .int(32)])
        #expect(try LoRALayout.rankAndAlpha(for: "encoder.layer.3.attention.self.query", in: config) == (4, 32))
        #expect { try LoRALayout.rankAndAlpha(for: "encoder.layer.0.attention.self.query", in: config) } throws: {
            "\($0)" == "adapter_config.json: invalid adapter_config.json key 'alpha_pattern': 'encoder.layer.0.attention.self.query' and 'query' both match encoder.layer.0.attention.self.query with different values (8, 32); peft takes the first in file order, keep only one"
        }
    }

    @Test func anUnknownPeftTypeIsAnErrorNamingTheKnownOnes() throws {
        let directory = Self.temporaryDirectory()
        let (plan, layers) = try Self.trained("lora", on: Self.bases())
        try Self.save(plan, layers, to: directory)
        var config = try PeftConfig(contentsOf: "\(directory)/adapter_config.json")
        config["peft_type"] = .string("LOHA")
        try config.write(to: "\(directory)/adapter_config.json")
        #expect { try PeftCheckpoint.load(directory) } throws: {
            "\($0)".contains("peft_type LOHA is not an adapter type LoRABench can load") && "\($0)".contains("VeRAVariant")
        }
    }

    @Test func adapterOnAnotherBaseModelIsRejected() throws {
        let directory = Self.temporaryDirectory()
        let (plan, layers) = try Self.trained("lora", on: Self.bases())
        try Self.save(plan, layers, to: directory)
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

    /// A diverged run's adapter (NaN or inf in a tensor) is refused, naming the tensor, unless asked for.
    @Test func nonFiniteTensorsAreRefusedUnlessAllowed() throws {
        let directory = Self.temporaryDirectory()
        let (plan, layers) = try Self.trained("dora", on: Self.bases())
        (layers[1].adapter as! DoRA).b.value[2, 1] = .infinity
        try Self.save(plan, layers, to: directory)
        let loaded = try PeftCheckpoint.load(directory)
        let fresh = try Self.bases()
        #expect { try loaded.attach(to: { fresh[$0] }, baseModelSHA256: nil) } throws: {
            "\($0)" == "\(directory)/adapter_model.safetensors: tensor 'base_model.model.encoder.layer.0.output.dense.lora_B.weight' holds NaN or infinite values (a diverged run's adapter?); pass --allow-non-finite to load it anyway for inspection"
        }
        let forensic = try loaded.attach(to: { fresh[$0] }, baseModelSHA256: nil, allowNonFinite: true)
        #expect(!(forensic[1].adapter as! DoRA).b.value.isFinite)
    }

    @Test func aTargetModuleWithNoTensorsInTheFileIsAnError() throws {
        let directory = Self.temporaryDirectory()
        let (plan, layers) = try Self.trained("lora", on: Self.bases())
        try Self.save(plan, layers, to: directory)
        let configPath = "\(directory)/\(PeftCheckpoint.configFile)"
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
        #expect(config.contains("\"query\""))
        try config.replacingOccurrences(of: "\"query\"", with: "\"query\", \"value\"").write(toFile: configPath, atomically: true, encoding: .utf8)
        let loaded = try PeftCheckpoint.load(directory)
        let fresh = try Self.bases()
        #expect { try loaded.attach(to: { fresh[$0] }, baseModelSHA256: nil) } throws: {
            "\($0)" == "\(configPath): invalid adapter_config.json key 'target_modules': 'value' names no module with adapter tensors in "
                + "\(directory)/adapter_model.safetensors (modules there: encoder.layer.0.attention.self.query, encoder.layer.0.output.dense)"
        }
    }
}
