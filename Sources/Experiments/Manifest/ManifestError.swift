import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// A mistake in a manifest, located precisely enough to fix without reading the parser: the file,
/// the line and column, the key path (`sweep.variants[2].energy_threshold`), what was found there
/// and what is allowed, plus the closest allowed key when the key itself looks like a typo.
public struct ManifestError: Error, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based, as editors count; nil only when the YAML has no position (an empty document).
    public var line: Int?
    public var column: Int?
    public var keyPath: String
    public var found: String
    public var allowed: String
    public var suggestion: String?

    public init(file: String, line: Int?, column: Int?, keyPath: String, found: String, allowed: String,
                suggestion: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
        self.found = found
        self.allowed = allowed
        self.suggestion = suggestion
    }

    /// `file:line:column: key.path: found X; allowed: Y (did you mean 'Z'?)`, the compiler's
    /// location format, so editors and terminals make it clickable.
    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        var text = "\(location): \(keyPath.isEmpty ? "(document)" : keyPath): found \(found); allowed: \(allowed)"
        if let suggestion { text += " (did you mean '\(suggestion)'?)" }
        return text
    }
}
