import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where a child's standard output or standard error goes.
package enum ChildOutput: Equatable, Sendable {
    /// Read through a pipe while the child runs: into `ChildResult`, or handed over line by line
    /// (`wait(lines:)`, standard output only).
    case capture
    /// /dev/null.
    case discard
    /// This file, created or truncated. Output and errors naming the same file share one
    /// descriptor, as `>file 2>&1` does, so that their lines interleave in the order written.
    case file(String)
}

/// How a child ended.
package enum ChildTermination: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    /// As a shell reports it: the exit status, or 128 + the signal.
    package var shellStatus: Int32 {
        switch self {
        case let .exited(status): status
        case let .signalled(signal): 128 + signal
        }
    }

    package var description: String {
        switch self {
        case let .exited(status): "exited with status \(status)"
        case let .signalled(signal): "was killed by signal \(signal)"
        }
    }
}

/// A child that ran to its end: what it wrote to the streams captured (`.capture`), else "".
package struct ChildResult: Sendable {
    /// The command line, shell-quoted, for messages.
    package var command: String
    package var termination: ChildTermination
    package var output: String
    package var errors: String

    /// This result, or an error naming the command, how it ended and the tail of its standard
    /// error, unless it exited with a status that `accepting` allows.
    @discardableResult
    package func check(accepting: (Int32) -> Bool = { $0 == 0 }) throws(ChildProcessError) -> ChildResult {
        if case let .exited(status) = termination, accepting(status) { return self }
        throw ChildProcessError(command: command, failure: .terminated(termination), errorTail: ChildProcessError.tail(of: errors))
    }
}

/// A child that could not be started, or ended in a way its caller does not accept.
package struct ChildProcessError: Error, Equatable, CustomStringConvertible {
    package enum Failure: Equatable, Sendable {
        /// Why it could not start, naming the path concerned (the executable, a file, the folder).
        case cannotStart(String)
        case terminated(ChildTermination)
    }

    package var command: String
    package var failure: Failure
    /// The last lines of its standard error (at most `tailLines`), when it was captured.
    package var errorTail: String

    package static let tailLines = 5

    package var description: String {
        switch failure {
        case let .cannotStart(reason): "cannot start `\(command)`: \(reason)"
        case let .terminated(termination): "`\(command)` \(termination)" + (errorTail.isEmpty ? "" : ":\n\(errorTail)")
        }
    }

    /// The last non-blank lines of `errors`, each cut to 500 characters (a child may print one
    /// enormous line).
    package static func tail(of errors: String) -> String {
        errors.split(whereSeparator: \.isNewline).filter { !$0.allSatisfy(\.isWhitespace) }.suffix(tailLines)
            .map { $0.count > 500 ? "…" + $0.suffix(500) : String($0) }.joined(separator: "\n")
    }
}

