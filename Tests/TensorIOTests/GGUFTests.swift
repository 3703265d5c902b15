import Foundation
import Testing
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchTestSupport

// MARK: - Writing small GGUF files

/// Little-endian GGUF bytes, written field by field so that a test can corrupt any one of them.
struct GGUFBytes {
    var data = Data()

    mutating func integer<Value: FixedWidthInteger>(_ value: Value) {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func string(_ text: String) {
        integer(UInt64(text.utf8.count))
        data.append(contentsOf: Array(text.utf8))
    }

    /// A value as GGUF stores it after its type id.
    mutating func value(_ value: GGUFValue) {
        switch value {
        case let .uint8(number): integer(number)
        case let .int8(number): integer(number)
        case let .uint16(number): integer(number)
        case let .int16(number): integer(number)
        case let .uint32(number): integer(number)
        case let .int32(number): integer(number)
        case let .float32(number): integer(number.bitPattern)
        case let .bool(flag): integer(UInt8(flag ? 1 : 0))
        case let .string(text): string(text)
        case let .array(elements): array(elements)
        case let .uint64(number): integer(number)
        case let .int64(number): integer(number)
        case let .float64(number): integer(number.bitPattern)
        }
    }

    mutating func array(_ elements: GGUFArray) {
        integer(elements.elementType.rawValue)
        integer(UInt64(elements.count))
        switch elements {
        case let .uint8(values): values.forEach { integer($0) }
        case let .int8(values): values.forEach { integer($0) }
        case let .uint16(values): values.forEach { integer($0) }
        case let .int16(values): values.forEach { integer($0) }
        case let .uint32(values): values.forEach { integer($0) }
        case let .int32(values): values.forEach { integer($0) }
        case let .float32(values): values.forEach { integer($0.bitPattern) }
        case let .bool(values): values.forEach { integer(UInt8($0 ? 1 : 0)) }
        case let .string(values): values.forEach { string($0) }
        case let .array(values): values.forEach { array($0) }
        case let .uint64(values): values.forEach { integer($0) }
        case let .int64(values): values.forEach { integer($0) }
        case let .float64(values): values.forEach { integer($0.bitPattern) }
        }
    }

    mutating func keyValue(_ key: String, _ value: GGUFValue) {
        string(key)
        integer(value.type.rawValue)
        self.value(value)
    }

    mutating func pad(to alignment: Int) {
        data.append(contentsOf: [UInt8](repeating: 0, count: (alignment - data.count % alignment) % alignment))
    }
}

/// A tensor of a synthetic file: GGML dimensions (innermost first), type id and raw bytes.
struct SyntheticTensor {
    var name: String
    var dimensions: [UInt64]
    var typeID: UInt32
    var bytes: [UInt8]
    /// The offset written in the tensor info; nil places the tensor after the previous one, aligned.
    var offset: UInt64? = nil
}

/// A well-formed version-3 file holding `metadata` and `tensors` (data aligned to `alignment`).
func syntheticGGUF(metadata: [(String, GGUFValue)] = [], tensors: [SyntheticTensor] = [], alignment: Int = 32) -> Data {
    var file = GGUFBytes()
    file.data.append(contentsOf: Array("GGUF".utf8))
    file.integer(UInt32(3))
    file.integer(UInt64(tensors.count))
    file.integer(UInt64(metadata.count))
    for (key, value) in metadata { file.keyValue(key, value) }
    var data = GGUFBytes()
    for tensor in tensors {
        data.pad(to: alignment)
        file.string(tensor.name)
        file.integer(UInt32(tensor.dimensions.count))
        tensor.dimensions.forEach { file.integer($0) }
        file.integer(tensor.typeID)
        file.integer(tensor.offset ?? UInt64(data.data.count))
        data.data.append(contentsOf: tensor.bytes)
    }
    file.pad(to: alignment)
    file.data.append(data.data)
    return file.data
}

/// Writes `bytes` to a fresh temporary file, runs `body` on its path, then removes it.
@discardableResult
func withTemporaryGGUF<T>(_ bytes: Data, _ body: (String) throws -> T) throws -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-gguf-\(UUID().uuidString).gguf").path
    try bytes.write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Opening `bytes` throws a `GGUFError` whose message names the file and contains every fragment.
func expectRejected(_ bytes: Data, mentioning fragments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
    try withTemporaryGGUF(bytes) { path in
        do {
            _ = try GGUFFile(path: path)
            Issue.record("a malformed file was accepted; expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
        } catch let error as GGUFError {
            let message = error.description
            #expect(message.hasPrefix(path + ":"), "the error does not name the file: \(message)", sourceLocation: sourceLocation)
            for fragment in fragments {
                #expect(message.contains(fragment), "'\(fragment)' missing from: \(message)", sourceLocation: sourceLocation)
            }
        }
    }
}

/// Values whose float32 bits differ, and the largest absolute difference.
func bitMismatches(_ got: [Float], _ want: [Float]) -> (count: Int, largest: Float) {
    precondition(got.count == want.count, "sizes differ: \(got.count) vs \(want.count)")
    var count = 0, largest: Float = 0
    for (a, b) in zip(got, want) where a.bitPattern != b.bitPattern {
        count += 1
        largest = max(largest, abs(a - b))
    }
    return (count, largest)
}

// MARK: - Parity with gguf-py on the model file

@Suite("GGUF reader: SmolLM2's file against gguf-py")
struct GGUFParityTests {
    private struct TensorCase: Decodable {
        var gguf_name: String
        var ggml_type: String
        var ne: [Int]
        var data_offset: Int
        var n_bytes: Int
        var rows_stored: [Int]?
        var hf_name: String
        var hf_transform: String
    }

    private struct Header: Decodable {
        var version: Int
        var tensor_count: Int
        var kv_count: Int
        var alignment: Int
        var data_section_offset: Int
        var tensor_types: [String: Int]
    }

    private struct Case: Decodable {
        var gguf: Header
        var tensors: [TensorCase]
    }

    @Test("every gguf-dequant case: header facts, tensor infos, and rows bit-exact in GGUF and in Hugging Face order")
    func dequantizationCases() throws {
        let folders = SmolLM2.cases(kind: "gguf-dequant")
        #expect(!folders.isEmpty, "no gguf-dequant case in \(SmolLM2.fixturesDirectory.path)")
        let file = try SmolLM2.ggufOrSkip()
        for folder in folders {
            let fixture = try JSONDecoder().decode(Case.self, from: Data(contentsOf: folder.appendingPathComponent("case.json")))
            let expected = try SafetensorsFile(path: folder.appendingPathComponent("tensors.safetensors").path)
            let name = folder.lastPathComponent
            #expect(file.version == fixture.gguf.version, "\(name): version")
            #expect(file.tensors.count == fixture.gguf.tensor_count, "\(name): tensor count")
            #expect(file.metadataKeys.count == fixture.gguf.kv_count, "\(name): metadata count")
            #expect(file.alignment == fixture.gguf.alignment, "\(name): alignment")
            #expect(file.dataSectionOffset == fixture.gguf.data_section_offset, "\(name): data section offset")
            let typeCounts = Dictionary(grouping: file.tensors, by: \.type.name).mapValues(\.count)
            #expect(typeCounts == fixture.gguf.tensor_types, "\(name): tensor types")

            for tensor in fixture.tensors {
                let info = try file.tensor(tensor.gguf_name)
                #expect(info.type.name == tensor.ggml_type, "\(name): \(tensor.gguf_name) type")
                #expect(info.dimensions == tensor.ne, "\(name): \(tensor.gguf_name) dimensions")
                #expect(info.dataOffset == tensor.data_offset, "\(name): \(tensor.gguf_name) data offset")
                #expect(info.byteCount == tensor.n_bytes, "\(name): \(tensor.gguf_name) byte count")
                let rows = tensor.rows_stored.map { $0[0]..<$0[1] } ?? 0..<info.rows

                let ggufRows = try file.dequantizeRows(of: tensor.gguf_name, rows)
                let ggufDifference = bitMismatches(ggufRows, try expected.floats("gguf." + tensor.gguf_name))
                #expect(ggufDifference.count == 0,
                        "\(name): gguf.\(tensor.gguf_name): \(ggufDifference.count) values differ, largest by \(ggufDifference.largest)")

                let hfRows: [Float]
                if tensor.hf_transform == "identity" {
                    hfRows = ggufRows
                } else {
                    let headCount = try #require(Self.headCount(tensor.hf_transform), "\(name): unknown hf_transform '\(tensor.hf_transform)'")
                    hfRows = try file.huggingFaceAttentionRows(of: tensor.gguf_name, headCount: headCount, rows)
                }
                let hfDifference = bitMismatches(hfRows, try expected.floats("hf." + tensor.hf_name))
                #expect(hfDifference.count == 0, "\(name): hf.\(tensor.hf_name): \(hfDifference.count) values differ, largest by \(hfDifference.largest)")
            }
        }
    }

    /// "un-permuted, 9 heads of 64 rows" → 9.
    private static func headCount(_ transform: String) -> Int? {
        guard transform.hasPrefix("un-permuted") else { return nil }
        let words = transform.split(separator: " ")
        guard let heads = words.firstIndex(of: "heads"), heads > 0 else { return nil }
        return Int(words[heads - 1])
    }

    @Test("a row range equals the same rows of the whole tensor, in GGUF and in Hugging Face order")
    func rowRanges() throws {
        let file = try SmolLM2.ggufOrSkip()
        let headCount = try file.integer("llama.attention.head_count")
        let whole = try file.matrix("blk.3.attn_q.weight")
        #expect(whole.rows == 576 && whole.cols == 576)
        #expect(try file.dequantizeRows(of: "blk.3.attn_q.weight", 100..<131) == Array(whole.storage[100 * 576..<131 * 576]))

        let hfWhole = try file.huggingFaceAttentionRows(of: "blk.3.attn_q.weight", headCount: headCount, 0..<576)
        #expect(try file.huggingFaceAttentionRows(of: "blk.3.attn_q.weight", headCount: headCount, 60..<70) == Array(hfWhole[60 * 576..<70 * 576]))
        // HF row h·64 + p·32 + i is GGUF row h·64 + 2i + p (the fixture README's statement of it).
        for (hfRow, ggufRow) in [(0, 0), (1, 2), (31, 62), (32, 1), (33, 3), (63, 63), (64 + 32 + 5, 64 + 11)] {
            #expect(GGUFFile.ggufRow(ofHuggingFaceRow: hfRow, headSize: 64) == ggufRow, "HF row \(hfRow)")
            #expect(Array(hfWhole[hfRow * 576..<(hfRow + 1) * 576]) == Array(whole.storage[ggufRow * 576..<(ggufRow + 1) * 576]))
        }
    }

    @Test("the hyperparameters and tokenizer metadata read with their types")
    func metadata() throws {
        let file = try SmolLM2.ggufOrSkip()
        #expect(try file.string("general.architecture") == "llama")
        #expect(try file.integer("llama.block_count") == 30)
        #expect(try file.integer("llama.attention.head_count_kv") == 3)
        #expect(try file.float("llama.rope.freq_base") == 100_000)
        #expect(try Float(file.float("llama.attention.layer_norm_rms_epsilon")) == Float(1e-5))
        #expect(try file.strings("tokenizer.ggml.tokens").count == 49152)
        #expect(try file.strings("tokenizer.ggml.merges").count == 48900)
        #expect(try file.integers("tokenizer.ggml.token_type").count == 49152)
        #expect(try file.bool("tokenizer.ggml.add_bos_token") == false)
        #expect(file.metadata["general.alignment"] == nil && file.alignment == 32)
        #expect { try file.string("llama.block_count") } throws: { error in
            "\(error)".contains("'llama.block_count' is UINT32; expected STRING") && "\(error)".contains(file.path)
        }
        #expect { try file.integer("no.such.key") } throws: { "\($0)" == "\(file.path): no metadata key 'no.such.key'" }
        #expect { try file.dequantizeRows(of: "output.weight", 0..<1) } throws: { "\($0)" == "\(file.path): no tensor named 'output.weight'" }
        #expect { try file.dequantizeRows(of: "blk.0.attn_k.weight", 190..<193) } throws: {
            "\($0)" == "\(file.path): tensor 'blk.0.attn_k.weight': rows 190..<193 are outside its 192 rows"
        }
        #expect { try file.huggingFaceAttentionRows(of: "blk.0.attn_k.weight", headCount: 5, 0..<1) } throws: {
            "\($0)".contains("'blk.0.attn_k.weight': 192 rows do not split into 5 heads")
        }
    }
}

