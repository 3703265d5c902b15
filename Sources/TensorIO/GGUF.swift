import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchKernels

/// Errors reading a GGUF file; each names the file, and a malformed file also names the field
/// (header, metadata key, tensor) and what is wrong with it.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, field: String, problem: String)
    case missingKey(path: String, key: String)
    case wrongValueType(path: String, key: String, found: String, expected: String)
    case missingTensor(path: String, name: String)
    case unsupportedType(path: String, tensor: String, type: String)
    case rowsOutOfRange(path: String, tensor: String, rows: Range<Int>, rowCount: Int)
    case headLayout(path: String, tensor: String, rowCount: Int, headCount: Int)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read GGUF file: \(reason)"
        case let .malformed(path, field, problem): return "\(path): not a valid GGUF file (truncated or corrupt?): \(field): \(problem)"
        case let .missingKey(path, key): return "\(path): no metadata key '\(key)'"
        case let .wrongValueType(path, key, found, expected): return "\(path): metadata '\(key)' is \(found); expected \(expected)"
        case let .missingTensor(path, name): return "\(path): no tensor named '\(name)'"
        case let .unsupportedType(path, tensor, type):
            let readable = GGMLType.dequantizable.sorted { $0.id < $1.id }.map(\.name).joined(separator: ", ")
            return "\(path): tensor '\(tensor)' has type \(type), which cannot be dequantized here (supported: \(readable))"
        case let .rowsOutOfRange(path, tensor, rows, rowCount):
            return "\(path): tensor '\(tensor)': rows \(rows.lowerBound)..<\(rows.upperBound) are outside its \(rowCount) rows"
        case let .headLayout(path, tensor, rowCount, headCount):
            return "\(path): tensor '\(tensor)': \(rowCount) rows do not split into \(headCount) heads of an even number of rows"
        }
    }
}

/// The type of a metadata value, with its id in the file.
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7, string = 8, array = 9,
         uint64 = 10, int64 = 11, float64 = 12

    /// gguf-py's name: "UINT32", "STRING", "ARRAY".
    public var description: String {
        ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"][Int(rawValue)]
    }

    /// The fewest bytes one value of this type takes in the file (a string is at least its
    /// 8-byte length, an array its 4-byte element type and 8-byte count). Counts read from the
    /// file are capped by the bytes left divided by this, so no count can make us allocate more
    /// than the file could hold.
    var minimumEncodedSize: Int {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .string: return 8
        case .array: return 12
        }
    }
}

/// One metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32), float32(Float), bool(Bool)
    case string(String), array(GGUFArray), uint64(UInt64), int64(Int64), float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// The value as an `Int` when it is an integer that fits.
    public var integer: Int? {
        switch self {
        case let .uint8(value): return Int(value)
        case let .int8(value): return Int(value)
        case let .uint16(value): return Int(value)
        case let .int16(value): return Int(value)
        case let .uint32(value): return Int(value)
        case let .int32(value): return Int(value)
        case let .uint64(value): return Int(exactly: value)
        case let .int64(value): return Int(value)
        default: return nil
        }
    }

    /// "UINT32", "ARRAY of STRING": for error messages.
    var typeDescription: String {
        if case let .array(elements) = self { return "ARRAY of \(elements.elementType)" }
        return type.description
    }
}

