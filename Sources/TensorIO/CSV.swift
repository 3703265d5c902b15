import LoRABenchKernels

/// Writes RFC 4180 CSV, the subset pandas, R and spreadsheets all read: comma-separated, `\n`
/// line ends, a field quoted only when it holds a comma, a quote or a line break, quotes doubled.
/// (`CSVTable` reads it back.)
public enum CSV {
    public static func line(_ fields: [String]) -> String {
        fields.map(field).joined(separator: ",") + "\n"
    }

    package static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