// MARK: - Block formats on synthetic files

@Suite("GGUF reader: block formats and metadata on small files")
struct GGUFFormatTests {
    private static func half(_ value: Float16) -> [UInt8] { withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }

    @Test("F32, F16, BF16, Q4_0, Q4_1 and Q8_0 decode as gguf-py's formulas give them, bit for bit")
    func everyType() throws {
        let f32Values: [Float] = [1.5, -0.0, .infinity, Float(bitPattern: 0x0000_0001)]
        let f16Bits: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x7C00, 0x8000, 0x3555]
        let bf16Bits: [UInt16] = [0x3F80, 0xC000, 0x8000, 0x7F80, 0x0001, 0x4049]
        let nibbles = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let q8 = (0..<32).map { Int8($0 * 8 - 128) }
        let tensors = [
            SyntheticTensor(name: "f32", dimensions: [4], typeID: 0, bytes: f32Values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }),
            SyntheticTensor(name: "f16", dimensions: [3, 2], typeID: 1, bytes: f16Bits.flatMap { b in withUnsafeBytes(of: b.littleEndian) { Array($0) } }),
            SyntheticTensor(name: "bf16", dimensions: [6], typeID: 30, bytes: bf16Bits.flatMap { b in withUnsafeBytes(of: b.littleEndian) { Array($0) } }),
            SyntheticTensor(name: "q4_0", dimensions: [32], typeID: 2, bytes: Self.half(0.5) + nibbles),
            SyntheticTensor(name: "q4_1", dimensions: [32], typeID: 3, bytes: Self.half(0.1) + Self.half(-0.7) + nibbles),
            SyntheticTensor(name: "q8_0", dimensions: [32], typeID: 8, bytes: Self.half(0.013) + q8.map { UInt8(bitPattern: $0) }),
        ]
        try withTemporaryGGUF(syntheticGGUF(tensors: tensors)) { path in
            let file = try GGUFFile(path: path)
            #expect(try file.dequantizeRows(of: "f32", 0..<1).map(\.bitPattern) == f32Values.map(\.bitPattern))
            #expect(try file.matrix("f16") == Matrix(rows: 2, cols: 3, storage: f16Bits.map { Float(Float16(bitPattern: $0)) }))
            #expect(try file.dequantizeRows(of: "f16", 1..<2) == [Float.infinity, -0.0, Float(Float16(bitPattern: 0x3555))])
            #expect(try file.dequantizeRows(of: "bf16", 0..<1).map(\.bitPattern) == bf16Bits.map { UInt32($0) << 16 })
            #expect(try file.dequantizeRows(of: "bf16", 0..<1)[0] == 1)

            let low = (0..<16).map { Float($0) }, high = (0..<16).map { Float(15 - $0) }
            let d4: Float = 0.5
            #expect(try file.dequantizeRows(of: "q4_0", 0..<1) == (low + high).map { d4 * ($0 - 8) })
            let d: Float = Float(Float16(0.1)), m: Float = Float(Float16(-0.7))
            #expect(try file.dequantizeRows(of: "q4_1", 0..<1).map(\.bitPattern) == (low + high).map { (d * $0 + m).bitPattern })
            let d8 = Float(Float16(0.013))
            #expect(try file.dequantizeRows(of: "q8_0", 0..<1).map(\.bitPattern) == q8.map { (Float($0) * d8).bitPattern })
        }
    }

    @Test("a type gguf-py knows but this reader does not dequantize opens, and reading it names the type and the tensor")
    func unsupportedType() throws {
        let q5 = SyntheticTensor(name: "blk.0.ffn_up.weight", dimensions: [32], typeID: 6, bytes: [UInt8](repeating: 0, count: 22))
        try withTemporaryGGUF(syntheticGGUF(tensors: [q5])) { path in
            let file = try GGUFFile(path: path)
            #expect(try file.tensor("blk.0.ffn_up.weight").type.name == "Q5_0")
            #expect { try file.dequantizeRows(of: "blk.0.ffn_up.weight", 0..<1) } throws: { error in
                "\(error)".hasPrefix("\(path): tensor 'blk.0.ffn_up.weight' has type Q5_0, which cannot be dequantized here")
            }
        }
    }

    /// One value of every type, and arrays of every element type, nested two deep.
    static let everyValue: [(String, GGUFValue)] = {
        let arrays: [GGUFArray] = [
            .uint8([0, 255]), .int8([-128, 127]), .uint16([0, 65535]), .int16([-32768, 32767]), .uint32([0, .max]),
            .int32([.min, .max]), .float32([1.5, -.infinity]), .bool([true, false]), .string(["", "é", "東京"]),
            .uint64([0, .max]), .int64([.min, .max]), .float64([.pi, -0.0]), .array([]),
        ]
        let scalars: [(String, GGUFValue)] = [
            ("u8", .uint8(7)), ("i8", .int8(-7)), ("u16", .uint16(700)), ("i16", .int16(-700)), ("u32", .uint32(70_000)),
            ("i32", .int32(-70_000)), ("f32", .float32(0.25)), ("bool", .bool(true)), ("string", .string("SmolLM2 😀")),
            ("u64", .uint64(1 << 40)), ("i64", .int64(-(1 << 40))), ("f64", .float64(1e-300)),
        ]
        return scalars + arrays.map { ("array." + $0.elementType.description, .array($0)) }
            + [("nested", .array(.array(arrays))), ("nested.twice", .array(.array([.array(arrays), .array([])])))]
    }()

    @Test("metadata of every value type, with arrays of every type nested, reads back exactly and in file order")
    func everyValueType() throws {
        try withTemporaryGGUF(syntheticGGUF(metadata: Self.everyValue)) { path in
            let file = try GGUFFile(path: path)
            #expect(file.metadataKeys == Self.everyValue.map(\.0))
            for (key, value) in Self.everyValue {
                #expect(file.metadata[key] == value, "\(key)")
            }
            #expect(file.tensors.isEmpty)
            #expect(try file.integers("array.INT32") == [Int(Int32.min), Int(Int32.max)])
            #expect(try file.integer("u64") == 1 << 40)
        }
    }

    @Test("general.alignment moves the data section and the offsets")
    func alignment() throws {
        let tensor = SyntheticTensor(name: "v", dimensions: [3], typeID: 0, bytes: [Float(1), 2, 3].flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
        let bytes = syntheticGGUF(metadata: [("general.alignment", .uint32(64))], tensors: [tensor, SyntheticTensor(name: "w", dimensions: [1], typeID: 0, bytes: [0, 0, 128, 63])], alignment: 64)
        try withTemporaryGGUF(bytes) { path in
            let file = try GGUFFile(path: path)
            #expect(file.alignment == 64 && file.dataSectionOffset % 64 == 0)
            #expect(try file.tensor("w").dataOffset == file.dataSectionOffset + 64)
            #expect(try file.dequantizeRows(of: "v", 0..<1) == [1, 2, 3])
            #expect(try file.dequantizeRows(of: "w", 0..<1) == [1])
        }
    }
}