/// A metadata array: all elements have one type, stored unboxed (the vocabulary is an array of
/// 49,152 strings). Arrays may nest.
public enum GGUFArray: Sendable, Equatable {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32]), float32([Float])
    case bool([Bool]), string([String]), array([GGUFArray]), uint64([UInt64]), int64([Int64]), float64([Double])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    public var count: Int {
        switch self {
        case let .uint8(values): return values.count
        case let .int8(values): return values.count
        case let .uint16(values): return values.count
        case let .int16(values): return values.count
        case let .uint32(values): return values.count
        case let .int32(values): return values.count
        case let .float32(values): return values.count
        case let .bool(values): return values.count
        case let .string(values): return values.count
        case let .array(values): return values.count
        case let .uint64(values): return values.count
        case let .int64(values): return values.count
        case let .float64(values): return values.count
        }
    }

    /// The elements as `Int`s when the array holds integers that all fit.
    public var integers: [Int]? {
        switch self {
        case let .uint8(values): return values.map(Int.init)
        case let .int8(values): return values.map(Int.init)
        case let .uint16(values): return values.map(Int.init)
        case let .int16(values): return values.map(Int.init)
        case let .uint32(values): return values.map(Int.init)
        case let .int32(values): return values.map(Int.init)
        case let .uint64(values):
            let converted = values.compactMap { Int(exactly: $0) }
            return converted.count == values.count ? converted : nil
        case let .int64(values): return values.map(Int.init)
        default: return nil
        }
    }
}

/// A tensor's entry in the file: name, GGML dimensions, type and where its bytes are.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// GGML's `ne`, innermost first: `[columns, rows]` for a Linear weight `[out, in]` = `[rows, columns]`.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Absolute byte offset of the tensor's data in the file.
    public let dataOffset: Int
    public let byteCount: Int
    /// `ne[0]`, the length of one row.
    public let columns: Int
    /// The product of the outer dimensions (1 for a vector).
    public let rows: Int

    /// The row-major shape (PyTorch's order): the dimensions reversed.
    public var shape: [Int] { dimensions.reversed() }

    /// Bytes of one row: whole blocks, since a row's length is a multiple of the block size.
    public var rowByteCount: Int { columns / type.blockSize * type.typeSize }
}

/// A GGUF file (version 2 or 3, little-endian), memory-mapped read-only: the header, metadata
/// and tensor infos are parsed and checked on open; tensor data is read from the mapping when a
/// caller dequantizes rows, so a model can keep its weights in their GGUF blocks.
///
/// Every count, length, offset and size from the file is checked with overflow-checked
/// arithmetic against the bytes that exist, before anything is allocated: a hostile or truncated
/// file is a `GGUFError` naming the file and the field, never a trap or a huge allocation.
/// (As with any mapping, a file truncated by another process *after* opening can still fault.)
public final class GGUFFile: Sendable {
    public let path: String
    public let version: Int
    /// `general.alignment`, or 32 when absent (gguf-py's `GGUF_DEFAULT_ALIGNMENT`).
    public let alignment: Int
    /// Where the tensor data section starts: the end of the tensor infos, padded to `alignment`.
    public let dataSectionOffset: Int
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    private let tensorIndex: [String: Int]
    let mapping: MappedFile

    public static let defaultAlignment = 32
    /// GGML_MAX_DIMS in ggml.h.
    static let maximumDimensions = 4
    /// Deeper nesting than any real file uses; the cap keeps the recursive parser's stack bounded.
    static let maximumArrayDepth = 16



