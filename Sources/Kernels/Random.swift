#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// SplitMix64: a tiny, fast, seedable generator. Every random draw in LoRABench comes from one
/// of these, seeded from the run's seed, so the same manifest and seed give the same numbers.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state: `SplitMix64(seed: g.state)` continues g's stream exactly
    /// (a checkpoint saves it).
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for a named sub-stream, so that adding a draw in one place does not shift another's.
    public func derived(_ label: String) -> SplitMix64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in label.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var copy = SplitMix64(seed: state ^ hash)
        _ = copy.next()
        return copy
    }

    /// Uniform in [0, 1) with 24 random bits (a Float's precision).
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A standard normal draw (Box–Muller in Double).
    public mutating func nextGaussian() -> Float {
        let u1 = max(Double(next() >> 11) * 0x1p-53, .leastNonzeroMagnitude)
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

extension Matrix {
    /// Entries drawn from U(−bound, bound).
    public static func uniform(_ rows: Int, _ cols: Int, bound: Float, using rng: inout SplitMix64) -> Matrix {
        Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in (2 * rng.nextUnitFloat() - 1) * bound })
    }

    /// Entries drawn from N(0, std²).
    public static func gaussian(_ rows: Int, _ cols: Int, std: Float, using rng: inout SplitMix64) -> Matrix {
        Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { _ in rng.nextGaussian() * std })
    }
}