// MARK: - Hostile and truncated files

@Suite("GGUF reader: hostile and truncated files are errors naming the file and the field")
struct GGUFHostileFileTests {
    private static let validTensor = SyntheticTensor(name: "blk.0.attn_q.weight", dimensions: [32, 2], typeID: 8,
                                                      bytes: [UInt8](repeating: 1, count: 68))

    /// The header alone: magic, version, tensor count, metadata count.
    private static func header(tensors: UInt64, keys: UInt64, version: UInt32 = 3) -> GGUFBytes {
        var file = GGUFBytes()
        file.data.append(contentsOf: Array("GGUF".utf8))
        file.integer(version)
        file.integer(tensors)
        file.integer(keys)
        return file
    }

    @Test("an empty file, a truncated header, a wrong magic, a big-endian or unknown version")
    func header() throws {
        try expectRejected(Data(), mentioning: ["header", "0 bytes"])
        let valid = syntheticGGUF(tensors: [Self.validTensor])
        try expectRejected(valid.prefix(10), mentioning: ["header", "10 bytes"])
        var wrongMagic = valid
        wrongMagic.replaceSubrange(0..<4, with: Array("GGML".utf8))
        try expectRejected(wrongMagic, mentioning: ["header: magic", "not 'GGUF'"])
        try expectRejected(Self.header(tensors: 0, keys: 0, version: UInt32(3).byteSwapped).data, mentioning: ["header: version", "big-endian"])
        try expectRejected(Self.header(tensors: 0, keys: 0, version: 1).data, mentioning: ["header: version", "version 1"])
    }

