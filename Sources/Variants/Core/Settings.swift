import LoRABenchTensorIO

/// A variant's manifest entry as the variant reads it: typed look-ups that validate a value and
/// throw an error naming the file, line and key when it does not fit. The experiments floor
/// implements it over YAML; a variant never sees the YAML itself.
public protocol SettingsReader {
    func int(_ key: String, allowed: String, in range: ClosedRange<Int>) throws -> Int?
    func number(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> Double?
    func bool(_ key: String) throws -> Bool?
    func choice(_ key: String, from options: [String]) throws -> String?
    /// A number or a multiple of the run's rank (`16`, `r`, `1.5r`); `isValid` checks the number form.
    func scaledValue(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> ScaledValue?
    /// A nested block (`loraplus: {lr_ratio: 16}`) with the keys it may hold; `true` reads as an
    /// empty block and `false` or absence as nil.
    func block(_ key: String, keys: [String]) throws -> (any SettingsReader)?
    /// Refuses `keys` in this entry, for a combination a variant rules out (`why` says which).
    func reject(_ keys: [String], because why: String) throws
}

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

    /// Whether a value is a whole rank ≥ 1 (for `init_r`, `max_rank`, …).
    public static func isWholeRank(_ value: Double) -> Bool { value >= 1 && value.rounded() == value }
}

/// One resolved setting as settings.yaml writes it (and hashes into the run id): each kind has
/// one text form, so the same value always gives the same id.
public enum SettingValue: Equatable, Sendable {
    case text(String)
    case int(Int)
    /// A Double written in its shortest form (`formatNumber`).
    case number(Double)
    /// A Float written in its shortest form (`0.85`, not `0.8500000238418579`).
    case float(Float)
    case bool(Bool)

    public var text: String {
        switch self {
        case let .text(value): return value
        case let .int(value): return String(value)
        case let .number(value): return formatNumber(value)
        case let .float(value): return formatMetric(Double(value))
        case let .bool(value): return value ? "true" : "false"
        }
    }
}

/// Resolved settings in the order they are written.
public typealias SettingList = [(key: String, value: SettingValue)]

/// An entry that sets nothing: every variant and policy at its defaults (benches, tests, and
/// `VariantRegistry.plan(named:for:)`).
public struct DefaultSettings: SettingsReader {
    public init() {}
    public func int(_ key: String, allowed: String, in range: ClosedRange<Int>) throws -> Int? { nil }
    public func number(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> Double? { nil }
    public func bool(_ key: String) throws -> Bool? { nil }
    public func choice(_ key: String, from options: [String]) throws -> String? { nil }
    public func scaledValue(_ key: String, allowed: String, where isValid: (Double) -> Bool) throws -> ScaledValue? { nil }
    public func block(_ key: String, keys: [String]) throws -> (any SettingsReader)? { nil }
    public func reject(_ keys: [String], because why: String) throws {}
}
