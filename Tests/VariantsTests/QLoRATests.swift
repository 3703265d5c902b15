import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchTraining
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// Every variant on an NF4 base (QLoRA, Dettmers et al. 2023, §3): it must compute what it computes
/// on a float32 base holding the dequantized weight, merge to float32 and unmerge back to the same
/// NF4 weight, re-quantize a residual initialisation, and train with its method and optimizer policy.
@Suite struct QLoRATests {
    static let (outFeatures, inFeatures) = (20, 48)

    /// An NF4 base (960 values: 15 blocks of 64, double-quantized) and a float32 base holding its dequantized weight.
    static func bases(seed: UInt64 = 3) throws -> (nf4: FrozenLinear, float32: FrozenLinear) {
        var rng = SplitMix64(seed: seed)
        let weight = Matrix.gaussian(outFeatures, inFeatures, std: 0.3, using: &rng), bias = Matrix.gaussian(1, outFeatures, std: 0.1, using: &rng)
        let nf4 = try FrozenLinear(quantizing: weight, bias: bias)
        return (nf4, try FrozenLinear(weight: nf4.weight, bias: bias))
    }

    /// Gives every trainable tensor values drawn from `seed`, as after training (B no longer 0).
    static func randomizeParameters(_ adapter: any Adapter, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for parameter in adapter.parameters {
            parameter.value = .gaussian(parameter.value.rows, parameter.value.cols, std: 0.2, using: &rng)
        }
        if let dora = adapter as? DoRA { dora.magnitude.value.storage = dora.magnitude.value.storage.map { abs($0) + 1 } }
    }

    @Test(arguments: adapterVariantNames, [Float(0), 0.2])
    func variantOnAnNF4BaseComputesWhatItComputesOnTheDequantizedWeight(_ variant: String, dropout: Float) throws {
        let (nf4Base, floatBase) = try Self.bases()
        let config = AdapterConfig(rank: 4, alpha: 8, dropout: dropout)
        let quantized = try makeLayer(variant, base: nf4Base, config: config, seed: 5)
        let reference = try makeLayer(variant, base: floatBase, config: config, seed: 5)
        Self.randomizeParameters(quantized, seed: 9)
        Self.randomizeParameters(reference, seed: 9)
        var rng = SplitMix64(seed: 11)
        let x = Matrix.gaussian(7, Self.inFeatures, std: 1, using: &rng), g = Matrix.gaussian(7, Self.outFeatures, std: 1, using: &rng)
        var compared = [("output", try quantized.forward(x, training: true), try reference.forward(x, training: true)),
                        ("∂x", try quantized.backward(g), try reference.backward(g))]
        for (got, want) in zip(quantized.parameters, reference.parameters) { compared.append(("∂" + got.name, got.grad, want.grad)) }
        for (name, got, want) in compared {
            #expect(relativeError(got, want) < 1e-5, "\(variant) p=\(dropout): \(name) differs from the float32 base's by \(relativeError(got, want))")
        }
        #expect(nf4Base.isQuantized, "\(variant): the base left NF4")
    }

    @Test(arguments: adapterVariantNames)
    func mergingAnNF4BaseStoresFloat32AndUnmergingRestoresTheNF4Weight(_ variant: String) throws {
        let (base, _) = try Self.bases()
        let adapter = try makeLayer(variant, base: base, config: AdapterConfig(rank: 4, alpha: 8), seed: 5)
        Self.randomizeParameters(adapter, seed: 9)
        let original = base.quantizedWeight!, dequantized = base.weight
        var rng = SplitMix64(seed: 11)
        let x = Matrix.gaussian(7, Self.inFeatures, std: 1, using: &rng)
        let adapted = try adapter.forward(x, training: false)
        var expected = dequantized
        axpy(1, adapter.deltaWeight(), &expected)
        adapter.merge()
        #expect(!base.isQuantized && base.quantizedWeight == original, "\(variant): a merged base holds float32 and keeps W0 aside")
        #expect(relativeError(base.weight, expected) < 1e-6, "\(variant): merged weight is not dequant(W0) + ΔW")
        #expect(relativeError(try adapter.forward(x, training: false), adapted) < 1e-6, "\(variant): merged output differs")
        adapter.unmerge()
        #expect(base.isQuantized && base.quantizedWeight == original, "\(variant): unmerge did not restore the NF4 weight exactly")
        #expect(relativeError(try adapter.forward(x, training: false), adapted) < 1e-6)
    }

    /// PiSSA and OLoRA factor the dequantized W0 and the residual is quantized again with the base's
    /// block size and double quantization (peft's `Params4bit` of the residual for a bitsandbytes base).
    @Test(arguments: [AdapterInit.pissa, .olora])
    func residualInitialisationsQuantizeTheResidualAgain(_ initialization: AdapterInit) throws {
        var rng = SplitMix64(seed: 3)
        let base = try FrozenLinear(quantizing: .gaussian(Self.outFeatures, Self.inFeatures, std: 0.3, using: &rng), blockSize: 32,
                                    doubleQuant: false)
        let dequantized = base.weight
        let config = AdapterConfig(rank: 4, alpha: 8, initialization: initialization)
        let adapter = try LoRA(base: base, config: config, seed: 1)
        var drawn = SplitMix64(seed: 1)
        let factors = try initialization.initialization.factors(for: dequantized, rank: 4, scaling: config.scaling, using: &drawn)
        #expect(adapter.a.value == factors.a && adapter.b.value == factors.b)
        #expect(base.isQuantized)
        #expect(base.quantizedWeight == (try NF4Matrix(quantizing: factors.residualBase!, blockSize: 32, doubleQuant: false)))
    }