    @Test("huge tensor, metadata and array counts are refused before anything is allocated")
    func hugeCounts() throws {
        try expectRejected(Self.header(tensors: 1 << 62, keys: 0).data, mentioning: ["header: tensor count", "4611686018427387904 items"])
        try expectRejected(Self.header(tensors: .max, keys: 0).data, mentioning: ["header: tensor count"])
        try expectRejected(Self.header(tensors: 0, keys: 1 << 40).data, mentioning: ["header: metadata count"])
        for type in GGUFValueType.allCases {
            var file = Self.header(tensors: 0, keys: 1)
            file.string("tokenizer.ggml.tokens")
            file.integer(GGUFValueType.array.rawValue)
            file.integer(type.rawValue)
            file.integer(UInt64(1) << 60)
            try expectRejected(file.data, mentioning: ["metadata 'tokenizer.ggml.tokens': array length", "cannot fit"])
        }
    }

    @Test("a string whose length runs past the end of the file, in a key, a value, an array and a tensor name")
    func stringPastEnd() throws {
        var key = Self.header(tensors: 0, keys: 1)
        key.integer(UInt64(1000))
        key.data.append(contentsOf: Array("general".utf8))
        try expectRejected(key.data, mentioning: ["metadata key #0", "string of 1000 bytes"])

        var value = Self.header(tensors: 0, keys: 1)
        value.string("general.name")
        value.integer(GGUFValueType.string.rawValue)
        value.integer(UInt64.max)
        try expectRejected(value.data, mentioning: ["metadata 'general.name'", "string of 18446744073709551615 bytes"])

        var element = Self.header(tensors: 0, keys: 1)
        element.string("tokenizer.ggml.merges")
        element.integer(GGUFValueType.array.rawValue)
        element.integer(GGUFValueType.string.rawValue)
        element.integer(UInt64(2))
        element.string("Ġ t")
        element.integer(UInt64(50))
        element.data.append(contentsOf: [UInt8](repeating: 65, count: 20))
        try expectRejected(element.data, mentioning: ["metadata 'tokenizer.ggml.merges'[1]", "string of 50 bytes"])

        var name = Self.header(tensors: 1, keys: 0)
        name.integer(UInt64(1) << 50)
        name.data.append(contentsOf: [UInt8](repeating: 0, count: 40))
        try expectRejected(name.data, mentioning: ["tensor #0: name", "string of 1125899906842624 bytes"])

        var invalid = Self.header(tensors: 0, keys: 1)
        invalid.integer(UInt64(2))
        invalid.data.append(contentsOf: [0xC3, 0x28])
        invalid.integer(GGUFValueType.uint8.rawValue)
        invalid.integer(UInt8(0))
        try expectRejected(invalid.data, mentioning: ["metadata key #0", "not valid UTF-8"])
    }