/// The one way LoRABench starts a program: the `--jobs` workers, Slurm's client commands, pip, and
/// the bench children.
///
/// Not swift-subprocess (1.0.2, in the package mirror): it resets the signal mask and
/// dispositions as this does and builds in about 25 s on two cores, but its API is async only,
/// while every caller here is synchronous (the worker pool's threads, a computed property,
/// the commands), so each call would block a thread on a task; and it needs Swift tools 6.2 and
/// swift-system, which would raise this package's floor for one posix_spawn.
///
/// The child starts with no signal blocked and every signal at its default action, as a batch
/// system starts a job script: a thread of the parent may block signals (the test runner's do),
/// and a signal ignored here stays ignored across exec. A worker would then outlive the Ctrl-C
/// or SIGTERM meant for its sweep, and a shell could not trap a signal it was started ignoring
/// (CheckpointOnSignal, the Slurm script's USR1 trap). Foundation's
/// `Process` clears the mask but keeps ignored dispositions. Standard input is /dev/null, so no
/// child waits on a terminal whose prompt nobody sees. The pipes and files it opens are
/// close-on-exec, so that a child started at the same time from another thread never holds
/// this one's pipe open (its reader would wait for that child's end instead of this one's).
package final class ChildProcess: Sendable {
    package let pid: pid_t
    package let command: String
    private let state: Mutex<State>

    private struct State {
        /// The read ends of the captured streams, until `wait` takes them.
        var output: Int32?
        var errors: Int32?
        /// Set once reaped; afterwards the pid may belong to another process.
        var termination: ChildTermination?
    }

    /// Starts `executable` (a path: `/usr/bin/env NAME` searches PATH, and exits 127 when NAME is
    /// not there) with `arguments`, `environment` (nil: this process's) and `directory` (nil: this
    /// process's). Throws when it cannot start, naming the path at fault.
    package init(_ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil, directory: String? = nil,
                 output: ChildOutput = .capture, errors: ChildOutput = .capture) throws(ChildProcessError) {
        let command = ([executable] + arguments).map(Self.shellQuoted).joined(separator: " ")
        func failure(_ reason: String) -> ChildProcessError { ChildProcessError(command: command, failure: .cannotStart(reason), errorTail: "") }
        let environment = environment.map { $0.map { "\($0)=\($1)" } } ?? ProcessInfo.processInfo.environment.map { "\($0)=\($1)" }
        if let bad = ([executable] + arguments + environment + (directory.map { [$0] } ?? [])).first(where: { $0.utf8.contains(0) }) {
            throw failure("\(bad.debugDescription) holds a NUL byte")
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Descriptors the child gets (closed here once it started) and pipes' read ends (kept).
        var parentEnds: [Int32] = [], readEnds: [Int32?] = [nil, nil], started = false
        defer {
            parentEnds.forEach { _ = close($0) }
            if !started { readEnds.compactMap { $0 }.forEach { _ = close($0) } }
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var opened: [String: Int32] = [:]
        for (slot, (target, destination)) in [(Int32(1), output), (2, errors)].enumerated() {
            switch destination {
            case .discard:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .capture:
                var ends: [Int32] = [-1, -1]
                guard let pipe2 = Self.pipe2, pipe2(&ends, O_CLOEXEC) == 0 else {
                    throw failure("cannot make a pipe: \(String(cString: strerror(errno)))")
                }
                readEnds[slot] = ends[0]
                parentEnds.append(ends[1])
                posix_spawn_file_actions_adddup2(&actions, ends[1], target)
            case let .file(path):
                let descriptor = opened[path] ?? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                guard descriptor >= 0 else {
                    throw failure("\(path): \(String(cString: strerror(errno)))")
                }
                if opened[path] == nil { parentEnds.append(descriptor) }
                opened[path] = descriptor
                posix_spawn_file_actions_adddup2(&actions, descriptor, target)
            }
        }
        if let directory {
            guard let addchdir = Self.addchdir else {
                throw failure("this C library cannot start a child in another folder (\(directory))")
            }
            let status = addchdir(&actions, directory)
            guard status == 0 else { throw failure("\(directory): \(String(cString: strerror(status)))") }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        // glibc reports a failed exec (a missing executable, a missing folder) here, not as status 127.
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            var path = executable
            if status == ENOENT, let directory, !FileManager.default.fileExists(atPath: directory) { path = directory }
            throw failure("\(path): \(String(cString: strerror(status)))")
        }
        started = true
        self.pid = pid
        self.command = command
        state = Mutex(State(output: readEnds[0], errors: readEnds[1]))
    }

    /// Starts the program, waits for its end and returns what it wrote; see `init` and `wait`.
    package static func run(_ executable: String, _ arguments: [String] = [], environment: [String: String]? = nil, directory: String? = nil,
                            output: ChildOutput = .capture, errors: ChildOutput = .capture) throws(ChildProcessError) -> ChildResult {
        try ChildProcess(executable, arguments, environment: environment, directory: directory, output: output, errors: errors).wait()
    }

    /// Reads the captured streams to their end, both at once (a child blocked on a full pipe
    /// would never exit), then reaps the child. The streams end when every process holding them
    /// has closed them: a grandchild left running keeps this waiting.
    package func wait() -> ChildResult { collect(handingOver: nil) }

    /// `wait()`, handing captured standard output over line by line as it arrives, on this
    /// thread, instead of keeping it.
    package func wait(lines: (Substring) -> Void) -> ChildResult {
        withoutActuallyEscaping(lines) { collect(handingOver: $0) }
    }

    private func collect(handingOver lines: ((Substring) -> Void)?) -> ChildResult {
        let (outputEnd, errorsEnd) = state.withLock { state in
            defer { (state.output, state.errors) = (nil, nil) }
            return (state.output, state.errors)
        }
        var output: [UInt8] = [], errors: [UInt8] = []
        var open = [outputEnd, errorsEnd].compactMap { $0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while !open.isEmpty {
            if poll(&open, nfds_t(open.count), -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for index in open.indices.reversed() where open[index].revents != 0 {
                let count = read(open[index].fd, &chunk, chunk.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else {
                    close(open[index].fd)
                    open.remove(at: index)
                    continue
                }
                if open[index].fd == outputEnd {
                    output.append(contentsOf: chunk[..<count])
                    if let lines { Self.handOver(&output, to: lines, final: false) }
                } else {
                    errors.append(contentsOf: chunk[..<count])
                }
            }
        }
        open.forEach { _ = close($0.fd) }
        if let lines { Self.handOver(&output, to: lines, final: true) }
        return ChildResult(command: command, termination: reap(), output: String(decoding: output, as: UTF8.self),
                           errors: String(decoding: errors, as: UTF8.self))
    }

    /// Sends `signal` to the child, unless it has been reaped (its pid may then be another's).
    package func signal(_ signal: Int32) {
        state.withLock { state in
            if state.termination == nil { kill(pid, signal) }
        }
    }

    deinit {
        state.withLock { state in [state.output, state.errors].compactMap { $0 }.forEach { _ = close($0) } }
    }

    /// Waits for the end without reaping, so that `signal` never races the pid's reuse; then
    /// reaps it under the lock `signal` takes.
    private func reap() -> ChildTermination {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0, errno == EINTR {}
        return state.withLock { state in
            if let termination = state.termination { return termination }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0, errno == EINTR {}
            let signal = status & 0x7f
            let termination: ChildTermination = signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
            state.termination = termination
            return termination
        }
    }

    /// Passes the complete lines of `buffer` to `lines` and keeps the rest (all of it, at the end).
    private static func handOver(_ buffer: inout [UInt8], to lines: (Substring) -> Void, final: Bool) {
        var start = buffer.startIndex
        while let newline = buffer[start...].firstIndex(of: 0x0A) {
            lines(Substring(decoding: buffer[start..<newline], as: UTF8.self))
            start = newline + 1
        }
        if final, start < buffer.endIndex { lines(Substring(decoding: buffer[start...], as: UTF8.self)) }
        buffer.removeSubrange(..<(final ? buffer.endIndex : start))
    }

    /// A word as a shell would read it back: bare when plain, else single-quoted.
    package static func shellQuoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "@%+=:,./_-".unicodeScalars.contains($0)) }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    // glibc declares these only under _GNU_SOURCE, which Swift's Glibc module does not define.
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let pipe2 = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
    private static let addchdir = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: AddChdir.self) }
}
