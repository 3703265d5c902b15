/// Names a user gives that become file or folder names (a variant's `label`, `analyze spectrum
/// --name`): checked before any path is built from them, so that none can climb out of its folder
/// (`../x`), hide in a subfolder (`a/b`) or carry characters a shell or a CSV would misread.
public enum FileName {
    /// What `isSafe` allows, for error messages.
    public static let allowed = "letters, digits, '.', '_' and '-' (not '.' or '..')"

    public static func isSafe(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}
