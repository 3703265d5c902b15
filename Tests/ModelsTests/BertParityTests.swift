import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchAdapters
@testable import LoRABenchVariants
@testable import LoRABenchModels
import LoRABenchTestSupport
import Testing

/// The encoder against Hugging Face on all-MiniLM-L6-v2: hidden states and sentence-transformers'
/// sentence embeddings (mean pooling, then the model's L2 normalisation; `forward.safetensors`-
/// like files), and one LoRA training step through the whole model (`lora-step/`-like case
/// folders). Cases are discovered in the fixtures folder (`MINILM_FIXTURES_DIR`, else
/// Tests/Fixtures/minilm).
@Suite struct BertParityTests {
    static let directory = Fixtures.directory(environment: "MINILM_FIXTURES_DIR", default: "minilm")
    /// Top-level safetensors files holding `last_hidden_state`.
    static let forwardCases: [URL] = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        .filter { $0.hasSuffix(".safetensors") }
        .map { directory.appendingPathComponent($0) }
        .filter { (try? SafetensorsFile(path: $0.path).tensors["last_hidden_state"]) != nil }
    /// Folders with case.json and tensors.safetensors.
    static let trainingCases = Fixtures.cases(in: directory).filter {
        FileManager.default.fileExists(atPath: $0.appendingPathComponent("tensors.safetensors").path)
    }
    /// Float32 through six layers differs from torch's summation order by ~1e-6 relative;
    /// 1e-4 leaves room for that and still catches any wrong formula (those give ≥ 1e-2).
    static let forwardTolerance = 1e-4

    @Test func fixturesArePresent() {
        #expect(!Self.forwardCases.isEmpty, "no safetensors file with last_hidden_state under \(Self.directory.path)")
        #expect(!Self.trainingCases.isEmpty, "no case folder under \(Self.directory.path)")
    }

    @Test(arguments: forwardCases)
    func hiddenStatesAndSentenceEmbeddingsMatch(_ file: URL) throws {
        let model = try minilmFilesOrSkip()
        let tensors = try SafetensorsFile(path: file.path)
        let encoder = try BertEncoder(files: model, labelCount: 2, seed: 0)
        let ids = try tensors.ints("input_ids"), mask = try tensors.ints("attention_mask")
        let batchSize = try tensors.info("input_ids").shape[0]

        let hidden = try encoder.encode(inputIDs: ids, attentionMask: mask, batchSize: batchSize)
        let hiddenError = relativeError(hidden.storage, try tensors.floats("last_hidden_state"))
        #expect(hiddenError <= Self.forwardTolerance, "\(file.lastPathComponent): last_hidden_state differs by \(hiddenError)")
        let embeddings = try encoder.sentenceEmbeddings(inputIDs: ids, attentionMask: mask, batchSize: batchSize)
        let embeddingError = relativeError(embeddings.storage, try tensors.floats("sentence_embedding"))
        #expect(embeddingError <= Self.forwardTolerance, "\(file.lastPathComponent): sentence_embedding differs by \(embeddingError)")
    }

    /// LoRA on the case's target modules with the given A, B and head; one forward + backward
    /// must reproduce logits, loss and every gradient within the case's rtol.
    @Test(arguments: trainingCases)
    func loraTrainingStepMatches(_ folder: URL) throws {
        let model = try minilmFilesOrSkip()
        let settings = try Fixtures.json(folder.appendingPathComponent("case.json"))
        let tensors = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
        let rtol = settings["rtol"] as! Double
        let targets = settings["target_modules"] as! [String]
        let loraConfig = AdapterConfig(rank: settings["r"] as! Int, alpha: Float(settings["lora_alpha"] as! Double),
                                       useRSLoRA: settings["use_rslora"] as? Bool ?? false)
        // Fixture names carry the wrapping module's prefix (e.g. `param.bert.encoder…`).
        func key(_ kind: String, module: String, parameter: String) throws -> String {
            let suffix = "\(module).\(parameter).weight"
            guard let name = tensors.names.first(where: { $0 == "\(kind).\(suffix)" || ($0.hasPrefix(kind + ".") && $0.hasSuffix("." + suffix)) }) else {
                throw BertError.missingWeight(path: tensors.path, name: "\(kind).…\(suffix)")
            }
            return name
        }

        let labels = try tensors.ints("labels")
        let encoder = try BertEncoder(config: BertConfig(contentsOf: URL(fileURLWithPath: model.configPath)),
                                      weights: SafetensorsFile(path: model.weightsPath),
                                      labelCount: try tensors.info("logits").shape[1], seed: 0) { name, weight, bias in
            guard BertEncoder.matches(name, targetModules: targets) else { return nil }
            return try LoRA(base: FrozenLinear(weight: weight, bias: bias),
                            a: tensors.matrix(key("param", module: name, parameter: "lora_A")),
                            b: tensors.matrix(key("param", module: name, parameter: "lora_B")), scaling: loraConfig.scaling)
        }
        let linears = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                       "intermediate.dense", "output.dense"]
        let targeted = (0..<6).flatMap { layer in linears.map { "encoder.layer.\(layer).\($0)" } }
            .filter { BertEncoder.matches($0, targetModules: targets) }
        #expect(encoder.adapters.map(\.name) == targeted, "\(folder.lastPathComponent): adapted modules")
        encoder.head.weight.value = try tensors.matrix("param.head.weight")
        encoder.head.bias.value = try tensors.matrix("param.head.bias")

