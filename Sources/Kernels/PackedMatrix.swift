/// A frozen weight matrix held in a packed format (NF4 codes, a GGUF file's quantized blocks) and
/// dequantized into float32 for each product, so that a model keeps no float32 copy of it.
public protocol PackedMatrix: Sendable {
    var rows: Int { get }
    var cols: Int { get }
    /// Bytes the packed form keeps.
    var residentBytes: Int { get }
    /// Writes the float32 values into `output` [rows, cols].
    func dequantize(into output: inout Matrix)
}

extension PackedMatrix {
    /// The float32 values as a new matrix.
    public func dequantized() -> Matrix {
        var output = Matrix(uninitializedRows: rows, cols: cols)
        dequantize(into: &output)
        return output
    }
}
