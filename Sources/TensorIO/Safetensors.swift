import Foundation
import LoRABenchKernels

/// Errors reading or writing a safetensors file; each names the file.
public enum SafetensorsError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case missingTensor(path: String, name: String)
    case wrongDType(path: String, name: String, found: String, allowed: [String])

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "\(path): cannot read safetensors file: \(reason)"
        case let .malformed(path, reason): return "\(path): not a valid safetensors file (truncated or corrupt?): \(reason)"
        case let .missingTensor(path, name): return "\(path): no tensor named '\(name)'"
        case let .wrongDType(path, name, found, allowed):
            return "\(path): tensor '\(name)' has dtype \(found); expected one of \(allowed.joined(separator: ", "))"
        }
    }
}

/// A tensor's header entry: dtype, shape and byte range inside the data buffer.
public struct TensorInfo: Equatable, Sendable {
    public var dtype: String
    public var shape: [Int]
    public var byteRange: Range<Int>

    package static let elementSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    ]

    /// The bytes of a tensor of `shape`, nil when they overflow `Int`. The product is taken over
    /// the non-zero dimensions, so that it also bounds every partial product of the shape (the
    /// rows `SafetensorsFile.matrix` folds, a product in any order), which then cannot overflow either.
    package static func byteCount(shape: [Int], elementSize: Int) -> Int? {
        var bytes = elementSize
        for dimension in shape where dimension != 0 {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            bytes = product
        }
        return shape.contains(0) ? 0 : bytes
    }
}

/// A memory-mapped safetensors file (8-byte little-endian header length, JSON header, raw data).
///
/// The header is validated on open: its length, every dtype, every shape against its byte
/// count, and that the tensors tile the data buffer without gaps, overlaps or running past the end.
public struct SafetensorsFile {
    public let path: String
    public let tensors: [String: TensorInfo]
    public let metadata: [String: String]
    private let data: Data
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw SafetensorsError.unreadable(path: path, reason: error.localizedDescription)
        }
        guard data.count >= 8 else {
            throw SafetensorsError.malformed(path: path, reason: "file has \(data.count) bytes, fewer than the 8-byte header length")
        }
        let headerLength = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength <= UInt64(data.count - 8) else {
            throw SafetensorsError.malformed(path: path, reason: "header length \(headerLength) exceeds the file size \(data.count)")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let json = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw SafetensorsError.malformed(path: path, reason: "header is not a JSON object")
        }
        let bufferSize = data.count - headerEnd
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in json {
            if name == "__metadata__" {
                metadata = value as? [String: String] ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' lacks a dtype")
            }
            // A number JSON holds but Int cannot (2^64, 1e300) fails the cast too: never a trap.
            guard let shape = entry["shape"] as? [Int] else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' has no shape of integers within ±2^63")
            }
            guard let offsets = entry["data_offsets"] as? [Int], offsets.count == 2 else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' has no data_offsets of two integers within ±2^63")
            }
            guard let size = TensorInfo.elementSizes[dtype] else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' has unknown dtype \(dtype)")
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bufferSize else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' has offsets \(offsets) outside the \(bufferSize)-byte data buffer")
            }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' has a negative dimension in its shape \(shape)")
            }
            guard let bytes = TensorInfo.byteCount(shape: shape, elementSize: size) else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' shape \(shape): the product of its dimensions overflows a 64-bit integer")
            }
            guard bytes == offsets[1] - offsets[0] else {
                throw SafetensorsError.malformed(path: path, reason: "entry '\(name)' shape \(shape) does not match its \(offsets[1] - offsets[0]) bytes")
            }
            tensors[name] = TensorInfo(dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
        }
        var end = 0
        for info in tensors.values.sorted(by: { $0.byteRange.lowerBound < $1.byteRange.lowerBound }) where !info.byteRange.isEmpty {
            guard info.byteRange.lowerBound == end else {
                throw SafetensorsError.malformed(path: path, reason: "tensor data has a gap or overlap at byte \(end)")
            }
            end = info.byteRange.upperBound
        }
        guard end == bufferSize else {
            throw SafetensorsError.malformed(path: path, reason: "tensors cover \(end) of the \(bufferSize) data bytes")
        }
        self.data = data
        self.dataStart = headerEnd
        self.tensors = tensors
        self.metadata = metadata
    }

    public var names: [String] { tensors.keys.sorted() }

    package static let hostIsLittleEndian = 1.littleEndian == 1

    public func info(_ name: String) throws -> TensorInfo {
        guard let info = tensors[name] else { throw SafetensorsError.missingTensor(path: path, name: name) }
        return info
    }

    /// The tensor's values as Float32 (F32 as stored; F64, F16 and BF16 converted).
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        let count = info.shape.reduce(1, *)
        let start = dataStart + info.byteRange.lowerBound
        let values = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> [Float]? in
            let base = raw.baseAddress! + start
            switch info.dtype {
            case "F32" where Self.hostIsLittleEndian:
                // Stored as the host stores Float: one copy (this decodes a whole model at load).
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base, byteCount: 4 * count) }
                    initialized = count
                }
            case "F32": return (0..<count).map { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case "F64": return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case "F16": return (0..<count).map { Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
            case "BF16": return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            default: return nil
            }
        }
        guard let values else {
            throw SafetensorsError.wrongDType(path: path, name: name, found: info.dtype, allowed: ["F32", "F64", "F16", "BF16"])
        }
        return values
    }

    /// The tensor's values as Double (F64 exactly, F32 widened).
    public func doubles(_ name: String) throws -> [Double] {
        let info = try info(name)
        if info.dtype == "F64" {
            let start = dataStart + info.byteRange.lowerBound
            return data.withUnsafeBytes { raw in
                (0..<info.shape.reduce(1, *)).map { Double(bitPattern: UInt64(littleEndian: raw.baseAddress!.loadUnaligned(fromByteOffset: start + 8 * $0, as: UInt64.self))) }
            }
        }
        return try floats(name).map(Double.init)
    }

    /// The tensor's values as Int (I64 or I32).
    public func ints(_ name: String) throws -> [Int] {
        let info = try info(name)
        let start = dataStart + info.byteRange.lowerBound
        let count = info.shape.reduce(1, *)
        switch info.dtype {
        case "I64":
            return data.withUnsafeBytes { raw in (0..<count).map { Int(Int64(littleEndian: raw.baseAddress!.loadUnaligned(fromByteOffset: start + 8 * $0, as: Int64.self))) } }
        case "I32":
            return data.withUnsafeBytes { raw in (0..<count).map { Int(Int32(littleEndian: raw.baseAddress!.loadUnaligned(fromByteOffset: start + 4 * $0, as: Int32.self))) } }
        default:
            throw SafetensorsError.wrongDType(path: path, name: name, found: info.dtype, allowed: ["I64", "I32"])
        }
    }

    /// A 1-D or 2-D tensor as a matrix (1-D becomes `[1, n]`); higher ranks fold leading dimensions into rows.
    public func matrix(_ name: String) throws -> Matrix {
        let info = try info(name)
        let values = try floats(name)
        let cols = info.shape.last ?? 1
        let rows = info.shape.count <= 1 ? 1 : info.shape.dropLast().reduce(1, *)
        return Matrix(rows: rows, cols: cols, storage: values)
    }
}

