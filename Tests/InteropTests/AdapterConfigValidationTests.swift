import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO
@testable import LoRABenchVariants
@testable import LoRABenchInterop
import LoRABenchTestSupport
import Testing

/// A hostile or careless `adapter_config.json` or `adapter_model.safetensors`: numbers that load
/// but wreck every output, text that is not JSON, a regular expression as `target_modules`, and
/// finite tensors whose merge is not.
@Suite struct AdapterConfigValidationTests {
    /// A copy of the lora-qv fixture (query and value of every layer, r = 8, α = 16) whose config
    /// `edit` changes, in a temporary folder the caller removes.
    static func editedFixture(_ edit: (inout [String: Any]) -> Void) throws -> String {
        let folder = NSTemporaryDirectory() + "lorabench-config-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: peftCheckpointFixture("lora-qv").path, toPath: folder)
        let configURL = URL(fileURLWithPath: "\(folder)/\(PeftCheckpoint.configFile)")
        var config = try Fixtures.json(configURL)
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        return folder
    }

    static func loadError(_ folder: String) throws -> String {
        let files = try minilmFilesOrSkip()
        do {
            _ = try adaptedModel(URL(fileURLWithPath: folder), files: files)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    /// lora_alpha 1e300 (inf as a Float) and -1e30 (finite, but every output NaN) loaded, and
    /// `infer` printed -nan with status 0.
    @Test(arguments: [1e300, -1e30, 1e7])
    func anAlphaOutOfRangeIsAnErrorNamingTheFileAndTheKey(alpha: Double) throws {
        let folder = try Self.editedFixture { $0["lora_alpha"] = alpha }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let message = try Self.loadError(folder)
        #expect(message.hasPrefix("\(folder)/adapter_config.json: invalid adapter_config.json key 'lora_alpha': found \(alpha); allowed: a finite number between -1e6 and 1e6"), "\(message)")
    }

    @Test func anAlphaPatternOrRankPatternOutOfRangeIsAnErrorNotATrap() throws {
        let alpha = try Self.editedFixture { $0["alpha_pattern"] = ["query": -1e30] }
        defer { try? FileManager.default.removeItem(atPath: alpha) }
        #expect(try Self.loadError(alpha).contains("key 'alpha_pattern': -1e+30 for encoder.layer.0.attention.self.query; allowed: a finite number"))
        // Int(1e300) traps: the pattern's rank is checked before it becomes an Int.
        let rank = try Self.editedFixture { $0["rank_pattern"] = ["value": 1e300] }
        defer { try? FileManager.default.removeItem(atPath: rank) }
        #expect(try Self.loadError(rank).contains("key 'rank_pattern': 1e+300 for encoder.layer.0.attention.self.value; allowed: an integer ≥ 1"))
        // A rank of 2^62 is a JSON integer; the tensors' expected size overflows and is a shape error.
        let huge = try Self.editedFixture { $0["r"] = 1 << 62 }
        defer { try? FileManager.default.removeItem(atPath: huge) }
        #expect(try Self.loadError(huge).contains("has shape [8, 384] but this base model needs [4611686018427387904, 384]"))
    }

    /// Invalid JSON was reported as "key '': not a JSON object".
    @Test func aConfigThatIsNotJSONSaysSoWithTheParsersLocation() throws {
        let folder = try Self.editedFixture { _ in }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = "\(folder)/\(PeftCheckpoint.configFile)"
        try Data("{\n  \"peft_type\": \"LORA\",\n  \"r\": 8,,\n}".utf8).write(to: URL(fileURLWithPath: path))
        let message = try Self.loadError(folder)
        #expect(message.hasPrefix("\(path): cannot read adapter checkpoint: the file is not valid JSON ("), "\(message)")
        #expect(message.hasSuffix("(Invalid value around character 34: line 3, column 10)"), "\(message)")
        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try Self.loadError(folder) == "\(path): cannot read adapter checkpoint: the file holds a list, not a JSON object of peft's config fields")
    }

    /// peft reads a string `target_modules` as a regular expression that whole module names match.
    @Test func aStringTargetModulesIsPeftsFullMatchRegularExpression() throws {
        let files = try minilmFilesOrSkip()
        let regex = try Self.editedFixture { $0["target_modules"] = #".*\.attention\.self\.(query|value)"# }
        defer { try? FileManager.default.removeItem(atPath: regex) }
        let adapted = try adaptedModel(URL(fileURLWithPath: regex), files: files)
        #expect(adapted.adapters.count == 12)

        // Matching a part of the name is not enough (fullmatch), and the error says how the string was read.
        let partial = try Self.editedFixture { $0["target_modules"] = "query|value" }
        defer { try? FileManager.default.removeItem(atPath: partial) }
        #expect(try Self.loadError(partial).contains(
            "key 'target_modules': 'query|value' is a string, which peft reads as a regular expression matching whole module names, and it does not match encoder.layer.0.attention.self.query"))

        let invalid = try Self.editedFixture { $0["target_modules"] = "(query" }
        defer { try? FileManager.default.removeItem(atPath: invalid) }
        #expect(try Self.loadError(invalid).contains("key 'target_modules': '(query' is a string, which peft reads as a regular expression, and it is not a valid one"))

        let allLinear = try Self.editedFixture { $0["target_modules"] = "all-linear" }
        defer { try? FileManager.default.removeItem(atPath: allLinear) }
        #expect(try adaptedModel(URL(fileURLWithPath: allLinear), files: files).adapters.count == 12)
    }

    /// Finite factors whose product overflows: `merge` wrote all-inf tensors.
    @Test func aMergeThatOverflowsIsRefusedNamingTheTensor() throws {
        let files = try minilmFilesOrSkip()
        let folder = try Self.editedFixture { _ in }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let weights = "\(folder)/\(PeftCheckpoint.weightsFile)"
        let file = try SafetensorsFile(path: weights)
        var tensors: [String: TensorToWrite] = [:]
        for name in file.names {
            let shape = file.tensors[name]!.shape
            tensors[name] = TensorToWrite(floats: [Float](repeating: 1e20, count: shape.reduce(1, *)), shape: shape)
        }
        try Safetensors.write(tensors, to: weights, metadata: file.metadata)
        let adapted = try adaptedModel(URL(fileURLWithPath: folder), files: files)
        #expect { try adapted.mergedTensors(base: SafetensorsFile(path: files.weightsPath)) } throws: {
            "\($0)" == "\(weights): merging the adapter of encoder.layer.0.attention.self.query gives NaN or infinite values in encoder.layer.0.attention.self.query.weight (its update overflows float32: check lora_alpha and the tensors); pass --allow-non-finite to write it anyway for inspection"
        }
    }
}
