// How numbers are written as text, in CSV files and settings.yaml alike, so that a value
// reads back as the same number and prints the same wherever it appears.

/// The shortest text that reads back as the same Double (`16`, `0.001`, `1e-05`): integers
/// without a fractional part, everything else as Swift prints it.
public func formatNumber(_ value: Double) -> String {
    if value.rounded() == value, abs(value) < 1e15 { return String(Int(value)) }
    return "\(value)"
}

/// A metric value as CSV text. Values that are exactly a Float (losses, norms) are printed as
/// that Float's shortest form, so `0.0123` is not written as `0.012299999594688416`.
public func formatMetric(_ value: Double) -> String {
    if value.isFinite, Double(Float(value)) == value, value.rounded() != value { return "\(Float(value))" }
    return formatNumber(value)
}
