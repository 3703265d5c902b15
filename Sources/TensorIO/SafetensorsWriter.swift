import Foundation

/// A safetensors file written piece by piece, for outputs too large to hold in memory (`infer`
/// over a long texts file): every tensor's dtype and shape are known up front, so the header goes
/// first and each piece of a tensor lands at its own offset as it is computed. As with
/// `AtomicFile`, the bytes go to a temporary file beside `path` that `finish()` flushes and
/// renames over it, so a failed or interrupted write never leaves a partial file at `path`.
public final class SafetensorsWriter {
    public enum DType: String, Sendable {
        case f32 = "F32", i64 = "I64"

        var size: Int { self == .f32 ? 4 : 8 }
    }

    public struct Tensor: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]

        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    public let path: String
    private let temporary: String
    private var descriptor: Int32
    /// Each tensor's dtype, element count and first byte in the file.
    private let layout: [String: (dtype: DType, count: Int, fileOffset: Int)]
    private var written: [String: Int] = [:]

    /// Creates the temporary file and writes the header; tensors are laid out in name order, as
    /// `Safetensors.encode` lays them out.
    public init(path: String, tensors: [Tensor], metadata: [String: String] = ["format": "pt"]) throws {
        self.path = path
        var entries: [Safetensors.HeaderEntry] = []
        var end = 0
        for tensor in tensors.sorted(by: { $0.name < $1.name }) {
            guard tensor.shape.allSatisfy({ $0 >= 0 }), let bytes = TensorInfo.byteCount(shape: tensor.shape, elementSize: tensor.dtype.size),
                  case (let next, false) = end.addingReportingOverflow(bytes) else {
                throw FileOperationError(operation: "lay out tensor '\(tensor.name)' of shape \(tensor.shape) in", path: path,
                                         reason: "the tensors hold more bytes than a file can")
            }
            entries.append(Safetensors.HeaderEntry(name: tensor.name, dtype: tensor.dtype.rawValue, shape: tensor.shape, byteRange: end..<next))
            end = next
        }
        let header = Safetensors.header(entries, metadata: metadata)
        layout = Dictionary(uniqueKeysWithValues: zip(entries, tensors.sorted(by: { $0.name < $1.name })).map { entry, tensor in
            (entry.name, (tensor.dtype, entry.byteRange.count / tensor.dtype.size, header.count + entry.byteRange.lowerBound))
        })
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        try FileSystem.createDirectory(directory)
        temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        descriptor = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw FileOperationError(operation: "create a temporary file to write \(url.lastPathComponent)", path: directory, errno: errno)
        }
        do {
            try header.withUnsafeBytes { try writeAll($0, at: 0) }
        } catch {
            abandon()
            throw error
        }
    }

    deinit { abandon() }

    /// Writes `values` as elements `element..<element + values.count` of the F32 tensor `name`.
    public func write(_ name: String, floats values: [Float], at element: Int) throws {
        try values.withUnsafeBytes { try write(name, .f32, $0, count: values.count, at: element) }
    }

    /// Writes `values` as elements `element..<element + values.count` of the I64 tensor `name`.
    public func write(_ name: String, ints values: [Int], at element: Int) throws {
        let little = values.map { Int64($0).littleEndian }
        try little.withUnsafeBytes { try write(name, .i64, $0, count: values.count, at: element) }
    }

    /// Flushes the file to disk and renames it to `path`; every element must have been written.
    public func finish() throws {
        for (name, tensor) in layout where written[name, default: 0] != tensor.count {
            throw FileOperationError(operation: "finish", path: path,
                                     reason: "tensor '\(name)' got \(written[name, default: 0]) of its \(tensor.count) elements")
        }
        guard fsync(descriptor) == 0 else { throw FileOperationError(operation: "write (flushing to disk)", path: path, errno: errno) }
        let closed = close(descriptor)
        descriptor = -1
        guard closed == 0 else {
            unlink(temporary)
            throw FileOperationError(operation: "write (closing)", path: path, errno: errno)
        }
        do {
            try FileSystem.rename(temporary, to: path)
        } catch {
            unlink(temporary)
            throw error
        }
    }

    private func write(_ name: String, _ dtype: DType, _ bytes: UnsafeRawBufferPointer, count: Int, at element: Int) throws {
        guard let tensor = layout[name], tensor.dtype == dtype, descriptor >= 0 else {
            throw FileOperationError(operation: "write tensor '\(name)' as \(dtype.rawValue) into", path: path,
                                     reason: layout[name] == nil ? "the file has no such tensor" : "the file holds it as another dtype, or is finished")
        }
        guard element >= 0, count <= tensor.count - element else {
            throw FileOperationError(operation: "write elements \(element)..<\(element + count) of tensor '\(name)' into", path: path,
                                     reason: "the tensor has \(tensor.count) elements")
        }
        // Floats go out as the host stores them, as in `Safetensors.encode` (little-endian hosts).
        try writeAll(bytes, at: tensor.fileOffset + element * dtype.size)
        written[name, default: 0] += count
    }

    /// `pwrite(2)` until every byte is out: it may write fewer than asked, or be interrupted.
    private func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let count = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if count < 0 {
                if errno == EINTR { continue }
                throw FileOperationError(operation: "write", path: path, errno: errno)
            }
            done += count
        }
    }

    /// Removes the temporary file of a write that did not finish.
    private func abandon() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(temporary)
    }
}
