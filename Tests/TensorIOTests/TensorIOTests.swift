import Foundation
import Testing
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO

private func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-io-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

@Suite("SHA-256 (swift-crypto)")
struct DigestTests {
    @Test("FIPS 180-4 known answers")
    func knownAnswers() {
        #expect(SHA256Digest.hex(of: Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Digest.hex(of: Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Digest.hex(of: Data(repeating: UInt8(ascii: "a"), count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("a file hashes to its bytes' digest; a missing file is an error naming the path and the operation")
    func files() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let message = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try AtomicFile.write(message, to: directory + "/message.bin")
        #expect(try SHA256Digest.hex(ofFile: directory + "/message.bin") == SHA256Digest.hex(of: message))
        #expect { try SHA256Digest.hex(ofFile: directory + "/missing.bin") } throws: {
            "\($0)".contains(directory + "/missing.bin") && "\($0)".contains("open for hashing")
        }
    }
}

@Suite("safetensors and atomic files")
struct SafetensorsTests {
    @Test("tensors and metadata written are read back exactly, and no temporary file is left")
    func roundTrip() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/t.safetensors"
        let matrix = Matrix(rows: 2, cols: 3, storage: [1, -2, 3.5, .pi, 0, -0])
        try Safetensors.write(["m": TensorToWrite(matrix), "v": TensorToWrite(matrix, shape: [6]), "i": TensorToWrite(ints: [7, -1], shape: [2])],
                              to: path, metadata: ["format": "pt", "note": "x"])
        let file = try SafetensorsFile(path: path)
        #expect(file.names == ["i", "m", "v"])
        #expect(try file.matrix("m") == matrix)
        #expect(try file.info("v").shape == [6])
        #expect(try file.ints("i") == [7, -1])
        #expect(file.metadata["note"] == "x")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["t.safetensors"])
    }

    @Test("a truncated file is an error naming it, not a crash")
    func truncated() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/t.safetensors"
        try Safetensors.write(["m": TensorToWrite(Matrix.identity(4))], to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 8).write(to: URL(fileURLWithPath: path))
        #expect { try SafetensorsFile(path: path) } throws: { "\($0)".contains(path) }
    }
}

@Suite("CSV")
struct CSVTests {
    @Test("fields are quoted only when they must be, quotes doubled")
    func quoting() {
        #expect(CSV.line(["a", "b,c", "say \"hi\"", "x\ny"]) == "a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\n")
    }
}

@Suite("output files")
struct OutputFileTests {
    @Test("an output is never one of the inputs, even through a link or with overwrite; an existing one needs overwrite")
    func checks() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let adapter = directory + "/adapter", texts = directory + "/texts.txt"
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        try AtomicFile.write("w", to: adapter + "/adapter_model.safetensors")
        try AtomicFile.write("hi\n", to: texts)
        try FileManager.default.createSymbolicLink(atPath: directory + "/link.safetensors", withDestinationPath: adapter + "/adapter_model.safetensors")
        let inputs = [adapter, texts]
        #expect(throws: OutputFileError.isInput(path: adapter + "/adapter_model.safetensors", input: adapter)) {
            try OutputFile.check(adapter + "/adapter_model.safetensors", inputs: inputs, overwrite: true)
        }
        #expect(throws: OutputFileError.isInput(path: directory + "/link.safetensors", input: adapter)) {
            try OutputFile.check(directory + "/link.safetensors", inputs: inputs, overwrite: true)
        }
        #expect(throws: OutputFileError.isInput(path: directory + "/./texts.txt", input: texts)) {
            try OutputFile.check(directory + "/./texts.txt", inputs: inputs, overwrite: true)
        }
        try AtomicFile.write("old", to: directory + "/out.safetensors")
        #expect(throws: OutputFileError.exists(path: directory + "/out.safetensors")) {
            try OutputFile.check(directory + "/out.safetensors", inputs: inputs, overwrite: false)
        }
        try OutputFile.check(directory + "/out.safetensors", inputs: inputs, overwrite: true)
        try OutputFile.check(directory + "/new.safetensors", inputs: inputs, overwrite: false)
        #expect("\(OutputFileError.exists(path: "o.st"))" == "o.st: the file exists; pass --force to overwrite it, or choose another path")
    }
}
