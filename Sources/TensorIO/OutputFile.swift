import Foundation

/// A file a command was asked to write where it must not.
public enum OutputFileError: Error, Equatable, CustomStringConvertible {
    /// The output is one of the command's inputs, or lies inside an input folder.
    case isInput(path: String, input: String)
    /// The output exists and overwriting was not asked for.
    case exists(path: String)

    public var description: String {
        switch self {
        case let .isInput(path, input):
            return "\(path): refusing to write over the command's own input \(input); choose another output path"
        case let .exists(path):
            return "\(path): the file exists; pass --force to overwrite it, or choose another path"
        }
    }
}

/// The checks before a command writes one output file.
public enum OutputFile {
    /// Throws when `path` is one of `inputs` (files it reads, or inside folders it reads, symbolic
    /// links resolved), whatever `overwrite` says, or when it exists and `overwrite` is false.
    public static func check(_ path: String, inputs: [String], overwrite: Bool) throws {
        let output = resolved(path)
        for input in inputs {
            let folder = resolved(input)
            if output == folder || output.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/") {
                throw OutputFileError.isInput(path: path, input: input)
            }
        }
        if !overwrite, FileManager.default.fileExists(atPath: path) { throw OutputFileError.exists(path: path) }
    }

    private static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}
