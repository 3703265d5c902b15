import Foundation
@testable import LoRABenchKernels
import LoRABenchTensorIO
@testable import LoRABenchModels
import LoRABenchAdapters
import LoRABenchTestSupport
import Testing

/// The Llama decoder against transformers on SmolLM2-135M-Instruct (the `forward` cases of the
/// smollm2 fixtures, discovered by case.json `kind` under `SMOLLM2_FIXTURES_DIR`, else
/// Tests/Fixtures/smollm2): layer 0's output, the final norm, the logits at the last token and at
/// every position of the shortest prompt, and greedy generation with the KV cache.
@Suite struct LlamaParityTests {
    static let forwardCases = SmolLM2.cases(kind: "forward")


    private static func decoder() throws -> LlamaDecoder { try LlamaDecoder(weights: SmolLM2.weightsOrSkip()) }

    /// One padded batch of a forward case.
    private struct Batch {
        var inputIDs: [Int], attentionMask: [Int], positionIDs: [Int]?, batchSize: Int, length: Int

        init(_ tensors: SafetensorsFile) throws {
            inputIDs = try tensors.ints("input_ids")
            attentionMask = try tensors.ints("attention_mask")
            positionIDs = tensors.tensors["position_ids"] == nil ? nil : try tensors.ints("position_ids")
            batchSize = try tensors.info("input_ids").shape[0]
            length = inputIDs.count / batchSize
        }

        /// `states` [N, C] with the padding rows zeroed, as the fixtures store them.
        func zeroingPadding(_ states: Matrix) -> [Float] {
            var values = states.storage
            for row in 0..<attentionMask.count where attentionMask[row] == 0 {
                values.replaceSubrange(row * states.cols..<(row + 1) * states.cols, with: repeatElement(0, count: states.cols))
            }
            return values
        }

        /// The rows of the sequence with the fewest real tokens (the first such), in order.
        var shortestSequenceRows: [Int] {
            let counts = (0..<batchSize).map { batch in attentionMask[batch * length..<(batch + 1) * length].reduce(0, +) }
            let shortest = counts.firstIndex(of: counts.min()!)!
            return (shortest * length..<(shortest + 1) * length).filter { attentionMask[$0] == 1 }
        }
    }

    @Test func forwardCasesArePresent() {
        #expect(!Self.forwardCases.isEmpty, "no forward case in \(SmolLM2.fixturesDirectory.path)")
    }

    @Test(arguments: forwardCases)
    func forwardMatchesTransformers(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let rtol = try #require(settings["rtol"] as? Double, "\(folder.path)/case.json: no rtol")
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let batch = try Batch(tensors)
        let decoder = try Self.decoder()

        let clock = ContinuousClock()
        let start = clock.now
        let finalNorm = try decoder.forward(inputIDs: batch.inputIDs, attentionMask: batch.attentionMask, positionIDs: batch.positionIDs,
                                            batchSize: batch.batchSize)
        let elapsed = clock.now - start
        let lastRows = LlamaDecoder.lastTokenRows(attentionMask: batch.attentionMask, batchSize: batch.batchSize)
        let got: [(String, [Float])] = [
            ("hidden_layer0", batch.zeroingPadding(decoder.hiddenStates(afterLayer: 0))),
            ("final_norm", batch.zeroingPadding(finalNorm)),
            ("logits_last", decoder.logits(at: lastRows).storage),
            ("logits_shortest", decoder.logits(at: batch.shortestSequenceRows).storage),
        ]
        var report: [String] = []
        for (name, values) in got {
            let want = try tensors.floats(name)
            try #require(values.count == want.count, "\(folder.lastPathComponent): \(name) has \(values.count) values, the fixture \(want.count)")
            let error = relativeError(values, want)
            report.append("\(name) \(String(format: "%.2e", error))")
            #expect(error <= rtol, "\(folder.lastPathComponent): \(name) differs by \(error) (rtol \(rtol))")
        }
        print("\(folder.lastPathComponent): relative errors \(report.joined(separator: ", ")); forward of [\(batch.batchSize), \(batch.length)] in \(elapsed)")
    }

