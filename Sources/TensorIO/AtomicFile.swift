import Foundation

/// Whole-file writes that are never seen half-written: the bytes go to a temporary file in the
/// same directory, are flushed to disk, and then replace the target with one `rename(2)`. Every
/// failure (a full disk, a read-only folder, a path through a file) names the path and the step.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        try FileSystem.createDirectory(directory)
        let temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw FileOperationError(operation: "create a temporary file to write \(url.lastPathComponent)", path: directory, errno: errno)
        }
        var isOpen = true
        do {
            try writeAll(data, to: descriptor, path: path)
            guard fsync(descriptor) == 0 else { throw FileOperationError(operation: "write (flushing to disk)", path: path, errno: errno) }
            isOpen = false
            guard close(descriptor) == 0 else { throw FileOperationError(operation: "write (closing)", path: path, errno: errno) }
            try FileSystem.rename(temporary, to: path)
        } catch {
            if isOpen { close(descriptor) }
            unlink(temporary)
            throw error
        }
    }

    public static func write(_ text: String, to path: String) throws {
        try write(Data(text.utf8), to: path)
    }

    /// `write(2)` until every byte is out: it may write fewer than asked, or be interrupted.
    private static func writeAll(_ data: Data, to descriptor: Int32, path: String) throws {
        try data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let written = Foundation.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw FileOperationError(operation: "write", path: path, errno: errno)
                }
                offset += written
            }
        }
    }
}
