/// Tab-separated output whose rows a field cannot forge: a tab or a line break inside a field
/// (a text given to `infer`) would start a new column or a new row, so every control character
/// is written as a backslash escape (`\t`, `\n`, `\r`, `\u{1B}`), and a backslash as `\\`, which
/// keeps the escaping reversible.
public enum TSV {
    public static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: "\t")
    }

    public static func field(_ value: String) -> String {
        guard value.unicodeScalars.contains(where: needsEscape) else { return value }
        var escaped = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\t": escaped += "\\t"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case _ where needsEscape(scalar): escaped += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Control characters (C0, DEL, C1: NEL ends a line for some readers) and the Unicode line
    /// and paragraph separators, which editors and Python's `splitlines` also break lines at.
    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\\" || scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}"
    }
}