    /// The same prompts left-padded, each token at its own position (transformers' `position_ids`
    /// = cumsum(mask) − 1), give the logits of the right-padded batch.
    @Test(arguments: forwardCases)
    func leftPaddingGivesTheSameLastLogits(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let rtol = try #require(settings["rtol"] as? Double, "\(folder.path)/case.json: no rtol")
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let batch = try Batch(tensors)
        var ids: [Int] = [], mask: [Int] = [], positions: [Int] = []
        for sequence in 0..<batch.batchSize {
            let rows = sequence * batch.length..<(sequence + 1) * batch.length
            let real = rows.filter { batch.attentionMask[$0] == 1 }.map { batch.inputIDs[$0] }
            let padding = batch.length - real.count
            ids += [Int](repeating: 2, count: padding) + real
            mask += [Int](repeating: 0, count: padding) + [Int](repeating: 1, count: real.count)
            positions += [Int](repeating: 1, count: padding) + Array(0..<real.count)
        }
        let decoder = try Self.decoder()
        try decoder.forward(inputIDs: ids, attentionMask: mask, positionIDs: positions, batchSize: batch.batchSize)
        let logits = decoder.logits(at: LlamaDecoder.lastTokenRows(attentionMask: mask, batchSize: batch.batchSize))
        let error = relativeError(logits.storage, try tensors.floats("logits_last"))
        #expect(error <= rtol, "\(folder.lastPathComponent): left-padded logits_last differs by \(error)")
    }

    /// case.json's greedy prompts, each alone and all in one left-padded batch, give its 12 tokens.
    @Test(arguments: forwardCases)
    func greedyGenerationMatchesTransformers(_ folder: URL) throws {
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let greedy = try #require(settings["greedy"] as? [[String: Any]], "\(folder.path)/case.json: no greedy list")
        let prompts = greedy.map { $0["prompt_ids"] as! [Int] }, expected = greedy.map { $0["new_ids"] as! [Int] }
        let decoder = try Self.decoder()
        for (prompt, want) in zip(prompts, expected) {
            #expect(try decoder.generateGreedy(prompts: [prompt], maxNewTokens: want.count) == [want],
                    "\(folder.lastPathComponent): greedy tokens for prompt \(prompt.prefix(8))…")
        }
        let length = expected.map(\.count).max() ?? 0
        let batched = try decoder.generateGreedy(prompts: prompts, maxNewTokens: length)
        #expect(zip(batched, expected).allSatisfy { Array($0.prefix($1.count)) == $1 }, "\(folder.lastPathComponent): batched greedy tokens \(batched)")
    }

    /// Every registered variant attaches to the seven Linears through the decoder's closure, under
    /// peft's module names; freshly initialised, each leaves the model's logits as they were.
    @Test(arguments: adapterVariantNames)
    func everyVariantAttachesToTheSevenLinears(_ variant: String) throws {
        let folder = try #require(Self.forwardCases.first, "no forward case in \(SmolLM2.fixturesDirectory.path)")
        let batch = try Batch(SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path))
        let adaptedLayers: Set<String> = ["model.layers.0.", "model.layers.29."]
        let decoder = try LlamaDecoder(weights: SmolLM2.weightsOrSkip()) { module, base in
            guard adaptedLayers.contains(where: module.name.hasPrefix) else { return nil }
            return try makeLayer(variant, base: base, seed: 7)
        }
        #expect(decoder.adapters.map(\.name) == decoder.config.modules.map(\.name).filter { name in adaptedLayers.contains(where: name.hasPrefix) })
        try decoder.forward(inputIDs: batch.inputIDs, attentionMask: batch.attentionMask, positionIDs: batch.positionIDs,
                            batchSize: batch.batchSize)
        let rows = LlamaDecoder.lastTokenRows(attentionMask: batch.attentionMask, batchSize: batch.batchSize)
        let error = relativeError(decoder.logits(at: rows).storage, try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path).floats("logits_last"))
        #expect(error <= 1e-4, "\(variant): logits_last of the freshly adapted decoder differs by \(error)")
    }
}
