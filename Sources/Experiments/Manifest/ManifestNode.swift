import Yams
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// A YAML node that knows where it came from. Every typed read either returns a value or throws
/// a `ManifestError` with the file, line, key path, the value found and what is allowed.
///
/// Scalars are read from their text, not from Yams' implicit tags: YAML 1.1 resolves `1e-5`
/// (no dot) to a string, and a manifest must accept it as a number, as mlx-lm's loader does.
public struct ManifestNode {
    public let node: Node
    public let keyPath: String
    public let file: String
    /// Where the key holding this value is written: a key missing from this mapping is reported
    /// there (the `sweep:` line), not at the mapping's first entry.
    package let keyMark: Mark?

    public init(node: Node, keyPath: String, file: String) {
        self.init(node: node, keyPath: keyPath, file: file, keyMark: nil)
    }

    package init(node: Node, keyPath: String, file: String, keyMark: Mark?) {
        self.node = node
        self.keyPath = keyPath
        self.file = file
        self.keyMark = keyMark
    }

    /// An error located at this node.
    public func error(allowed: String, found: String? = nil, suggestion: String? = nil) -> ManifestError {
        ManifestError(file: file, line: node.mark?.line, column: node.mark?.column, keyPath: keyPath,
                      found: found ?? foundDescription, allowed: allowed, suggestion: suggestion)
    }

    /// How the value reads in an error: the text itself for a plain scalar, quoted text for a
    /// quoted one, otherwise the kind of node.
    public var foundDescription: String {
        switch node {
        case let .scalar(scalar):
            if isNull { return "an empty value" }
            // Less than a line of any file: one that is not YAML reads as a single scalar whose
            // lines are folded together, and the error must not print it.
            let text = scalar.string.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let shown = text.count > 40 || text.count < scalar.string.count ? text.prefix(40) + "…" : text
            return scalar.style == .plain ? "'\(shown)'" : "the quoted string \"\(shown)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    package var isNull: Bool {
        guard case let .scalar(scalar) = node, scalar.style == .plain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// The text of a plain (unquoted) scalar: where numbers and booleans must come from.
    private var plainText: String? {
        guard case let .scalar(scalar) = node, scalar.style == .plain, !isNull else { return nil }
        return scalar.string
    }

    // MARK: Scalars

    public func string(allowed: String) throws -> String {
        guard case let .scalar(scalar) = node, !isNull, !scalar.string.isEmpty else { throw error(allowed: allowed) }
        return scalar.string
    }

    /// One of a closed set of words, suggesting the nearest on a typo.
    public func choice(_ options: [String]) throws -> String {
        let allowed = options.joined(separator: ", ")
        let value = try string(allowed: allowed)
        guard options.contains(value) else {
            throw error(allowed: allowed, suggestion: closestMatch(to: value, in: options))
        }
        return value
    }

    /// A finite number satisfying `isValid`; `allowed` says what valid means.
    public func number(allowed: String, where isValid: (Double) -> Bool = { _ in true }) throws -> Double {
        guard let text = plainText, let value = Double(text), value.isFinite, isValid(value) else {
            throw error(allowed: allowed)
        }
        return value
    }

    /// An integer in `range`; `1e3` is accepted as 1000.
    public func int(allowed: String, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let text = plainText else { throw error(allowed: allowed) }
        let parsed = Int(text) ?? Double(text).flatMap { $0.isFinite && $0.rounded() == $0 && abs($0) < 1e15 ? Int($0) : nil }
        guard let value = parsed, range.contains(value) else { throw error(allowed: allowed) }
        return value
    }

    public func bool() throws -> Bool {
        switch plainText {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error(allowed: "true or false")
        }
    }

    // MARK: Collections

    /// The entries of a list, each with its index in the key path.
    public func list(allowed: String) throws -> [ManifestNode] {
        guard case let .sequence(sequence) = node else { throw error(allowed: allowed) }
        return sequence.enumerated().map { ManifestNode(node: $1, keyPath: "\(keyPath)[\($0)]", file: file) }
    }

    /// A sweep axis: a list of values, or one value standing for a one-element list. A mapping
    /// is one value only where values are mappings (`variants`).
    public func axis(allowed: String, valuesAreMappings: Bool = false) throws -> [ManifestNode] {
        switch node {
        case .sequence:
            let values = try list(allowed: allowed)
            guard !values.isEmpty else { throw error(allowed: allowed, found: "an empty list") }
            return values
        case .mapping where !valuesAreMappings:
            throw error(allowed: allowed)
        default:
            return [self]
        }
    }

    /// The node as a mapping whose keys must all be in `keys`. Unknown keys are errors, never
    /// ignored, so that a typo cannot silently fall back to a default.
    public func mapping(keys: [String]) throws -> ManifestMapping {
        let allowed = "a mapping with keys " + keys.joined(separator: ", ")
        guard case let .mapping(mapping) = node else { throw error(allowed: allowed) }
        var entries: [(key: String, value: ManifestNode)] = []
        for (keyNode, valueNode) in mapping {
            let keyText = keyNode.scalar?.string ?? ""
            let key = ManifestNode(node: keyNode, keyPath: child(keyText), file: file)
            guard case .scalar = keyNode, !keyText.isEmpty else {
                throw key.error(allowed: "keys are plain words: " + keys.joined(separator: ", "))
            }
            guard keys.contains(keyText) else {
                throw key.error(allowed: keys.joined(separator: ", "), found: "an unknown key '\(keyText)'",
                                suggestion: closestMatch(to: keyText, in: keys))
            }
            entries.append((keyText, ManifestNode(node: valueNode, keyPath: child(keyText), file: file, keyMark: keyNode.mark)))
        }
        return ManifestMapping(owner: self, entries: entries)
    }

    package func child(_ key: String) -> String { keyPath.isEmpty ? key : "\(keyPath).\(key)" }
}

/// A checked mapping: lookups by key, with missing required keys reported at the mapping.
public struct ManifestMapping {
    public let owner: ManifestNode
    public let entries: [(key: String, value: ManifestNode)]

    /// The value under `key`, or nil when the key is absent or explicitly empty (`key: ~`).
    public func optional(_ key: String) -> ManifestNode? {
        guard let value = entries.first(where: { $0.key == key })?.value, !value.isNull else { return nil }
        return value
    }

    public func required(_ key: String, allowed: String) throws -> ManifestNode {
        guard let value = optional(key) else {
            let mark = owner.keyMark ?? owner.node.mark
            throw ManifestError(file: owner.file, line: mark?.line, column: mark?.column,
                                keyPath: owner.child(key), found: "nothing (the required key '\(key)' is missing)",
                                allowed: allowed)
        }
        return value
    }
}
