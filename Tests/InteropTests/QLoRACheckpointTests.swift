import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchAdapters
@testable import LoRABenchTensorIO
@testable import LoRABenchModels
@testable import LoRABenchInterop
import LoRABenchTestSupport
import Testing

private func floats(_ tensor: TensorToWrite?) -> [Float]? {
    guard case let .f32(values)? = tensor?.values else { return nil }
    return values
}

/// An adapter trained on an NF4 base says so in its metadata; loaded, it gets that base back,
/// another base only with a warning, and merged it writes every Linear as the model computed it.
@Suite struct QLoRACheckpointTests {
    /// The lora-qv fixture (query and value adapted) re-saved as if trained on `base`.
    static func checkpoint(trainedOn base: String) throws -> String {
        let folder = NSTemporaryDirectory() + "lorabench-qlora-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: peftCheckpointFixture("lora-qv").path, toPath: folder)
        let weights = "\(folder)/\(PeftCheckpoint.weightsFile)"
        let file = try SafetensorsFile(path: weights)
        var tensors: [String: TensorToWrite] = [:]
        for name in file.names { tensors[name] = TensorToWrite(floats: try file.floats(name), shape: file.tensors[name]!.shape) }
        try Safetensors.write(tensors, to: weights, metadata: file.metadata.merging([PeftCheckpoint.baseWeightsKey: base]) { $1 })
        return folder
    }

    @Test func anNF4AdapterLoadsOntoAnNF4BaseAndMergesItsDequantizedWeights() throws {
        let files = try minilmFilesOrSkip()
        let folder = try Self.checkpoint(trainedOn: "nf4")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let adapted = try adaptedModel(URL(fileURLWithPath: folder), files: files)
        #expect(adapted.baseFormat == .qlora && adapted.trainedBaseFormat == .qlora && adapted.baseFormatWarning == nil)
        #expect(adapted.encoder.linears.allSatisfy { $0.base.isQuantized })
        // NF4 holds 4.127 bits a parameter: the Linears' weights shrink about 7.75-fold.
        let float32Bytes = adapted.encoder.linears.reduce(0) { $0 + 4 * ($1.base.inFeatures + 1) * $1.base.outFeatures }
        #expect(Double(adapted.encoder.frozenLinearBytes) < Double(float32Bytes) / 7)

        let base = try SafetensorsFile(path: files.weightsPath)
        let merged = try adapted.mergedTensors(base: base)
        let key = "encoder.layer.0.attention.self.key.weight"
        let dequantized = try NF4Matrix(quantizing: try base.matrix(key), blockSize: 64, doubleQuant: true).dequantized()
        #expect(floats(merged[key]) == dequantized.storage)
        let query = "encoder.layer.0.attention.self.query"
        let adapter = try #require(adapted.encoder.adapters.first { $0.name == query }?.adapter)
        var expected = try NF4Matrix(quantizing: try base.matrix(query + ".weight"), blockSize: 64, doubleQuant: true).dequantized()
        axpy(1, adapter.deltaWeight(), &expected)
        #expect(floats(merged[query + ".weight"]) == expected.storage)
    }

    @Test func anotherBaseThanInTrainingIsLoadedWithAWarning() throws {
        let files = try minilmFilesOrSkip()
        let folder = try Self.checkpoint(trainedOn: "nf4")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let adapted = try AdaptedModel(checkpoint: PeftCheckpoint.load(folder), config: BertConfig(contentsOf: URL(fileURLWithPath: files.configPath)),
                                       weights: minilmBaseWeights.get(), baseModelSHA256: files.weightsSHA256, baseFormat: .float32)
        #expect(adapted.encoder.linears.allSatisfy { !$0.base.isQuantized })
        #expect(adapted.baseFormatWarning?.hasPrefix("warning: the adapter was trained on a nf4 base and is loaded here onto a fp32 one") == true)
        // Adapters saved before QLoRA say nothing: float32.
        #expect(try adaptedFixture("lora-qv").trainedBaseFormat == .float32)
    }

    @Test func anUnknownRecordedBaseIsAnErrorNamingIt() throws {
        let files = try minilmFilesOrSkip()
        let folder = try Self.checkpoint(trainedOn: "int3")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect { try adaptedModel(URL(fileURLWithPath: folder), files: files) } throws: {
            "\($0)".contains("'int3' is not a base format")
        }
    }
}
