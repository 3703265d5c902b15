import CLAPACKE

/// A LAPACK failure or an input LAPACK must not see, with what the caller can do about it.
public enum LinalgError: Error, Equatable, CustomStringConvertible {
    /// LAPACK returned `info != 0`: negative = argument `-info` was illegal, positive = no convergence.
    case lapack(routine: String, info: Int)
    /// NaN or infinity in the input; an SVD of it is meaningless (and gesdd may loop or crash).
    case nonFinite(routine: String, shape: [Int])

    public var description: String {
        switch self {
        case let .lapack(routine, info) where info < 0:
            return "\(routine): argument \(-info) had an illegal value (LAPACK info = \(info))"
        case let .lapack(routine, info):
            return "\(routine) did not converge (LAPACK info = \(info)); the input may be badly scaled"
        case let .nonFinite(routine, shape):
            return "\(routine): the \(shape[0])x\(shape[1]) input contains NaN or infinity; "
                + "check for a diverged run before decomposing its weights"
        }
    }
}

/// The thin SVD M = U · diag(S) · Vᵀ with S descending: U [m,k], S [k], Vt [k,n], k = min(m, n).
public struct SVD {
    public var u: Matrix
    public var singularValues: [Float]
    public var vt: Matrix
}

/// Thin SVD by divide and conquer (`LAPACKE_sgesdd`, job 'S').
public func svd(_ m: Matrix) throws -> SVD {
    guard m.isFinite else { throw LinalgError.nonFinite(routine: "sgesdd", shape: m.shape) }
    let rows = m.rows, cols = m.cols, k = min(rows, cols)
    var a = m.storage
    var s = [Float](repeating: 0, count: k)
    var u = Matrix(rows: rows, cols: k)
    var vt = Matrix(rows: k, cols: cols)
    guard k > 0 else { return SVD(u: u, singularValues: s, vt: vt) }
    let info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(rows), Int32(cols), &a, Int32(cols),
                              &s, &u.storage, Int32(k), &vt.storage, Int32(cols))
    guard info == 0 else { throw LinalgError.lapack(routine: "sgesdd", info: Int(info)) }
    return SVD(u: u, singularValues: s, vt: vt)
}

/// The reduced QR factorisation M = Q · R: Q [m,k] with orthonormal columns, R [k,n] upper
/// triangular, k = min(m, n) (`LAPACKE_sgeqrf` then `LAPACKE_sorgqr`).
public func qr(_ m: Matrix) throws -> (q: Matrix, r: Matrix) {
    guard m.isFinite else { throw LinalgError.nonFinite(routine: "sgeqrf", shape: m.shape) }
    let rows = m.rows, cols = m.cols, k = min(rows, cols)
    var a = m.storage
    var tau = [Float](repeating: 0, count: k)
    guard k > 0 else { return (Matrix(rows: rows, cols: 0), Matrix(rows: 0, cols: cols)) }
    var info = LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, Int32(rows), Int32(cols), &a, Int32(cols), &tau)
    guard info == 0 else { throw LinalgError.lapack(routine: "sgeqrf", info: Int(info)) }
    var r = Matrix(rows: k, cols: cols)
    for i in 0..<k {
        for j in i..<cols { r[i, j] = a[i * cols + j] }
    }
    // sorgqr wants the reflectors in the first k columns of an m×k array.
    var q = Matrix(rows: rows, cols: k)
    for i in 0..<rows {
        for j in 0..<k { q[i, j] = a[i * cols + j] }
    }
    info = LAPACKE_sorgqr(LAPACK_ROW_MAJOR, Int32(rows), Int32(k), Int32(k), &q.storage, Int32(k), &tau)
    guard info == 0 else { throw LinalgError.lapack(routine: "sorgqr", info: Int(info)) }
    return (q, r)
}

/// The inverse of an upper-triangular matrix (`LAPACKE_strtri`); throws when it is singular.
public func invertUpperTriangular(_ r: Matrix) throws -> Matrix {
    precondition(r.rows == r.cols, "strtri needs a square matrix, got \(r.shape)")
    guard r.isFinite else { throw LinalgError.nonFinite(routine: "strtri", shape: r.shape) }
    var a = r
    guard r.rows > 0 else { return a }
    let info = LAPACKE_strtri(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int8(UInt8(ascii: "N")), Int32(r.rows),
                              &a.storage, Int32(r.rows))
    guard info == 0 else { throw LinalgError.lapack(routine: "strtri", info: Int(info)) }
    for i in 0..<r.rows {
        for j in 0..<i { a[i, j] = 0 }
    }
    return a
}
