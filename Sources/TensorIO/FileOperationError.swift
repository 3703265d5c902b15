import Foundation

/// A file operation that failed: names the operation and the path, and says why in the system's
/// words ("No space left on device", "Permission denied"), so a user can act on it.
public struct FileOperationError: Error, Equatable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var reason: String

    public init(operation: String, path: String, reason: String) {
        self.operation = operation
        self.path = path
        self.reason = reason
    }

    /// From the `errno` a failed system call left.
    public init(operation: String, path: String, errno code: Int32) {
        self.init(operation: operation, path: path, reason: String(cString: strerror(code)))
    }

    /// From a Foundation error: its POSIX cause when it carries one (Foundation's own wording,
    /// such as "There isn't enough space.", names neither the file nor the call), else its text.
    public init(operation: String, path: String, underlying: any Error) {
        self.init(operation: operation, path: path, reason: Self.reason(of: underlying as NSError))
    }

    public var description: String { "\(path): cannot \(operation): \(reason)" }

    private static func reason(of error: NSError) -> String {
        if error.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(error.code))) }
        if let cause = error.userInfo[NSUnderlyingErrorKey] as? NSError, cause.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(cause.code)))
        }
        switch CocoaError.Code(rawValue: error.code) {
        case .fileWriteOutOfSpace: return String(cString: strerror(ENOSPC))
        case .fileWriteNoPermission, .fileReadNoPermission: return String(cString: strerror(EACCES))
        case .fileWriteVolumeReadOnly: return String(cString: strerror(EROFS))
        case .fileNoSuchFile, .fileReadNoSuchFile: return String(cString: strerror(ENOENT))
        case .fileWriteFileExists: return String(cString: strerror(EEXIST))
        default: return error.localizedDescription
        }
    }
}

/// The folder operations that commands perform on a user's disk, each failing with a
/// `FileOperationError` that names the path and the operation.
public enum FileSystem {
    /// Creates `path` and its parents; a path that exists as a file is an error saying so.
    public static func createDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw FileOperationError(operation: "create a folder", path: path, reason: "a file of that name exists")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw FileOperationError(operation: "create a folder", path: path, underlying: error)
        }
    }

    /// Removes a file or a folder with its contents; nothing to remove is not an error.
    public static func remove(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw FileOperationError(operation: "remove", path: path, underlying: error)
        }
    }

    /// `rename(2)`: atomic within one file system, replacing an empty folder or a file at `destination`.
    public static func rename(_ source: String, to destination: String) throws {
        guard Foundation.rename(source, destination) == 0 else {
            throw FileOperationError(operation: "rename \(source) to", path: destination, errno: errno)
        }
    }

    /// The names in a folder, or an error naming it (a missing folder is an error too).
    public static func contents(of path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw FileOperationError(operation: "list the folder", path: path, underlying: error)
        }
    }
}