/// A tensor to write: Float32 values, or Int64 values for ids and masks.
public struct TensorToWrite {
    public enum Values { case f32([Float]), i64([Int]) }
    public var shape: [Int]
    public var values: Values

    public init(_ matrix: Matrix, shape: [Int]? = nil) {
        self.shape = shape ?? matrix.shape
        self.values = .f32(matrix.storage)
    }

    public init(floats: [Float], shape: [Int]) { self.shape = shape; self.values = .f32(floats) }
    public init(ints: [Int], shape: [Int]) { self.shape = shape; self.values = .i64(ints) }
}

public enum Safetensors {
    /// The bytes of a safetensors file: tensors sorted by name, header padded with spaces to a
    /// multiple of 8 bytes (as the reference writer does).
    public static func encode(_ tensors: [String: TensorToWrite], metadata: [String: String] = ["format": "pt"]) -> Data {
        var entries: [HeaderEntry] = []
        var body = Data()
        for name in tensors.keys.sorted() {
            let tensor = tensors[name]!
            let begin = body.count
            let dtype: String
            switch tensor.values {
            case let .f32(values):
                dtype = "F32"
                values.withUnsafeBufferPointer { body.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: 4 * $0.count)) }
            case let .i64(values):
                dtype = "I64"
                let wide = values.map(Int64.init)
                wide.withUnsafeBufferPointer { body.append(UnsafeBufferPointer(start: UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: UInt8.self), count: 8 * $0.count)) }
            }
            entries.append(HeaderEntry(name: name, dtype: dtype, shape: tensor.shape, byteRange: begin..<body.count))
        }
        var out = header(entries, metadata: metadata)
        out.append(body)
        return out
    }

    /// One tensor's line of the header.
    struct HeaderEntry {
        var name: String
        var dtype: String
        var shape: [Int]
        var byteRange: Range<Int>
    }

    /// The 8-byte length and the JSON header, padded with spaces to a multiple of 8 bytes.
    static func header(_ entries: [HeaderEntry], metadata: [String: String]) -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        for entry in entries {
            header[entry.name] = ["dtype": entry.dtype, "shape": entry.shape, "data_offsets": [entry.byteRange.lowerBound, entry.byteRange.upperBound]]
        }
        var json = try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var out = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(json)
        return out
    }

    /// Writes a safetensors file atomically (temporary file, then rename).
    public static func write(_ tensors: [String: TensorToWrite], to path: String, metadata: [String: String] = ["format": "pt"]) throws {
        try AtomicFile.write(encode(tensors, metadata: metadata), to: path)
    }
}