        let ids = try tensors.ints("input_ids"), mask = try tensors.ints("attention_mask")
        let (logits, loss) = try encoder.loss(inputIDs: ids, attentionMask: mask, batchSize: labels.count, labels: labels)
        try encoder.backward()

        var results: [(String, [Float], [Float])] = [
            ("logits", logits.storage, try tensors.floats("logits")),
            ("loss", [loss], try tensors.floats("loss")),
            ("grad.head.weight", encoder.head.weight.grad.storage, try tensors.floats("grad.head.weight")),
            ("grad.head.bias", encoder.head.bias.grad.storage, try tensors.floats("grad.head.bias")),
        ]
        for (name, adapter) in encoder.adapters {
            for parameter in adapter.parameters {
                let want = try key("grad", module: name, parameter: parameter.name)
                results.append((want, parameter.grad.storage, try tensors.floats(want)))
            }
        }
        for (name, got, want) in results {
            let error = relativeError(got, want)
            #expect(error <= rtol, "\(folder.lastPathComponent): \(name) differs by \(error) (rtol \(rtol))")
        }
    }

    @Test func targetModulesFollowPeftsSuffixRule() {
        let layer = "encoder.layer.3."
        #expect(BertEncoder.matches(layer + "attention.self.query", targetModules: ["query"]))
        #expect(BertEncoder.matches(layer + "attention.output.dense", targetModules: ["output.dense"]))
        #expect(BertEncoder.matches(layer + "output.dense", targetModules: ["output.dense"]))
        #expect(!BertEncoder.matches(layer + "intermediate.dense", targetModules: ["output.dense"]))
        #expect(!BertEncoder.matches(layer + "attention.self.query", targetModules: ["uery", "self"]))
        #expect(BertEncoder.matches(layer + "attention.self.key", targetModules: [layer + "attention.self.key"]))
    }

    /// Every registered variant on all six module types: one step gives a finite loss and a finite,
    /// non-zero gradient for every adapter and the head.
    @Test(arguments: adapterVariantNames)
    func everyVariantTrainsThroughTheEncoder(_ variant: String) throws {
        let model = try minilmFilesOrSkip()
        let plan = try VariantRegistry.plan(named: variant, for: RunShape(rank: 4, alpha: 8, steps: 100))
        let encoder = try BertEncoder(files: model, labelCount: 2, seed: 7, plan: plan, bias: .loraOnly)
        #expect(encoder.adapters.count == 36)
        #expect(encoder.adapters.first?.name == "encoder.layer.0.attention.self.query")
        #expect(encoder.trainableParameters.count == encoder.adapters.reduce(2) { $0 + $1.adapter.parameters.count })
        let ids = [101, 2023, 3185, 2001, 2307, 102, 0, 0, 101, 6659, 1012, 2025, 2204, 999, 1012, 102]
        let mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
        let (_, loss) = try encoder.loss(inputIDs: ids, attentionMask: mask, batchSize: 2, labels: [1, 0])
        try encoder.backward()
        #expect(loss.isFinite)
        for (name, adapter) in encoder.adapters {
            let gradients = adapter.parameters.map(\.grad)
            #expect(gradients.allSatisfy(\.isFinite) && gradients.contains { frobeniusNorm($0) > 0 }, "\(variant) \(name): no gradient")
        }
        #expect(encoder.head.parameters.allSatisfy { frobeniusNorm($0.grad) > 0 })
    }
}
