import Foundation

/// A folder another process holds: the message names the holder, so the user knows what to wait
/// for or stop.
public struct FolderLockError: Error, Equatable, CustomStringConvertible {
    public var folder: String
    /// What the holder wrote into the lock file: its pid and command.
    public var holder: String

    public var description: String {
        "\(folder) is in use by another lorabench process (\(holder)); wait for it to finish or stop it, or write elsewhere"
    }
}

/// An exclusive lock on a folder that one process rewrites (a sweep's results): `flock(2)` on
/// `<folder>/.lorabench.lock`, held while this object lives and released by the kernel when the
/// process exits however it exits, so a killed holder never leaves a stale lock. The file records
/// the holder's pid and command for the error a second process gets.
public final class FolderLock {
    public static let fileName = ".lorabench.lock"
    public let path: String
    private let descriptor: Int32

    /// How long a lock that this process last held may still read as taken: a child that another
    /// thread is starting holds a copy of the released descriptor from fork until its exec closes
    /// it (O_CLOEXEC), microseconds that a loaded machine can stretch to milliseconds.
    static let ownReleaseGrace: TimeInterval = 0.5

    /// Takes the lock or throws `FolderLockError` at once when another process holds it; creates
    /// the folder. A lock that this process's own earlier holder released (a sweep resumed in the
    /// same process) is retried for up to `ownReleaseGrace`.
    public init(folder: String, holder: String) throws {
        try FileSystem.createDirectory(folder)
        path = "\(folder)/\(Self.fileName)"
        // O_CLOEXEC: worker processes must not inherit the lock and outlive their parent holding it.
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileOperationError(operation: "open the lock file", path: path, errno: errno) }
        let deadline = Date().addingTimeInterval(Self.ownReleaseGrace)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK else {
                close(descriptor)
                throw FileOperationError(operation: "lock", path: path, errno: code)
            }
            let recorded = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            guard recorded.hasPrefix("pid \(getpid()):"), Date() < deadline else {
                close(descriptor)
                throw FolderLockError(folder: folder, holder: recorded.isEmpty ? "pid unknown" : recorded)
            }
            usleep(10_000)
        }
        let record = Data("pid \(getpid()): \(holder)\n".utf8)
        guard ftruncate(descriptor, 0) == 0,
              record.withUnsafeBytes({ pwrite(descriptor, $0.baseAddress, $0.count, 0) }) == record.count else {
            let code = errno
            close(descriptor)
            throw FileOperationError(operation: "write the lock file", path: path, errno: code)
        }
    }

    deinit { close(descriptor) }
}