    /// A packed base of another format (a GGUF file's blocks; here a stand-in that stores float32)
    /// computes with its dequantized weight; a residual initialisation leaves it in float32, since
    /// the reference trains on the dequantized file and never packs the residual again.
    @Test func aPackedBaseOfAnotherFormatKeepsAResidualInFloat32() throws {
        struct Unpacked: PackedMatrix {
            let values: Matrix
            var rows: Int { values.rows }
            var cols: Int { values.cols }
            var residentBytes: Int { values.count * MemoryLayout<Float>.size }
            func dequantize(into output: inout Matrix) { output = values }
        }
        var rng = SplitMix64(seed: 4)
        let weight = Matrix.gaussian(Self.outFeatures, Self.inFeatures, std: 0.3, using: &rng)
        let base = try FrozenLinear(packed: Unpacked(values: weight))
        #expect(base.isQuantized && base.quantizedWeight == nil && base.weight == weight)
        let x = Matrix.gaussian(3, Self.inFeatures, std: 1, using: &rng)
        #expect(base.forward(x) == (try FrozenLinear(weight: weight)).forward(x))
        let config = AdapterConfig(rank: 4, alpha: 8, initialization: .pissa)
        _ = try LoRA(base: base, config: config, seed: 1)
        var drawn = SplitMix64(seed: 1)
        let factors = try AdapterInit.pissa.initialization.factors(for: weight, rank: 4, scaling: config.scaling, using: &drawn)
        #expect(!base.isQuantized && base.weight == factors.residualBase!)
    }

    @Test func layersSharingABufferHoldOneFloat32WeightPerShape() throws {
        let buffer = DequantizationBuffer()
        var rng = SplitMix64(seed: 2)
        let layers = try (0..<3).map { _ in
            try LoRA(base: FrozenLinear(quantizing: .gaussian(64, 64, std: 0.1, using: &rng), buffer: buffer),
                     config: AdapterConfig(rank: 4), seed: 1)
        }
        var h = Matrix.gaussian(5, 64, std: 1, using: &rng)
        for layer in layers { h = try layer.forward(h, training: true) }
        for layer in layers.reversed() { h = try layer.backward(h) }
        #expect(buffer.residentBytes == 64 * 64 * 4, "one dequantized 64x64 weight for three layers")
        // 2048 bytes of codes, 64 one-byte scales, one nested absmax and the offset, and the bias.
        #expect(layers[0].base.residentBytes == 2048 + 64 + 4 + 4 + 64 * 4)
    }

