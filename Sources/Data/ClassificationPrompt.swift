import Foundation

/// How a language model reads a classification example: a prompt template whose `{sentence}`
/// (single-sentence tasks) or `{sentence1}` and `{sentence2}` (pair tasks) are replaced by the
/// example's text, and one verbalizer word per label, whose logit at the prompt's last position
/// scores that label (Schick and Schütze 2021, "pattern-verbalizer pairs"). An encoder with a
/// classification head ignores it.
public struct ClassificationPrompt: Sendable, Hashable {
    public var template: String
    /// The word that names label i, in label order, usually with its leading space (" positive").
    public var labelWords: [String]

    public init(template: String, labelWords: [String]) {
        self.template = template
        self.labelWords = labelWords
    }

    /// The placeholders a template may use for an example with or without a second sentence.
    public static func placeholders(pairs: Bool) -> [String] { pairs ? ["{sentence1}", "{sentence2}"] : ["{sentence}"] }

    /// A problem with the template or the words for a task of `labelCount` labels, with or without
    /// sentence pairs (nil: none): what a manifest error reports as not allowed.
    public func problem(labelCount: Int, pairs: Bool) -> String? {
        if labelWords.count != labelCount { return "\(labelWords.count) label word(s) for \(labelCount) labels" }
        if Set(labelWords).count != labelWords.count { return "a label word is repeated" }
        if labelWords.contains(where: \.isEmpty) { return "a label word is empty" }
        let required = Self.placeholders(pairs: pairs)
        if let missing = required.first(where: { !template.contains($0) }) { return "the template lacks \(missing)" }
        let stray = Self.placeholders(pairs: !pairs).filter { !required.contains($0) && template.contains($0) }
        if let stray = stray.first { return "the template uses \(stray), which this task's examples do not have" }
        return nil
    }

    /// The template with the example's text in place.
    public func render(_ example: GLUEExample) -> String {
        guard let pair = example.textPair else { return template.replacingOccurrences(of: "{sentence}", with: example.text) }
        // One pass over the template, so a sentence containing "{sentence2}" is not replaced again.
        var rendered = ""
        var rest = Substring(template)
        while let range = rest.firstRange(of: "{sentence") {
            rendered += rest[..<range.lowerBound]
            let tail = rest[range.upperBound...]
            if tail.hasPrefix("1}") {
                rendered += example.text
                rest = tail.dropFirst(2)
            } else if tail.hasPrefix("2}") {
                rendered += pair
                rest = tail.dropFirst(2)
            } else {
                rendered += rest[range]
                rest = tail
            }
        }
        return rendered + rest
    }
}
