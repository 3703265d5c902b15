import Foundation
@testable import LoRABenchTensorIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The one way the package starts a program: both streams captured, errors that name the command
/// and how it ended, a clean signal state, and no deadlock on output larger than a pipe holds.
@Suite struct ChildProcessTests {
    @Test func capturesBothStreamsAndTakesEnvironmentAndFolder() throws {
        let result = try ChildProcess.run("/bin/sh", ["-c", "echo out $GREETING; pwd; echo err >&2"], environment: ["GREETING": "hi"],
                                          directory: "/tmp")
        #expect(result.termination == .exited(0))
        #expect(result.output == "out hi\n/tmp\n")
        #expect(result.errors == "err\n")
        #expect(try result.check().output == result.output)
    }

    @Test func aNonZeroExitNamesTheCommandTheStatusAndTheLastLinesOfStandardError() throws {
        let result = try ChildProcess.run("/bin/sh", ["-c", "for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 3"])
        #expect(result.termination == .exited(3))
        let error = try #require(throws: ChildProcessError.self) { try result.check() }
        #expect(error.failure == .terminated(.exited(3)))
        #expect(error.description == """
            `/bin/sh -c 'for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 3'` exited with status 3:
            line 3
            line 4
            line 5
            line 6
            line 7
            """)
        #expect(try result.check(accepting: { $0 == 3 }).termination == .exited(3))
    }

    @Test func aDeathBySignalIsReported() throws {
        let child = try ChildProcess("/bin/sleep", ["30"])
        child.signal(SIGTERM)
        let result = child.wait()
        #expect(result.termination == .signalled(SIGTERM))
        #expect(result.termination.shellStatus == 128 + SIGTERM)
        let error = try #require(throws: ChildProcessError.self) { try result.check() }
        #expect(error.description == "`/bin/sleep 30` was killed by signal \(SIGTERM)")
        // Reaped: a second signal must not reach whatever process has its pid now.
        child.signal(SIGKILL)
        #expect(child.wait().termination == .signalled(SIGTERM))
    }

    @Test func aMissingExecutableOrFolderIsNamed() throws {
        let missing = try #require(throws: ChildProcessError.self) { try ChildProcess.run("/no/such/program", ["an argument"]) }
        #expect(missing.description == "cannot start `/no/such/program 'an argument'`: /no/such/program: No such file or directory")
        let folder = try #require(throws: ChildProcessError.self) { try ChildProcess.run("/bin/true", directory: "/no/such/folder") }
        #expect(folder.failure == .cannotStart("/no/such/folder: No such file or directory"))
        let log = try #require(throws: ChildProcessError.self) { try ChildProcess.run("/bin/true", output: .file("/no/such/folder/log")) }
        #expect(log.failure == .cannotStart("/no/such/folder/log: No such file or directory"))
    }

    @Test func inputThatCannotReachTheChildIsRefusedNotTrapped() throws {
        let error = try #require(throws: ChildProcessError.self) { try ChildProcess.run("/bin/echo", ["a\0b"]) }
        #expect(error.description.contains("NUL byte"))
        #expect(throws: ChildProcessError.self) { try ChildProcess.run("/bin/true", environment: ["A\0": "b"]) }
    }

    /// The thread that starts it blocks signals, as the test runner's threads do; the child starts
    /// with none blocked and none of the standard signals ignored (glibc leaves its two internal
    /// ones, 32 and 33, ignored across posix_spawn). grep reads its own status: dash, as `sh -c`,
    /// clears its mask when it starts and would hide an inherited one.
    @Test func theChildStartsWithNoSignalBlockedOrIgnored() throws {
        let result = try Thread.blockingSignals { try ChildProcess.run("/bin/grep", ["-E", "^Sig(Blk|Ign):", "/proc/self/status"]).check() }
        let fields = Dictionary(uniqueKeysWithValues: result.output.split(separator: "\n").compactMap { line -> (String, UInt64)? in
            let parts = line.split(separator: "\t")
            guard parts.count == 2, let mask = UInt64(parts[1], radix: 16) else { return nil }
            return (String(parts[0]), mask)
        })
        #expect(fields["SigBlk:"] == 0, "\(result.output)")
        #expect(fields["SigIgn:"].map { $0 & 0x7fff_ffff } == 0, "\(result.output)")
    }

    @Test func severalMegabytesOnBothStreamsDoNotDeadlock() throws {
        let result = try ChildProcess.run("/bin/sh", ["-c", "head -c 6000000 /dev/zero | tr '\\0' a; head -c 5000000 /dev/zero | tr '\\0' b >&2"])
        #expect(result.output.utf8.count == 6_000_000 && result.output.utf8.allSatisfy { $0 == UInt8(ascii: "a") })
        #expect(result.errors.utf8.count == 5_000_000)
    }

    @Test func outputCanBeHandedOverLineByLineAndFilesShareOneDescriptor() throws {
        var lines: [Substring] = []
        let child = try ChildProcess("/bin/sh", ["-c", "seq 1 20000; printf last"], errors: .discard)
        let result = child.wait { lines.append($0) }
        #expect(lines.count == 20001 && lines.first == "1" && lines[19999] == "20000" && lines.last == "last")
        #expect(result.output.isEmpty)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/log"
        let logged = try ChildProcess.run("/bin/sh", ["-c", "echo one; echo two >&2; echo three"], output: .file(log), errors: .file(log))
        #expect(logged.output.isEmpty && logged.errors.isEmpty)
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "one\ntwo\nthree\n")
    }
}

private extension Thread {
    /// Runs `body` on a new thread that blocks SIGUSR1 and SIGTERM: a signal mask is per thread,
    /// so no other test sees it.
    static func blockingSignals<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<T, any Error>?
        Thread {
            var blocked = sigset_t()
            sigemptyset(&blocked)
            sigaddset(&blocked, SIGUSR1)
            sigaddset(&blocked, SIGTERM)
            pthread_sigmask(SIG_BLOCK, &blocked, nil)
            result = Result { try body() }
            done.signal()
        }.start()
        done.wait()
        return try result!.get()
    }
}