    public init(path: String) throws {
        let mapping = try MappedFile(path: path)
        var reader = GGUFReader(bytes: mapping.bytes, path: path)

        guard mapping.bytes.count >= 24 else {
            throw GGUFError.malformed(path: path, field: "header", problem: "the file has \(mapping.bytes.count) bytes, fewer than the 24 of a GGUF header")
        }
        let magic = try reader.read(UInt32.self, field: "header: magic")
        guard magic == 0x4655_4747 else {
            throw GGUFError.malformed(path: path, field: "header: magic", problem: String(format: "0x%08x is not 'GGUF'", magic))
        }
        let version = try reader.read(UInt32.self, field: "header: version")
        guard version == 2 || version == 3 else {
            let swapped = version.byteSwapped
            let hint = swapped == 2 || swapped == 3 ? " (a big-endian file, which is not supported)" : ""
            throw GGUFError.malformed(path: path, field: "header: version", problem: "version \(version) is not 2 or 3\(hint)")
        }
        // A tensor info takes at least 8 (name length) + 4 (dimension count) + 4 (type) + 8 (offset) bytes,
        // a metadata entry at least 8 (key length) + 4 (type) + 1 (value).
        let tensorCount = try reader.readCount(field: "header: tensor count", minimumElementSize: 24)
        let keyCount = try reader.readCount(field: "header: metadata count", minimumElementSize: 13)

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        keys.reserveCapacity(keyCount)
        for index in 0..<keyCount {
            let key = try reader.readString(field: "metadata key #\(index)")
            let field = "metadata '\(key)'"
            guard metadata[key] == nil else {
                throw GGUFError.malformed(path: path, field: field, problem: "the key appears twice")
            }
            let type = try reader.readValueType(field: field + ": value type")
            metadata[key] = try reader.readValue(type, field: field, depth: 0)
            keys.append(key)
        }

        var alignment = Self.defaultAlignment
        if let value = metadata["general.alignment"] {
            // llama.cpp's gguf.cpp requires a UINT32 power of two; so does this reader.
            guard case let .uint32(declared) = value, declared > 0, declared & (declared - 1) == 0 else {
                throw GGUFError.malformed(path: path, field: "metadata 'general.alignment'",
                                          problem: "\(value) is not a non-zero power of two of type UINT32")
            }
            alignment = Int(declared)
        }

        var pending: [(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int, columns: Int, rows: Int)] = []
        var tensorIndex: [String: Int] = [:]
        pending.reserveCapacity(tensorCount)
        for index in 0..<tensorCount {
            let name = try reader.readString(field: "tensor #\(index): name")
            let field = "tensor '\(name)'"
            guard tensorIndex[name] == nil else {
                throw GGUFError.malformed(path: path, field: field, problem: "the name appears twice")
            }
            let dimensionCount = try reader.read(UInt32.self, field: field + ": dimension count")
            guard (1...UInt32(Self.maximumDimensions)).contains(dimensionCount) else {
                throw GGUFError.malformed(path: path, field: field, problem: "\(dimensionCount) dimensions; GGML allows 1 to \(Self.maximumDimensions)")
            }
            var dimensions: [Int] = []
            for axis in 0..<Int(dimensionCount) {
                let extent = try reader.read(UInt64.self, field: field + ": dimension \(axis)")
                guard let extent = Int(exactly: extent) else {
                    throw GGUFError.malformed(path: path, field: field, problem: "dimension \(axis) is \(extent), more than any file can hold")
                }
                dimensions.append(extent)
            }
            let typeID = try reader.read(UInt32.self, field: field + ": type")
            guard let type = GGMLType.withID(typeID) else {
                throw GGUFError.malformed(path: path, field: field, problem: "type id \(typeID) is not a GGML type")
            }
            let relativeOffset = try reader.read(UInt64.self, field: field + ": data offset")

            let columns = dimensions[0]
            guard columns % type.blockSize == 0 else {
                throw GGUFError.malformed(path: path, field: field, problem: "row length \(columns) is not a multiple of \(type)'s block size \(type.blockSize)")
            }
            var rows = 1
            for extent in dimensions.dropFirst() {
                let (product, overflow) = rows.multipliedReportingOverflow(by: extent)
                guard !overflow else {
                    throw GGUFError.malformed(path: path, field: field, problem: "dimensions \(dimensions) have more elements than memory can address")
                }
                rows = product
            }
            let (byteCount, overflow) = rows.multipliedReportingOverflow(by: columns / type.blockSize * type.typeSize)
            guard !overflow else {
                throw GGUFError.malformed(path: path, field: field, problem: "dimensions \(dimensions) of \(type) take more bytes than memory can address")
            }
            guard let offset = Int(exactly: relativeOffset) else {
                throw GGUFError.malformed(path: path, field: field, problem: "data offset \(relativeOffset) is past the end of the file (\(mapping.bytes.count) bytes)")
            }
            guard offset % alignment == 0 else {
                throw GGUFError.malformed(path: path, field: field, problem: "data offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            tensorIndex[name] = index
            pending.append((name, dimensions, type, offset, byteCount, columns, rows))
        }

        let (paddedEnd, paddingOverflow) = reader.offset.addingReportingOverflow(alignment - 1)
        let dataSectionOffset = paddingOverflow ? Int.max : paddedEnd / alignment * alignment
        if !pending.isEmpty, dataSectionOffset > mapping.bytes.count {
            throw GGUFError.malformed(path: path, field: "data section",
                                      problem: "it would start at byte \(dataSectionOffset), past the end of the file (\(mapping.bytes.count) bytes)")
        }
        let tensors = try pending.map { entry -> GGUFTensorInfo in
            let (start, startOverflow) = dataSectionOffset.addingReportingOverflow(entry.offset)
            let (end, endOverflow) = start.addingReportingOverflow(entry.byteCount)
            guard !startOverflow, !endOverflow, end <= mapping.bytes.count else {
                throw GGUFError.malformed(path: path, field: "tensor '\(entry.name)'",
                                          problem: "data offset \(startOverflow ? "\(dataSectionOffset) + \(entry.offset)" : "\(start)") + \(entry.byteCount) bytes is past the end of the file (\(mapping.bytes.count) bytes)")
            }
            return GGUFTensorInfo(name: entry.name, dimensions: entry.dimensions, type: entry.type, dataOffset: start,
                                  byteCount: entry.byteCount, columns: entry.columns, rows: entry.rows)
        }

        self.path = path
        self.version = Int(version)
        self.alignment = alignment
        self.dataSectionOffset = dataSectionOffset
        self.metadataKeys = keys
        self.metadata = metadata
        self.tensors = tensors
        self.tensorIndex = tensorIndex
        self.mapping = mapping
    }

    // MARK: metadata

    public func value(_ key: String) throws -> GGUFValue {
        guard let value = metadata[key] else { throw GGUFError.missingKey(path: path, key: key) }
        return value
    }

    public func string(_ key: String) throws -> String {
        let value = try value(key)
        guard case let .string(string) = value else { throw wrongType(key, value, expected: "STRING") }
        return string
    }

    /// An integer of any width that fits `Int`.
    public func integer(_ key: String) throws -> Int {
        let value = try value(key)
        guard let integer = value.integer else { throw wrongType(key, value, expected: "an integer") }
        return integer
    }

    /// FLOAT32 widened exactly, or FLOAT64.
    public func float(_ key: String) throws -> Double {
        let value = try value(key)
        switch value {
        case let .float32(number): return Double(number)
        case let .float64(number): return number
        default: throw wrongType(key, value, expected: "FLOAT32 or FLOAT64")
        }
    }

    public func bool(_ key: String) throws -> Bool {
        let value = try value(key)
        guard case let .bool(flag) = value else { throw wrongType(key, value, expected: "BOOL") }
        return flag
    }

    public func strings(_ key: String) throws -> [String] {
        let value = try value(key)
        guard case let .array(.string(strings)) = value else { throw wrongType(key, value, expected: "ARRAY of STRING") }
        return strings
    }

    /// An array of integers of any width that all fit `Int`.
    public func integers(_ key: String) throws -> [Int] {
        let value = try value(key)
        guard case let .array(elements) = value, let integers = elements.integers else {
            throw wrongType(key, value, expected: "ARRAY of integers")
        }
        return integers
    }

    private func wrongType(_ key: String, _ value: GGUFValue, expected: String) -> GGUFError {
        .wrongValueType(path: path, key: key, found: value.typeDescription, expected: expected)
    }

    // MARK: tensors

    public func tensor(_ name: String) throws -> GGUFTensorInfo {
        guard let index = tensorIndex[name] else { throw GGUFError.missingTensor(path: path, name: name) }
        return tensors[index]
    }

    /// Rows `rows` of tensor `name` dequantized into `destination` (`rows.count × columns`
    /// floats, row-major), as gguf-py's `gguf.quants.dequantize` computes them. A tensor of
    /// another type, or rows outside the tensor, is an error; a short buffer is a programming error.
    public func dequantizeRows(of name: String, _ rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try dequantizableTensor(name)
        try checkRows(rows, of: info)
        precondition(destination.count >= rows.count * info.columns,
                     "buffer of \(destination.count) floats for \(rows.count) rows of \(info.columns) columns of '\(name)'")
        decode(info, rows: rows, into: destination.baseAddress)
    }

    /// Rows `rows` of tensor `name`, dequantized: `rows.count × columns` floats, row-major.
    public func dequantizeRows(of name: String, _ rows: Range<Int>) throws -> [Float] {
        let info = try dequantizableTensor(name)
        try checkRows(rows, of: info)
        return [Float](unsafeUninitializedCapacity: rows.count * info.columns) { buffer, initialized in
            decode(info, rows: rows, into: buffer.baseAddress)
            initialized = rows.count * info.columns
        }
    }

    /// The whole tensor as a `[rows, columns]` matrix (a vector is one row).
    public func matrix(_ name: String) throws -> Matrix {
        let info = try tensor(name)
        return Matrix(rows: info.rows, cols: info.columns, storage: try dequantizeRows(of: name, 0..<info.rows))
    }

    // MARK: attention rows in Hugging Face order

    /// The GGUF row that holds Hugging Face row `row` of a query or key weight whose heads have
    /// `headSize` rows. llama.cpp's converter interleaves each head's two rotary halves so that
    /// its RoPE rotates adjacent pairs; transformers undoes it on load (`reverse_permute_weights`
    /// in integrations/ggml.py: reshape `[heads, headSize/2, 2, in]`, swap axes 1 and 2), so
    /// HF row h·headSize + p·headSize/2 + i is GGUF row h·headSize + 2i + p.
    public static func ggufRow(ofHuggingFaceRow row: Int, headSize: Int) -> Int {
        precondition(headSize > 0 && headSize.isMultiple(of: 2), "head size \(headSize) is not a positive even number")
        let half = headSize / 2
        let head = row / headSize, within = row % headSize
        return head * headSize + 2 * (within % half) + within / half
    }

    /// Rows `rows` (Hugging Face numbering) of the query or key weight `name` split into
    /// `headCount` heads (the query heads for `attn_q`, the key/value heads for `attn_k`),
    /// dequantized in Hugging Face order into `destination`.
    public func huggingFaceAttentionRows(of name: String, headCount: Int, _ rows: Range<Int>,
                                         into destination: UnsafeMutableBufferPointer<Float>) throws {
        let info = try dequantizableTensor(name)
        let headSize = try attentionHeadSize(info, headCount: headCount)
        try checkRows(rows, of: info)
        precondition(destination.count >= rows.count * info.columns,
                     "buffer of \(destination.count) floats for \(rows.count) rows of \(info.columns) columns of '\(name)'")
        guard let base = destination.baseAddress else { return }
        for (position, row) in rows.enumerated() {
            let source = Self.ggufRow(ofHuggingFaceRow: row, headSize: headSize)
            decode(info, rows: source..<source + 1, into: base + position * info.columns)
        }
    }

    /// Rows `rows` (Hugging Face numbering) of a query or key weight in Hugging Face order.
    public func huggingFaceAttentionRows(of name: String, headCount: Int, _ rows: Range<Int>) throws -> [Float] {
        let info = try dequantizableTensor(name)
        try checkRows(rows, of: info)
        return try [Float](unsafeUninitializedCapacity: rows.count * info.columns) { buffer, initialized in
            try huggingFaceAttentionRows(of: name, headCount: headCount, rows, into: buffer)
            initialized = rows.count * info.columns
        }
    }

    func attentionHeadSize(_ info: GGUFTensorInfo, headCount: Int) throws -> Int {
        guard headCount > 0, info.rows % headCount == 0, (info.rows / headCount).isMultiple(of: 2), info.rows > 0 else {
            throw GGUFError.headLayout(path: path, tensor: info.name, rowCount: info.rows, headCount: headCount)
        }
        return info.rows / headCount
    }

    private func dequantizableTensor(_ name: String) throws -> GGUFTensorInfo {
        let info = try tensor(name)
        guard info.type.isDequantizable else {
            throw GGUFError.unsupportedType(path: path, tensor: name, type: info.type.name)
        }
        return info
    }

    private func checkRows(_ rows: Range<Int>, of info: GGUFTensorInfo) throws {
        guard rows.lowerBound >= 0, rows.upperBound <= info.rows else {
            throw GGUFError.rowsOutOfRange(path: path, tensor: info.name, rows: rows, rowCount: info.rows)
        }
    }

    /// Rows never straddle a block (the row length is a multiple of the block size, checked on
    /// open), so a run of rows is a run of whole blocks.
    private func decode(_ info: GGUFTensorInfo, rows: Range<Int>, into destination: UnsafeMutablePointer<Float>?) {
        guard let destination, !rows.isEmpty, info.columns > 0, let file = mapping.bytes.baseAddress else { return }
        let source = file + info.dataOffset + rows.lowerBound * info.rowByteCount
        GGMLBlockDecoder.decode(info.type, blocks: rows.count * (info.columns / info.type.blockSize), from: source, to: destination)
    }
}

/// A whole file mapped read-only. The mapping is never written, so sharing it across threads is safe.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw GGUFError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw GGUFError.unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (status.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.unreadable(path: path, reason: "not a regular file") }
        let size = Int(status.st_size)
        // mmap rejects a zero length; an empty file is reported as too short by the parser.
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw GGUFError.unreadable(path: path, reason: "cannot map it: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let address = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: address), bytes.count) }
    }
}

/// A bounds-checked little-endian reader over the mapped header.
private struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    var remaining: Int { bytes.count - offset }

