/// A setting written as a number (`16`) or as a multiple of the run's rank (`2r`, `r`, `1.5r`),
/// so one manifest line can keep α = 2r, or AdaLoRA's init_r = 1.5r, across a rank sweep.
public enum ScaledValue: Equatable, Sendable {
    case absolute(Double)
    case timesRank(Double)

    public func value(rank: Int) -> Double {
        switch self {
        case let .absolute(value): return value
        case let .timesRank(factor): return factor * Double(rank)
        }
    }

    /// The value rounded to a whole rank.
    public func rank(for rank: Int) -> Int { Int(value(rank: rank).rounded()) }

    /// As a manifest writes it: `16`, `2r`, `r`.
    public var text: String {
        switch self {
        case let .absolute(value): return formatNumber(value)
        case let .timesRank(factor): return factor == 1 ? "r" : "\(formatNumber(factor))r"
        }
    }

    /// A number, or `<k>r` / `r` with k > 0. `isValid` checks the absolute form.
    static func parse(_ node: ManifestNode, allowed: String, where isValid: (Double) -> Bool) throws -> ScaledValue {
        if let number = try? node.number(allowed: allowed, where: isValid) { return .absolute(number) }
        guard case let .scalar(scalar) = node.node, scalar.style == .plain, scalar.string.hasSuffix("r") else {
            throw node.error(allowed: allowed)
        }
        let factorText = scalar.string.dropLast()
        guard let factor = factorText.isEmpty ? 1 : Double(factorText), factor.isFinite, factor > 0 else {
            throw node.error(allowed: allowed)
        }
        return .timesRank(factor)
    }
}
