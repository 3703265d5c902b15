import LoRABenchKernels

/// A GGUF tensor kept in its quantized blocks (Q4_1, Q8_0, … as the file stores them), rows in
/// Hugging Face order, and dequantized bit for bit as `GGUFFile.matrix` does whenever a product
/// needs it: a frozen base with the file's memory and float32's numbers.
public struct GGUFBlockMatrix: PackedMatrix, Equatable {
    public let rows: Int
    public let cols: Int
    public let type: GGMLType
    /// `rows` runs of `cols / type.blockSize` blocks, row r of the weight at r·rowByteCount.
    public let blocks: [UInt8]

    public var residentBytes: Int { blocks.count }

    public func dequantize(into output: inout Matrix) {
        precondition(output.rows == rows && output.cols == cols, "dequantizing a [\(rows), \(cols)] \(type.name) matrix into \(output.shape)")
        blocks.withUnsafeBytes { source in
            output.storage.withUnsafeMutableBufferPointer { values in
                guard let from = source.baseAddress, let to = values.baseAddress else { return }
                GGMLBlockDecoder.decode(type, blocks: rows * cols / type.blockSize, from: from, to: to)
            }
        }
    }
}

extension GGUFFile {
    /// Tensor `name` [rows, columns] in its blocks. With `attentionHeadCount`, a query or key
    /// weight's rows are put in Hugging Face order as `huggingFaceAttentionRows` does (whole rows of
    /// blocks move, so no value changes). A type with no decoder is an error naming it and the tensor.
    public func blockMatrix(_ name: String, attentionHeadCount: Int? = nil) throws -> GGUFBlockMatrix {
        let info = try tensor(name)
        guard info.type.isDequantizable else { throw GGUFError.unsupportedType(path: path, tensor: name, type: info.type.name) }
        let rowBytes = info.rowByteCount
        let stored = mapping.bytes[(info.dataOffset)..<(info.dataOffset + info.rows * rowBytes)]
        guard let attentionHeadCount else { return GGUFBlockMatrix(rows: info.rows, cols: info.columns, type: info.type, blocks: Array(stored)) }
        let headSize = try attentionHeadSize(info, headCount: attentionHeadCount)
        var blocks = [UInt8]()
        blocks.reserveCapacity(info.rows * rowBytes)
        for row in 0..<info.rows {
            let source = info.dataOffset + Self.ggufRow(ofHuggingFaceRow: row, headSize: headSize) * rowBytes
            blocks.append(contentsOf: mapping.bytes[source..<(source + rowBytes)])
        }
        return GGUFBlockMatrix(rows: info.rows, cols: info.columns, type: info.type, blocks: blocks)
    }
}
