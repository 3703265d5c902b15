import Foundation
import LoRABenchKernels
import LoRABenchInterop
import LoRABenchModels
import LoRABenchTensorIO

/// all-MiniLM-L6-v2's weights, decoded once per test process.
package let minilmBaseWeights = Result { try BertWeights(SafetensorsFile(path: ModelStore.default.locate(.minilm).weightsPath)) }

/// The peft checkpoint in `folder` attached to all-MiniLM-L6-v2.
package func adaptedModel(_ folder: URL, files: ModelFiles) throws -> AdaptedModel {
    try AdaptedModel(checkpoint: PeftCheckpoint.load(folder.path), config: BertConfig(contentsOf: URL(fileURLWithPath: files.configPath)),
                     weights: minilmBaseWeights.get(), baseModelSHA256: files.weightsSHA256)
}

/// One named case of the project's own copy of the peft checkpoints (never the discovery
/// variable's folder: a test that needs this case must not depend on where that points).
package func adaptedFixture(_ name: String) throws -> AdaptedModel {
    try adaptedModel(Fixtures.root.appendingPathComponent("peft-checkpoints").appendingPathComponent(name), files: minilmFilesOrSkip())
}

/// A peft-checkpoints case: its tolerance and the inputs and outputs peft recorded.
package struct PeftCheckpointCase {
        package let folder: URL
        package let rtol: Double
        package let expected: SafetensorsFile
        package let inputIDs: [Int]
        package let attentionMask: [Int]
        package let batchSize: Int

        package init(_ folder: URL) throws {
            self.folder = folder
            rtol = try Fixtures.json(folder.appendingPathComponent("case.json"))["rtol"] as! Double
            expected = try SafetensorsFile(path: folder.appendingPathComponent("expected.safetensors").path)
            inputIDs = try expected.ints("input_ids")
            attentionMask = try expected.ints("attention_mask")
            batchSize = try expected.info("input_ids").shape[0]
        }

        package func encode(_ encoder: BertEncoder) throws -> [Float] {
            try encoder.encode(inputIDs: inputIDs, attentionMask: attentionMask, batchSize: batchSize).storage
        }
    }


/// The project's own copy of one peft-checkpoints case folder.
package func peftCheckpointFixture(_ name: String) -> URL {
    Fixtures.root.appendingPathComponent("peft-checkpoints").appendingPathComponent(name)
}
