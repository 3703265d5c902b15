@testable import LoRABenchAdapters
@testable import LoRABenchVariants
import LoRABenchTestSupport
import Testing

/// The numbers users check by hand (mission.md): a 1024×1024 layer at r = 4.
@Suite struct ParameterCountTests {
    static func layer(bias: BiasMode) throws -> any Adapter {
        try LoRA(base: FrozenLinear(weight: .zeros(1024, 1024)), config: AdapterConfig(rank: 4, bias: bias), seed: 0)
    }

    @Test func loraOnA1024SquareLayerAtRank4Has8192Parameters() throws {
        let report = ParameterReport(layers: [try Self.layer(bias: .none)])
        #expect(report.trainable == 8_192)
        #expect(report.base == 1_049_600)
        #expect(report.description == "trainable params: 8,192 || all params: 1,057,792 || trainable%: 0.7744")
    }

    @Test func trainingTheBiasToo() throws {
        let report = ParameterReport(layers: [try Self.layer(bias: .all)])
        #expect(report.trainable == 9_216)
        #expect(abs(report.shareOfFullFineTuning - 0.00878) < 1e-5)
    }

    @Test func variantsAddTheirOwnParameters() throws {
        let base = { try FrozenLinear(weight: .zeros(16, 24)) }
        #expect(try DoRA(base: base(), config: AdapterConfig(rank: 4), seed: 0).trainableParameterCount == 4 * 40 + 16)
        #expect(try AdaLoRALayer(base: base(), config: AdapterConfig(rank: 4), seed: 0).trainableParameterCount == 4 * 40 + 4)
        let projections = try VeRAProjections(rank: 4, maxInFeatures: 24, maxOutFeatures: 16, seed: 0)
        #expect(try VeRALayer(base: base(), projections: projections, rank: 4).trainableParameterCount == 4 + 16)
    }

    /// LoRA+ is a grouping policy: on DoRA, B and the magnitude (1-D) get λ·η, A gets η.
    @Test func loraPlusComposesWithDoRA() throws {
        let dora = try DoRA(base: FrozenLinear(weight: .zeros(16, 24)), config: AdapterConfig(rank: 4, bias: .loraOnly), seed: 0)
        let groups = LoRAPlus(ratio: 16).groups(for: dora.parameters, learningRate: 1e-3, weightDecay: 0.01)
        let byName = Dictionary(uniqueKeysWithValues: groups.map { ($0.name, $0) })
        #expect(byName["groupA"]?.parameters.map(\.name) == ["lora_A"])
        #expect(byName["groupA"]?.learningRate == 1e-3)
        #expect(byName["groupB"]?.parameters.map(\.name) == ["lora_B", "lora_magnitude_vector"])
        #expect(byName["groupB"]?.learningRate == 16e-3)
        #expect(byName["groupB_no_decay"]?.parameters.map(\.name) == ["base_layer.bias"])
        #expect(byName["groupB_no_decay"]?.weightDecay == 0)
    }
}
