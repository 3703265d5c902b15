import Foundation
import Testing
@testable import LoRABenchKernels
@testable import LoRABenchTensorIO

/// Files and text a careless user or an attacker hands the commands: safetensors headers whose
/// sizes overflow, texts that would forge output rows, names that would leave their folder,
/// texts files that are missing, folders or not UTF-8, and outputs written piece by piece.
@Suite struct HostileFileTests {
    static func temporaryDirectory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    /// A safetensors file with `header` as its JSON header and `dataBytes` zero bytes after it.
    static func safetensors(header: String, dataBytes: Int = 0, in directory: String) throws -> String {
        var bytes = Data()
        var length = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
        bytes.append(Data(header.utf8))
        bytes.append(Data(count: dataBytes))
        let path = "\(directory)/hostile.safetensors"
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// [2^62, 4] F32 is 2^66 bytes: the size computation trapped (SIGILL in infer, merge, --resume).
    @Test(arguments: [
        (#"[4611686018427387904, 4]"#, "[0, 16]", 16, "shape [4611686018427387904, 4]: the product of its dimensions overflows a 64-bit integer"),
        // With a zero dimension the tensor is empty, but its other dimensions' product overflows.
        (#"[4611686018427387904, 4611686018427387904, 0]"#, "[0, 0]", 0, "the product of its dimensions overflows"),
        (#"[1152921504606846976, 0]"#, "[0, 0]", 0, ""),
        (#"[9223372036854775807]"#, "[0, 4]", 4, "the product of its dimensions overflows"),
        (#"[18446744073709551616]"#, "[0, 4]", 4, "has no shape of integers within ±2^63"),
        (#"[1e300]"#, "[0, 4]", 4, "has no shape of integers within ±2^63"),
        (#"[-1, -4]"#, "[0, 16]", 16, "has a negative dimension in its shape [-1, -4]"),
        (#"[1]"#, "[0, 18446744073709551616]", 4, "has no data_offsets of two integers within ±2^63"),
        (#"[1]"#, "[9223372036854775800, 9223372036854775807]", 4, "outside the 4-byte data buffer"),
    ])
    func aHeaderWhoseSizesOverflowIsAnErrorNamingTheTensor(shape: String, offsets: String, dataBytes: Int, message: String) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Self.safetensors(header: #"{"weight": {"dtype": "F32", "shape": \#(shape), "data_offsets": \#(offsets)}}"#,
                                        dataBytes: dataBytes, in: directory)
        if message.isEmpty {
            // An empty tensor is valid, however long its other dimensions.
            let file = try SafetensorsFile(path: path)
            #expect(try file.matrix("weight").storage.isEmpty)
        } else {
            #expect { try SafetensorsFile(path: path) } throws: {
                "\($0)".hasPrefix("\(path): not a valid safetensors file (truncated or corrupt?): entry 'weight' ") && "\($0)".contains(message)
            }
        }
    }

    /// `infer --text $'good\n1\t9.9 9.9\tfake row'` printed a second, forged row.
    @Test func aTSVFieldCannotStartAColumnOrARow() {
        let forged = "good\n1\t9.9 9.9\tfake row"
        let line = TSV.line(["1", "0.1 0.2", forged])
        #expect(!line.contains("\n") && line.split(separator: "\t").count == 3)
        #expect(TSV.field(forged) == #"good\n1\t9.9 9.9\tfake row"#)
        // Escapes stay reversible (a literal backslash-n is not a line break), and other controls are escaped too.
        #expect(TSV.field(#"a\nb"#) == #"a\\nb"#)
        #expect(TSV.field("bell\u{7}\r\u{1B}[31m\u{2028}") == #"bell\u{7}\r\u{1B}[31m\u{2028}"#)
        #expect(TSV.field("plain text, é ü") == "plain text, é ü")
    }

    @Test func namesThatWouldLeaveTheirFolderAreNotFileNames() {
        for name in ["../../victim", "a/b", "..", ".", "", "x\ny", "/etc/passwd", "naïve"] { #expect(!FileName.isSafe(name), "\(name)") }
        for name in ["delta-weight", "r8_vs_r64", "run.1", ".hidden"] { #expect(FileName.isSafe(name), "\(name)") }
    }

    @Test func aTextsFileIsReadLineByLineAndItsErrorsNameThePathAndTheOperation() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/texts.txt"
        // Longer than one read block, with Windows line ends and no final newline.
        let lines = (0..<20_000).map { "line \($0)" }
        try Data((lines.joined(separator: "\r\n")).utf8).write(to: URL(fileURLWithPath: path))
        let reader = try LineReader(path: path, purpose: "the texts file")
        var read: [String] = []
        while let line = try reader.next() { read.append(line) }
        #expect(read == lines)

        #expect { try LineReader(path: "\(directory)/missing.txt", purpose: "the texts file") } throws: {
            "\($0)" == "\(directory)/missing.txt: cannot open the texts file: No such file or directory"
        }
        #expect { try LineReader(path: directory, purpose: "the texts file").next() } throws: {
            "\($0)" == "\(directory): cannot read the texts file: Is a directory"
        }
        try Data([0x61, 0x0A, 0x62, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: path))
        let invalid = try LineReader(path: path, purpose: "the texts file")
        #expect(try invalid.next() == "a")
        #expect { try invalid.next() } throws: { "\($0)" == "\(path): cannot read the texts file: line 2 is not valid UTF-8 text" }
    }

    /// Written piece by piece, the file is the one `Safetensors.write` gives for the same tensors.
    @Test func aFileWrittenInPiecesIsTheFileWrittenWhole() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ids = (0..<12).map { $0 * 7 - 20 }
        let hidden = (0..<24).map { Float($0) * 0.5 - 3 }
        try Safetensors.write(["ids": TensorToWrite(ints: ids, shape: [3, 4]), "hidden": TensorToWrite(floats: hidden, shape: [3, 4, 2])],
                              to: "\(directory)/whole.safetensors")
        let writer = try SafetensorsWriter(path: "\(directory)/pieces.safetensors", tensors: [
            .init(name: "ids", dtype: .i64, shape: [3, 4]), .init(name: "hidden", dtype: .f32, shape: [3, 4, 2]),
        ])
        for row in [2, 0, 1] {
            try writer.write("ids", ints: Array(ids[row * 4..<row * 4 + 4]), at: row * 4)
            try writer.write("hidden", floats: Array(hidden[row * 8..<row * 8 + 8]), at: row * 8)
        }
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/pieces.safetensors"), "only finish() puts the file in place")
        try writer.finish()
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(directory)/pieces.safetensors"))
                == Data(contentsOf: URL(fileURLWithPath: "\(directory)/whole.safetensors")))

        do {
            let partial = try SafetensorsWriter(path: "\(directory)/partial.safetensors", tensors: [.init(name: "ids", dtype: .i64, shape: [3, 4])])
            try partial.write("ids", ints: [1, 2, 3, 4], at: 0)
            #expect { try partial.write("ids", ints: [1, 2, 3, 4, 5], at: 8) } throws: { "\($0)".contains("the tensor has 12 elements") }
            #expect { try partial.finish() } throws: { "\($0)".contains("tensor 'ids' got 4 of its 12 elements") }
        }
        // An unfinished write leaves neither the file nor its temporary one.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["pieces.safetensors", "whole.safetensors"])
    }
}
