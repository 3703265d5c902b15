import Yams

/// Builders for the resolved settings written to settings.yaml. The same text is hashed into
/// run ids, so every value is formatted one way only (`formatNumber`) and keys keep their order.
enum Settings {
    static func map(_ pairs: [(String, Node)]) -> Node {
        Node(pairs.map { (Node($0.0), $0.1) })
    }

    static func text(_ value: String) -> Node { Node(value) }
    static func number(_ value: Double) -> Node { Node(formatNumber(value)) }
    /// A Float setting in its shortest form (`0.85`, not `0.8500000238418579`).
    static func float(_ value: Float) -> Node { Node(formatMetric(Double(value))) }
    static func int(_ value: Int) -> Node { Node(String(value)) }
    static func bool(_ value: Bool) -> Node { Node(value ? "true" : "false") }
    static func list(_ values: [String]) -> Node { Node(values.map { Node($0) }, Tag(.seq), .flow) }

    static func yaml(_ node: Node) throws -> String { try Yams.serialize(node: node, width: -1) }
}

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
