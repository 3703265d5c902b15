import Foundation
import Testing
@testable import LoRABenchTensorIO

private func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-safety-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// The names in `directory` that a failed write may not leave behind.
private func temporaryFiles(in directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".tmp") }
}

@Suite("file errors in words")
struct FileErrorTests {
    @Test("a write through a path that is a file names the path and the operation, not a Foundation error dump")
    func pathThroughAFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AtomicFile.write("a user's notes", to: directory + "/notes")
        #expect { try AtomicFile.write("x", to: directory + "/notes/metrics.csv") } throws: { error in
            let message = "\(error)"
            return error is FileOperationError && message.contains(directory + "/notes") && message.contains("create a folder")
                && message.contains("a file of that name exists") && !message.contains("NSCocoaErrorDomain")
        }
        #expect(try String(contentsOfFile: directory + "/notes", encoding: .utf8) == "a user's notes")
    }

    @Test("a Foundation error's POSIX cause is given in the system's words")
    func foundationErrors() {
        let outOfSpace = FileOperationError(operation: "write", path: "/x", underlying: CocoaError(.fileWriteOutOfSpace))
        #expect(outOfSpace.description == "/x: cannot write: \(String(cString: strerror(ENOSPC)))")
        let posix = FileOperationError(operation: "remove", path: "/y", underlying: NSError(domain: NSPOSIXErrorDomain, code: Int(EACCES)))
        #expect(posix.description == "/y: cannot remove: Permission denied")
    }

    /// A real full file system: a 64 KiB tmpfs, mounted when the tests run as root (as CI does).
    @Test("a full disk fails the write naming the file and 'No space left on device', keeping the old file and no temporary",
          .enabled(if: getuid() == 0, "needs root to mount a small tmpfs"))
    func fullDisk() throws {
        let mountPoint = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: mountPoint) }
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint]
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            print("skipped: cannot mount a tmpfs here (mount exited with \(mount.terminationStatus))")
            return
        }
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [mountPoint]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        let path = mountPoint + "/summary.csv"
        try AtomicFile.write("the previous summary\n", to: path)
        #expect { try AtomicFile.write(Data(count: 1 << 20), to: path) } throws: { error in
            "\(error)".hasPrefix(path + ": cannot write") && "\(error)".contains("No space left on device")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "the previous summary\n")
        #expect(temporaryFiles(in: mountPoint).isEmpty)
    }
}

@Suite("folder lock")
struct FolderLockTests {
    @Test("a second holder is refused at once with the first one's pid and command; released, it can be taken again")
    func exclusive() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            let first = try FolderLock(folder: directory, holder: "lorabench run a.yaml")
            defer { withExtendedLifetime(first) {} }
            #expect { try FolderLock(folder: directory, holder: "lorabench run b.yaml") } throws: { error in
                (error as? FolderLockError)?.holder == "pid \(getpid()): lorabench run a.yaml"
                    && "\(error)".contains("\(directory) is in use by another lorabench process")
            }
        }
        let second = try FolderLock(folder: directory, holder: "lorabench run b.yaml")
        #expect(try String(contentsOfFile: second.path, encoding: .utf8) == "pid \(getpid()): lorabench run b.yaml\n")
    }
}