    private func truncated(_ field: String, needed: Int) -> GGUFError {
        .malformed(path: path, field: field, problem: "\(needed) bytes at offset \(offset) run past the end of the file (\(bytes.count) bytes)")
    }

    mutating func read<Value: FixedWidthInteger>(_: Value.Type, field: @autoclosure () -> String) throws -> Value {
        let size = MemoryLayout<Value>.size
        guard remaining >= size else { throw truncated(field(), needed: size) }
        let value = Value(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: Value.self))
        offset += size
        return value
    }

    /// A UINT64 count of items that each take at least `minimumElementSize` bytes: it must fit
    /// in the bytes left, which also bounds every allocation sized by it.
    mutating func readCount(field: @autoclosure () -> String, minimumElementSize: Int) throws -> Int {
        let count = try read(UInt64.self, field: field())
        let fitting = remaining / minimumElementSize
        guard count <= UInt64(fitting) else {
            throw GGUFError.malformed(path: path, field: field(),
                                      problem: "\(count) items of at least \(minimumElementSize) bytes cannot fit in the \(remaining) bytes left in the file")
        }
        return Int(count)
    }

    mutating func readString(field: @autoclosure () -> String) throws -> String {
        let length = try read(UInt64.self, field: field() + ": string length")
        guard length <= UInt64(remaining) else {
            throw GGUFError.malformed(path: path, field: field(),
                                      problem: "string of \(length) bytes at offset \(offset) runs past the end of the file (\(bytes.count) bytes)")
        }
        let end = offset + Int(length)
        guard let string = String(validating: UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), as: UTF8.self) else {
            throw GGUFError.malformed(path: path, field: field(), problem: "the string at offset \(offset) is not valid UTF-8")
        }
        offset = end
        return string
    }

    mutating func readValueType(field: @autoclosure () -> String) throws -> GGUFValueType {
        let id = try read(UInt32.self, field: field())
        guard let type = GGUFValueType(rawValue: id) else {
            throw GGUFError.malformed(path: path, field: field(), problem: "value type id \(id) is not a GGUF value type (0 to 12)")
        }
        return type
    }

    mutating func readValue(_ type: GGUFValueType, field: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, field: field))
        case .int8: return .int8(try read(Int8.self, field: field))
        case .uint16: return .uint16(try read(UInt16.self, field: field))
        case .int16: return .int16(try read(Int16.self, field: field))
        case .uint32: return .uint32(try read(UInt32.self, field: field))
        case .int32: return .int32(try read(Int32.self, field: field))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, field: field)))
        case .bool: return .bool(try readBool(field: field))
        case .string: return .string(try readString(field: field))
        case .array: return .array(try readArray(field: field, depth: depth))
        case .uint64: return .uint64(try read(UInt64.self, field: field))
        case .int64: return .int64(try read(Int64.self, field: field))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, field: field)))
        }
    }

    /// A BOOL is one byte, 0 or 1 (gguf-py writes `np.bool_`); anything else is corruption.
    private mutating func readBool(field: @autoclosure () -> String) throws -> Bool {
        let byte = try read(UInt8.self, field: field())
        guard byte <= 1 else { throw GGUFError.malformed(path: path, field: field(), problem: "BOOL byte \(byte) is neither 0 nor 1") }
        return byte == 1
    }

    private mutating func readArray(field: String, depth: Int) throws -> GGUFArray {
        guard depth < GGUFFile.maximumArrayDepth else {
            throw GGUFError.malformed(path: path, field: field, problem: "arrays nested more than \(GGUFFile.maximumArrayDepth) deep")
        }
        let elementType = try readValueType(field: field + ": array element type")
        let count = try readCount(field: field + ": array length", minimumElementSize: elementType.minimumEncodedSize)
        func elements<Element>(_ read: (inout GGUFReader, Int) throws -> Element) throws -> [Element] {
            var values: [Element] = []
            values.reserveCapacity(count)
            for index in 0..<count { values.append(try read(&self, index)) }
            return values
        }
        switch elementType {
        case .uint8: return .uint8(try elements { reader, index in try reader.read(UInt8.self, field: "\(field)[\(index)]") })
        case .int8: return .int8(try elements { reader, index in try reader.read(Int8.self, field: "\(field)[\(index)]") })
        case .uint16: return .uint16(try elements { reader, index in try reader.read(UInt16.self, field: "\(field)[\(index)]") })
        case .int16: return .int16(try elements { reader, index in try reader.read(Int16.self, field: "\(field)[\(index)]") })
        case .uint32: return .uint32(try elements { reader, index in try reader.read(UInt32.self, field: "\(field)[\(index)]") })
        case .int32: return .int32(try elements { reader, index in try reader.read(Int32.self, field: "\(field)[\(index)]") })
        case .float32:
            return .float32(try elements { reader, index in Float(bitPattern: try reader.read(UInt32.self, field: "\(field)[\(index)]")) })
        case .bool: return .bool(try elements { reader, index in try reader.readBool(field: "\(field)[\(index)]") })
        case .string: return .string(try elements { reader, index in try reader.readString(field: "\(field)[\(index)]") })
        case .array: return .array(try elements { reader, index in try reader.readArray(field: "\(field)[\(index)]", depth: depth + 1) })
        case .uint64: return .uint64(try elements { reader, index in try reader.read(UInt64.self, field: "\(field)[\(index)]") })
        case .int64: return .int64(try elements { reader, index in try reader.read(Int64.self, field: "\(field)[\(index)]") })
        case .float64:
            return .float64(try elements { reader, index in Double(bitPattern: try reader.read(UInt64.self, field: "\(field)[\(index)]")) })
        }
    }
}
