import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchVariants
@testable import LoRABenchInterop
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// `lorabench merge`, `infer` and `analyze` run as a user would, on peft's own checkpoints.
@Suite struct ArtifactCommandTests {
    static func fixture(_ name: String) -> String { peftCheckpointFixture(name).path }

    @Test func mergeWritesAPlainModelFolderAndRefusesAFullOne() throws {
        let files = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = "\(directory)/merged"
        #expect(try LorabenchProcess.run(["merge", Self.fixture("dora-attn"), "--out", out]) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["config.json", "model.safetensors", "vocab.txt"])
        #expect(try SafetensorsFile(path: "\(out)/model.safetensors").names == SafetensorsFile(path: files.weightsPath).names)

        let again = try LorabenchProcess.failure(["merge", Self.fixture("dora-attn"), "--out", out])
        #expect(again.status != 0)
        #expect(again.errors.contains("\(out) already holds files; choose an empty or new --out folder"))
    }

    /// The case's texts through `infer` give peft's adapted hidden states.
    @Test func inferReproducesPeftsOutputForTheCaseTexts() throws {
        _ = try minilmFilesOrSkip()
        let folder = peftCheckpointFixture("lora-qv")
        let testCase = try PeftCheckpointCase(folder)
        let texts = try Fixtures.json(folder.appendingPathComponent("case.json"))["texts"] as! [String]
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let out = "\(directory)/outputs.safetensors"
        #expect(try LorabenchProcess.run(["infer", folder.path, "--out", out] + texts.flatMap { ["--text", $0] }) == 0)
        let outputs = try SafetensorsFile(path: out)
        #expect(try outputs.ints("input_ids") == testCase.inputIDs)
        #expect(try outputs.ints("attention_mask") == testCase.attentionMask)
        #expect(try outputs.info("last_hidden_state").shape == [texts.count, testCase.inputIDs.count / texts.count, 384])
        #expect(relativeError(try outputs.floats("last_hidden_state"), try testCase.expected.floats("last_hidden_state")) <= testCase.rtol)
        #expect(outputs.tensors["logits"] == nil, "peft's fixture has no trained head")
    }

    @Test func analyzeRanksWritesTheTableTheFigureAndTheIndex() throws {
        _ = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try LorabenchProcess.run(["analyze", "ranks", Self.fixture("adalora-ffn"), "--out", directory]) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
                == ["adalora-ranks-adalora-ffn.svg", "adalora-ranks.csv", "index.html"])
        let table = try CSVTable(contentsOf: "\(directory)/adalora-ranks.csv", producer: "test")
        #expect(table.header == ["adapter", "module", "layer", "kind", "rank", "initial_rank"])
        // The fixture keeps [F, F, T, T, T, F] of layer 0's attention.output: rank 3 of init_r 6.
        #expect(table.records.map(\.fields).contains(["adalora-ffn", "encoder.layer.0.attention.output.dense", "0", "attention.output", "3", "6"]))
        #expect(try String(contentsOfFile: "\(directory)/index.html", encoding: .utf8).contains("adalora-ranks-adalora-ffn.svg"))

        // Any variant's adapter has ranks; a fixed-rank one keeps its r everywhere (--force: the table is rewritten).
        let fixed = try LorabenchProcess.failure(["analyze", "ranks", Self.fixture("lora-qv"), "--out", directory, "--force"])
        #expect(fixed.status == 0, "\(fixed.errors)")
        let fixedTable = try CSVTable(contentsOf: "\(directory)/adalora-ranks.csv", producer: "test")
        #expect(fixedTable.records.allSatisfy { $0.fields[4] == "8" && $0.fields[5] == "8" })
    }

    /// `bench model --variants lora,dora` is one unknown name, refused before any child starts.
    @Test func benchNamesAnUnknownVariantAndHowToGiveSeveral() throws {
        let result = try LorabenchProcess.failure(["bench", "model", "--variants", "lora,dora", "--no-reference"])
        #expect(result.status != 0)
        #expect(result.errors.contains("unknown variant 'lora,dora' for --variants; allowed: "))
        #expect(result.errors.contains("--variants lora --variants dora"))
    }

    /// An adapter whose base model LoRABench does not know names the models it does.
    @Test func anAdapterForAnUnknownBaseModelSaysWhichModelsAreKnown() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = Self.fixture("lora-qv")
        var config = try Fixtures.json(URL(fileURLWithPath: "\(source)/adapter_config.json"))
        config["base_model_name_or_path"] = "bert-base-uncased"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: "\(directory)/adapter_config.json"))
        try FileManager.default.copyItem(atPath: "\(source)/adapter_model.safetensors", toPath: "\(directory)/adapter_model.safetensors")
        do {
            _ = try AdaptedModel.open(directory)
            Issue.record("an unknown base model must be an error")
        } catch {
            #expect("\(error)" == "\(directory)/adapter_config.json: base_model_name_or_path is bert-base-uncased, which LoRABench cannot load; known models: minilm (sentence-transformers/all-MiniLM-L6-v2) (pass --model when the adapter was trained on one of them)")
        }
    }

    /// The sha256 recorded in an adapter must be the base's: the real model refuses another's adapter.
    @Test func anAdapterTrainedOnOtherWeightsIsRefusedByTheRealModel() throws {
        let files = try minilmFilesOrSkip()
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loaded = try PeftCheckpoint.load(Self.fixture("lora-qv"))
        _ = files
        let tensors = try Dictionary(uniqueKeysWithValues: loaded.file.names.map { name in
            (name, TensorToWrite(floats: try loaded.file.floats(name), shape: try loaded.file.info(name).shape))
        })
        try PeftCheckpoint.save(PeftAdapter(config: loaded.config, tensors: tensors), to: directory, baseModelSHA256: String(repeating: "0", count: 64))
        do {
            _ = try AdaptedModel.open(directory)
            Issue.record("an adapter recorded for other base weights must be refused")
        } catch {
            #expect("\(error)".contains("the adapter was trained on sentence-transformers/all-MiniLM-L6-v2 with weights sha256 \(String(repeating: "0", count: 64)), but the base model given has sha256 \(files.weightsSHA256)"))
        }
    }
}