    @Test("a file cut anywhere inside its header, metadata or tensor infos is an error, never a crash")
    func truncatedEverywhere() throws {
        let metadata = GGUFFormatTests.everyValue.filter { ["string", "f64", "bool", "nested"].contains($0.0) }
        let valid = syntheticGGUF(metadata: metadata, tensors: [Self.validTensor])
        let file = try withTemporaryGGUF(valid) { try GGUFFile(path: $0) }
        for length in 0..<file.dataSectionOffset {
            try withTemporaryGGUF(valid.prefix(length)) { path in
                #expect(throws: GGUFError.self, "cut at \(length) bytes") { try GGUFFile(path: path) }
            }
        }
        try expectRejected(valid.prefix(valid.count - 1), mentioning: ["tensor 'blk.0.attn_q.weight'", "past the end of the file"])
    }

    @Test("a data offset past the end of the file, or one that overflows, names the tensor and the sizes")
    func offsetPastEnd() throws {
        var far = Self.validTensor
        far.offset = 1 << 20
        let bytes = syntheticGGUF(tensors: [far])
        try withTemporaryGGUF(bytes) { path in
            #expect { try GGUFFile(path: path) } throws: { error in
                "\(error)".hasSuffix("tensor 'blk.0.attn_q.weight': data offset \(bytes.count - 68 + (1 << 20)) + 68 bytes is past the end of the file (\(bytes.count) bytes)")
            }
        }
        var overflowing = Self.validTensor
        overflowing.offset = UInt64(Int.max) / 32 * 32
        try expectRejected(syntheticGGUF(tensors: [overflowing]), mentioning: ["tensor 'blk.0.attn_q.weight'", "past the end of the file"])
        var beyondInt = Self.validTensor
        beyondInt.offset = UInt64.max - 31
        try expectRejected(syntheticGGUF(tensors: [beyondInt]), mentioning: ["tensor 'blk.0.attn_q.weight'", "data offset 18446744073709551584"])
    }

    @Test("a data offset that is not a multiple of the alignment")
    func misalignedOffset() throws {
        var misaligned = Self.validTensor
        misaligned.offset = 16
        try expectRejected(syntheticGGUF(tensors: [misaligned]), mentioning: ["tensor 'blk.0.attn_q.weight'", "data offset 16 is not a multiple of the alignment 32"])
        try expectRejected(syntheticGGUF(metadata: [("general.alignment", .uint32(48))]), mentioning: ["metadata 'general.alignment'", "power of two"])
        try expectRejected(syntheticGGUF(metadata: [("general.alignment", .uint64(32))]), mentioning: ["metadata 'general.alignment'", "UINT32"])
    }

    @Test("an unknown tensor type, value type or array element type; a bad BOOL")
    func unknownTypes() throws {
        var tensor = Self.validTensor
        tensor.typeID = 77
        try expectRejected(syntheticGGUF(tensors: [tensor]), mentioning: ["tensor 'blk.0.attn_q.weight'", "type id 77 is not a GGML type"])

        var value = Self.header(tensors: 0, keys: 1)
        value.string("general.name")
        value.integer(UInt32(13))
        value.integer(UInt64(0))
        try expectRejected(value.data, mentioning: ["metadata 'general.name': value type", "value type id 13"])

        var element = Self.header(tensors: 0, keys: 1)
        element.string("general.tags")
        element.integer(GGUFValueType.array.rawValue)
        element.integer(UInt32(99))
        element.integer(UInt64(0))
        try expectRejected(element.data, mentioning: ["metadata 'general.tags': array element type", "value type id 99"])

        var bool = Self.header(tensors: 0, keys: 1)
        bool.string("tokenizer.ggml.add_bos_token")
        bool.integer(GGUFValueType.bool.rawValue)
        bool.integer(UInt8(2))
        try expectRejected(bool.data, mentioning: ["metadata 'tokenizer.ggml.add_bos_token'", "BOOL byte 2"])
    }

    @Test("nested arrays of every value type, corrupted inside, and nesting too deep")
    func nestedArrays() throws {
        for type in GGUFValueType.allCases where type != .array {
            // An array of one array of `type` whose second element is cut off.
            var file = Self.header(tensors: 0, keys: 1)
            file.string("nested")
            file.integer(GGUFValueType.array.rawValue)
            file.integer(GGUFValueType.array.rawValue)
            file.integer(UInt64(1))
            file.integer(type.rawValue)
            file.integer(UInt64(2))
            file.value(Self.sample(of: type))
            try expectRejected(file.data, mentioning: ["metadata 'nested'[0]"])
        }
        var deep = Self.header(tensors: 0, keys: 1)
        deep.string("deep")
        deep.integer(GGUFValueType.array.rawValue)
        for _ in 0..<1000 {
            deep.integer(GGUFValueType.array.rawValue)
            deep.integer(UInt64(1))
        }
        try expectRejected(deep.data, mentioning: ["metadata 'deep'", "nested more than 16 deep"])
    }

    private static func sample(of type: GGUFValueType) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(1)
        case .int8: return .int8(-1)
        case .uint16: return .uint16(1)
        case .int16: return .int16(-1)
        case .uint32: return .uint32(1)
        case .int32: return .int32(-1)
        case .float32: return .float32(1)
        case .bool: return .bool(true)
        case .string: return .string("x")
        case .array: return .array(.uint8([]))
        case .uint64: return .uint64(1)
        case .int64: return .int64(-1)
        case .float64: return .float64(1)
        }
    }

    @Test("bad tensor infos: too many dimensions, a dimension beyond Int, element counts that overflow, a row that splits a block, a duplicate")
    func badTensorInfos() throws {
        var fiveDimensions = Self.validTensor
        fiveDimensions.dimensions = [32, 1, 1, 1, 1]
        try expectRejected(syntheticGGUF(tensors: [fiveDimensions]), mentioning: ["tensor 'blk.0.attn_q.weight'", "5 dimensions"])
        var huge = Self.validTensor
        huge.dimensions = [32, .max]
        try expectRejected(syntheticGGUF(tensors: [huge]), mentioning: ["tensor 'blk.0.attn_q.weight'", "dimension 1 is 18446744073709551615"])
        var overflowing = Self.validTensor
        overflowing.dimensions = [32, 1 << 31, 1 << 31, 1 << 31]
        try expectRejected(syntheticGGUF(tensors: [overflowing]), mentioning: ["tensor 'blk.0.attn_q.weight'", "more elements than memory can address"])
        var bytesOverflow = Self.validTensor
        bytesOverflow.dimensions = [32, 1 << 61]
        try expectRejected(syntheticGGUF(tensors: [bytesOverflow]), mentioning: ["tensor 'blk.0.attn_q.weight'", "more bytes than memory can address"])
        var splitBlock = Self.validTensor
        splitBlock.dimensions = [48, 1]
        try expectRejected(syntheticGGUF(tensors: [splitBlock]), mentioning: ["tensor 'blk.0.attn_q.weight'", "row length 48 is not a multiple of Q8_0's block size 32"])
        try expectRejected(syntheticGGUF(tensors: [Self.validTensor, Self.validTensor]), mentioning: ["tensor 'blk.0.attn_q.weight'", "appears twice"])
        try expectRejected(syntheticGGUF(metadata: [("general.name", .string("a")), ("general.name", .string("b"))]),
                           mentioning: ["metadata 'general.name'", "appears twice"])
    }
}
