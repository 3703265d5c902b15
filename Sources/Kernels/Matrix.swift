/// A dense, row-major, contiguous Float32 matrix: the one tensor type of LoRABench.
///
/// A torch `nn.Linear` weight is `[out, in]` here too, so fixtures map one to one.
/// Vectors are `[1, n]` or `[n, 1]` matrices; `count` is always `rows * cols`.
public struct Matrix: Equatable, Sendable {
    public private(set) var rows: Int
    public private(set) var cols: Int
    public var storage: [Float]

    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape [\(rows), \(cols)]")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](repeating: value, count: rows * cols)
    }

    public init(rows: Int, cols: Int, storage: [Float]) {
        precondition(storage.count == rows * cols, "storage of \(storage.count) values for shape [\(rows), \(cols)]")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// A matrix whose every entry is about to be overwritten (a GEMM output with β = 0): skips
    /// the zero fill, which for activation-sized buffers is a full extra pass over memory.
    public init(uninitializedRows rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "negative matrix shape [\(rows), \(cols)]")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](unsafeUninitializedCapacity: rows * cols) { _, count in count = rows * cols }
    }

    /// `rows` copies of one row vector (a bias broadcast over a batch), written in one pass.
    public init(repeatingRow row: Matrix, count rows: Int) {
        let cols = row.count
        self.init(uninitializedRows: rows, cols: cols)
        guard rows > 0, cols > 0 else { return }
        row.storage.withUnsafeBufferPointer { source in
            storage.withUnsafeMutableBufferPointer { target in
                let (source, target) = (source.baseAddress!, target.baseAddress!)
                forEachRowChunk(rows: rows, cols: cols) { chunk in
                    for r in chunk { (target + r * cols).update(from: source, count: cols) }
                }
            }
        }
    }

    /// Builds a matrix from nested rows (tests and small literals).
    public init(_ nested: [[Float]]) {
        let cols = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == cols }, "ragged rows")
        self.init(rows: nested.count, cols: cols, storage: nested.flatMap { $0 })
    }

    public static func zeros(_ rows: Int, _ cols: Int) -> Matrix { Matrix(rows: rows, cols: cols) }

    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m.storage[i * n + i] = 1 }
        return m
    }

    public var count: Int { storage.count }
    public var shape: [Int] { [rows, cols] }

    public subscript(row: Int, col: Int) -> Float {
        get { storage[row * cols + col] }
        set { storage[row * cols + col] = newValue }
    }

    /// The same values with another shape of equal size.
    public func reshaped(_ rows: Int, _ cols: Int) -> Matrix {
        Matrix(rows: rows, cols: cols, storage: storage)
    }

    /// A copy of rows `range` (contiguous in row-major storage).
    public func rowSlice(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    /// The matrix made of the given rows, in order.
    public func selectingRows(_ indices: [Int]) -> Matrix {
        var out = Matrix(rows: indices.count, cols: cols)
        for (i, r) in indices.enumerated() {
            out.storage.replaceSubrange((i * cols)..<((i + 1) * cols), with: storage[(r * cols)..<((r + 1) * cols)])
        }
        return out
    }

    /// The matrix made of the given columns, in order.
    public func selectingColumns(_ indices: [Int]) -> Matrix {
        var out = Matrix(rows: rows, cols: indices.count)
        for r in 0..<rows {
            for (j, c) in indices.enumerated() { out.storage[r * indices.count + j] = storage[r * cols + c] }
        }
        return out
    }

    /// [self ; other]: `other`'s rows below this matrix's (same column count).
    public func stackingRows(_ other: Matrix) -> Matrix {
        precondition(other.cols == cols, "stacking \(other.shape) below \(shape)")
        return Matrix(rows: rows + other.rows, cols: cols, storage: storage + other.storage)
    }

    /// [self | factor·other]: `other`'s columns, scaled, right of this matrix's (same row count).
    public func joiningColumns(_ other: Matrix, scaledBy factor: Float = 1) -> Matrix {
        precondition(other.rows == rows, "joining \(other.shape) right of \(shape)")
        var out = Matrix(rows: rows, cols: cols + other.cols)
        for r in 0..<rows {
            for c in 0..<cols { out.storage[r * out.cols + c] = storage[r * cols + c] }
            for c in 0..<other.cols { out.storage[r * out.cols + cols + c] = factor * other.storage[r * other.cols + c] }
        }
        return out
    }

    public var transposed: Matrix {
        var out = Matrix(rows: cols, cols: rows)
        storage.withUnsafeBufferPointer { src in
            out.storage.withUnsafeMutableBufferPointer { dst in
                for r in 0..<rows {
                    for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] }
                }
            }
        }
        return out
    }

    public mutating func fill(_ value: Float) {
        storage.withUnsafeMutableBufferPointer { p in p.update(repeating: value) }
    }

    /// Reallocates to a new shape only when it differs (buffers sized on first use).
    public mutating func ensureShape(_ rows: Int, _ cols: Int) {
        if self.rows != rows || self.cols != cols {
            self = Matrix(rows: rows, cols: cols)
        }
    }

    /// As `ensureShape`, for a buffer that the caller overwrites entirely.
    package mutating func ensureShapeForOverwrite(_ rows: Int, _ cols: Int) {
        if self.rows != rows || self.cols != cols {
            self = Matrix(uninitializedRows: rows, cols: cols)
        }
    }

    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }

    /// max |x| over the elements; NaN when any element is NaN (0 for an empty matrix).
    public var largestMagnitude: Float {
        var largest: Float = 0
        for value in storage {
            if value.isNaN { return .nan }
            largest = max(largest, abs(value))
        }
        return largest
    }
}

extension Matrix: CustomStringConvertible {
    public var description: String { "Matrix[\(rows)x\(cols)]" }
}
