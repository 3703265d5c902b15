import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchModels
@testable import LoRABenchInterop
import LoRABenchTestSupport
import Testing

/// Adapters saved by peft itself for all-MiniLM-L6-v2 (`peft-checkpoints/` case folders, from
/// `PEFT_CHECKPOINTS_DIR` or Tests/Fixtures): loaded onto the base they reproduce peft's
/// adapted encoder output, merged into a plain model file they reproduce `merge_and_unload()`,
/// and unmerging restores the base.
@Suite struct PeftCheckpointFixtureTests {
    static let directory = Fixtures.directory(environment: "PEFT_CHECKPOINTS_DIR", default: "peft-checkpoints")
    static let cases = Fixtures.cases(in: directory)

    typealias Case = PeftCheckpointCase

    static func adapted(_ folder: URL, files: ModelFiles) throws -> AdaptedModel { try adaptedModel(folder, files: files) }

    /// The case, its adapter on the base, the base weights file and the adapted encoder's output.
    static func loaded(_ folder: URL) throws -> (Case, AdaptedModel, SafetensorsFile, [Float]) {
        let files = try minilmFilesOrSkip()
        let testCase = try Case(folder)
        let model = try adapted(folder, files: files)
        return (testCase, model, try SafetensorsFile(path: files.weightsPath), try testCase.encode(model.encoder))
    }

    @Test func casesArePresent() {
        #expect(!Self.cases.isEmpty, "no case folder under \(Self.directory.path)")
    }

    @Test(arguments: cases)
    func loadedAdapterReproducesPeftsOutput(_ folder: URL) throws {
        let files = try minilmFilesOrSkip()
        let testCase = try Case(folder)
        let model = try Self.adapted(folder, files: files)
        #expect(!model.adapters.isEmpty)
        let error = relativeError(try testCase.encode(model.encoder), try testCase.expected.floats("last_hidden_state"))
        print("\(folder.lastPathComponent): last_hidden_state relative error \(error)")
        #expect(error <= testCase.rtol, "\(folder.lastPathComponent): last_hidden_state differs by \(error) (rtol \(testCase.rtol))")
    }

    @Test(arguments: cases)
    func mergedModelFileReproducesMergeAndUnload(_ folder: URL) throws {
        let (testCase, model, base, adaptedOutput) = try Self.loaded(folder)

        let path = NSTemporaryDirectory() + "lorabench-merged-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Safetensors.write(try model.mergedTensors(base: base), to: path)
        let merged = try SafetensorsFile(path: path)
        #expect(merged.names == base.names, "the merged file keeps the base's key names")
        let plain = try BertEncoder(config: model.config, weights: BertWeights(merged), labelCount: 2, seed: 0) { _, _, _ in nil }
        let mergedOutput = try testCase.encode(plain)
        let error = relativeError(mergedOutput, try testCase.expected.floats("merged_last_hidden_state"))
        print("\(folder.lastPathComponent): merged_last_hidden_state relative error \(error)")
        #expect(error <= testCase.rtol, "\(folder.lastPathComponent): merged output differs from peft's by \(error)")
        #expect(relativeError(mergedOutput, adaptedOutput) <= 1e-5, "merged and adapted outputs must agree")
        // Writing the merged file leaves the model adapted, its W0 exactly as loaded.
        #expect(model.adapters.allSatisfy { !$0.adapter.isMerged })
        for named in model.adapters { #expect(named.adapter.base.weight == (try base.matrix(named.name + ".weight"))) }
    }

    /// In place: the merged forward (base layer only) gives the adapted output, and unmerging
    /// restores W0 to float rounding.
    @Test(arguments: cases)
    func mergeInPlaceThenUnmergeRestoresTheBase(_ folder: URL) throws {
        let (testCase, model, base, adaptedOutput) = try Self.loaded(folder)
        let baseOutput = try testCase.encode(try BertEncoder(config: model.config, weights: model.weights, labelCount: 2, seed: 0) { _, _, _ in nil })
        #expect(relativeError(adaptedOutput, baseOutput) > 1e-2, "the adapter must change the output")

        for named in model.adapters { named.adapter.merge() }
        #expect(relativeError(try testCase.encode(model.encoder), adaptedOutput) <= 1e-5)
        for named in model.adapters { named.adapter.unmerge() }
        for named in model.adapters {
            let error = relativeError(named.adapter.base.weight, try base.matrix(named.name + ".weight"))
            #expect(error <= 1e-6, "\(named.name): unmerge leaves W0 off by \(error)")
        }
        #expect(relativeError(try testCase.encode(model.encoder), adaptedOutput) <= 1e-6)
    }
}