    /// Plain settings except `mode`, for AdaLoRA's svd-prune mode.
    struct ModeSettings: SettingsReader {
        let mode: String
        func int(_ key: String, allowed: String, in range: ClosedRange<Int>) throws -> Int? { nil }
        func number(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> Double? { nil }
        func bool(_ key: String) throws -> Bool? { nil }
        func choice(_ key: String, from options: [String]) throws -> String? { key == "mode" ? mode : nil }
        func scaledValue(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> ScaledValue? { nil }
        func block(_ key: String, keys: [String]) throws -> (any SettingsReader)? { nil }
        func reject(_ keys: [String], because why: String) throws {}
    }

    /// Every registered variant with layers, AdaLoRA in both modes, and every optimizer policy (on LoRA).
    static let entries = adapterVariantNames + ["adalora svd-prune"] + VariantRegistry.optimizerPolicies.map { $0.name }

    /// 30 steps of a teacher–student MLP whose two bases are NF4 (one shared buffer), built as a run
    /// builds it: the plan's layers and method, the policy's optimizer.
    @Test(arguments: entries)
    func everyVariantTrainsOnNF4Bases(_ entry: String) throws {
        let steps = 30
        let policy = try VariantRegistry.optimizerPolicy(named: entry)?.init(settings: DefaultSettings())
        let variantName = policy == nil ? String(entry.split(separator: " ")[0]) : VariantRegistry.policyBaseVariant.name
        let settings: any SettingsReader = entry.hasSuffix("svd-prune") ? ModeSettings(mode: "svd-prune") : DefaultSettings()
        let plan = try VariantRegistry.variant(named: variantName)!.init(settings: settings)
            .plan(for: RunShape(rank: 4, alpha: 8, steps: steps, seed: 7))
        var rng = SplitMix64(seed: 21)
        let modules = [ModuleShape(name: "fc1", inFeatures: 12, outFeatures: 32), ModuleShape(name: "fc2", inFeatures: 32, outFeatures: 6)]
        let bases = try modules.map { try FrozenLinear(weight: .gaussian($0.outFeatures, $0.inFeatures, std: 0.3, using: &rng)) }
        try FrozenLinear.quantize(bases)
        let quantizedWeights = bases.map(\.quantizedWeight)
        let builder = try #require(try plan.layerBuilder(for: modules))
        let layers = try zip(modules, bases).enumerated().map { index, pair in
            NamedAdapter(name: pair.0.name, adapter: try builder.adapter(for: pair.0, base: pair.1, seed: UInt64(index)))
        }
        try policy?.prepare(layers)
        let model = AdaptedMLP(layers: layers)
        let optimizer = try policy?.makeOptimizer(parameters: model.parameters, layers: layers, learningRate: 1e-2, weightDecay: 0)
            ?? AdamW(groups: [ParameterGroup(name: "all", parameters: model.parameters, learningRate: 1e-2)])
        let method = try plan.makeMethod(layers: layers)

        let x = Matrix.gaussian(16, 12, std: 1, using: &rng)
        let teacher = AdaptedMLP(layers: try modules.map {
            NamedAdapter(name: $0.name, adapter: FrozenLayer(base: try FrozenLinear(weight: .gaussian($0.outFeatures, $0.inFeatures, std: 0.3, using: &rng))))
        })
        let target = try teacher.forward(x, training: false)
        var losses: [Float] = []
        for step in 0..<steps {
            losses.append(try trainingStep(step, optimizer: optimizer, method: method) {
                let (loss, gradient) = meanSquaredError(try model.forward(x, training: true), target)
                try model.backward(gradient)
                return loss
            }.loss)
        }
        #expect(losses.allSatisfy(\.isFinite) && losses.last! < 0.9 * losses.first!, "\(entry): losses \(losses.first!) → \(losses.last!)")
        #expect(bases.allSatisfy(\.isQuantized) && bases.map(\.quantizedWeight) == quantizedWeights, "\(entry): an NF4 base changed")
        let finite = model.parameters.allSatisfy { $0.value.isFinite }
        #expect(finite, "\(entry): a parameter is not finite")
    }

    // MARK: finite differences on an NF4 base

    /// GradientCheckTests' setup with W0 replaced by its NF4 dequantization (one partial block of 30
    /// values), which is what the layer's forward reads.
    static func gradientCheckBase(_ setup: inout GradientCheckTests.Setup) throws -> FrozenLinear {
        let base = try FrozenLinear(quantizing: setup.matrix("W0", GradientCheckTests.outFeatures, GradientCheckTests.inFeatures),
                                    blockSize: 32, doubleQuant: true, bias: setup.matrix("b", 1, GradientCheckTests.outFeatures))
        setup.values["W0"] = base.weight.storage.map(Double.init)
        return base
    }

    @Test(arguments: [Float(0), 0.3])
    func loraGradientsOnAnNF4BaseMatchFiniteDifferences(dropout: Float) throws {
        var setup = GradientCheckTests.Setup()
        let base = try Self.gradientCheckBase(&setup)
        let (r, n, o) = (GradientCheckTests.rank, GradientCheckTests.inFeatures, GradientCheckTests.outFeatures)
        let adapter = try LoRA(base: base, a: setup.matrix("lora_A", r, n), b: setup.matrix("lora_B", o, r), scaling: 1.5, dropout: dropout, seed: 7)
        let mask = dropout > 0 ? try GradientCheckTests.dropoutMask(probability: dropout, seed: 7) : nil
        try GradientCheckTests.check(adapter, setup, reference: { GradientCheckTests.loraLoss($0, scaling: 1.5, mask: mask) },
                                     label: "LoRA on NF4 p=\(dropout)")
    }

    @Test(arguments: [Float(0), 0.3])
    func doraGradientsOnAnNF4BaseMatchFiniteDifferencesWithDetachedNorm(dropout: Float) throws {
        var setup = GradientCheckTests.Setup(magnitude: true)
        let base = try Self.gradientCheckBase(&setup)
        let (r, n, o) = (GradientCheckTests.rank, GradientCheckTests.inFeatures, GradientCheckTests.outFeatures)
        let adapter = try DoRA(base: base, a: setup.matrix("lora_A", r, n), b: setup.matrix("lora_B", o, r),
                               magnitude: setup.matrix("lora_magnitude_vector", 1, o), scaling: 1.5, dropout: dropout, seed: 7)
        let combined = zip(setup.values["W0"]!, GradientCheckTests.product(setup.values["lora_A"]!, setup.values["lora_B"]!, scaling: 1.5)).map(+)
        let norms = (0..<o).map { row in (0..<n).reduce(0.0) { $0 + combined[row * n + $1] * combined[row * n + $1] }.squareRoot() }
        let mask = dropout > 0 ? try GradientCheckTests.dropoutMask(probability: dropout, seed: 7) : nil
        try GradientCheckTests.check(adapter, setup, reference: { GradientCheckTests.doraLoss($0, scaling: 1.5, norms: norms, mask: mask) },
                                     label: "DoRA on NF4 p=\(dropout)")
    }
}
