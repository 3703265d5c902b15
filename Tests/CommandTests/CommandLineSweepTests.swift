import Foundation
@testable import LoRABenchKernels
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing
#if canImport(Glibc)
import Glibc
@testable import LoRABenchResults
#endif

/// The built `lorabench` executable, run as a user would: a sweep killed with SIGKILL and
/// resumed ends with exactly the results of an uninterrupted one, and `--jobs 2` (worker
/// processes) gives the numbers of `--jobs 1`.
@Suite(.serialized) struct CommandLineSweepTests {
    /// Runs long enough (a few hundred ms each in a debug build) for a kill to land mid-run.
    static let manifest = """
    experiment: cli
    task: {name: synthetic, input_dim: 64, hidden_dim: 64, output_dim: 32, true_rank: 4, train_size: 512, eval_size: 128}
    training: {learning_rate: 1e-2, steps: 600, batch_size: 32, eval_interval: 200, log_interval: 50, save_every: 100}
    sweep:
      variants: [lora, {name: adalora, mode: svd-prune, interval: 10, start_step: 50}]
      ranks: [2, 4]

    """

    @Test func aKilledSweepResumesToTheResultsOfAnUninterruptedOne() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest, to: directory)
        let reference = "\(directory)/reference", killed = "\(directory)/killed"
        #expect(try LorabenchProcess.run(["run", manifest, "--out", reference]) == 0)

        let sweep = try LorabenchProcess.start(["run", manifest, "--out", killed])
        let layout = ResultsLayout(root: killed)
        let landed = waitUntil(timeout: 60) {
            let folders = layout.runFolders
            let finished = folders.filter { FileManager.default.fileExists(atPath: layout.outcomeFile($0)) }
            let started = folders.filter { FileManager.default.fileExists(atPath: layout.settingsFile($0)) }
            return finished.count >= 2 && started.count > finished.count
        }
        kill(sweep.processIdentifier, SIGKILL)
        sweep.waitUntilExit()
        #expect(landed, "the sweep never reached a run in progress after two finished ones")
        #expect(sweep.terminationReason == .uncaughtSignal)

        // What the kill left: finished runs in the experiment files, one run folder without an outcome.
        let finished = Set(layout.runFolders.filter { FileManager.default.fileExists(atPath: layout.outcomeFile($0)) })
        #expect(layout.runFolders.count > finished.count)
        let rowsBefore = try ExperimentSupport.records(layout.metricsFile).dropFirst()
        #expect(Set(rowsBefore.map { $0[0] }).isSubset(of: finished))

        #expect(try LorabenchProcess.run(["run", manifest, "--out", killed, "--resume"]) == 0)
        let resumed = try ExperimentSupport.records(layout.metricsFile)
        #expect(resumed == (try ExperimentSupport.records("\(reference)/metrics.csv")))
        let keys = resumed.dropFirst().map { [$0[0], $0[9], $0[10], $0[11]] }
        #expect(Set(keys).count == keys.count, "duplicate (run_id, step, split, metric) rows")
        #expect(try ExperimentSupport.summaryWithoutTiming(layout.summaryFile)
            == ExperimentSupport.summaryWithoutTiming("\(reference)/summary.csv"))
    }

    @Test func workerProcessesGiveTheNumbersOfOneJob() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest.replacingOccurrences(of: "steps: 600", with: "steps: 100"), to: directory)
        #expect(try LorabenchProcess.run(["run", manifest, "--out", "\(directory)/one"]) == 0)
        #expect(try LorabenchProcess.run(["run", manifest, "--out", "\(directory)/two", "--jobs", "2"]) == 0)
        #expect(try ExperimentSupport.records("\(directory)/one/metrics.csv") == ExperimentSupport.records("\(directory)/two/metrics.csv"))
        #expect(try ExperimentSupport.summaryWithoutTiming("\(directory)/one/summary.csv")
            == ExperimentSupport.summaryWithoutTiming("\(directory)/two/summary.csv"))
    }

    @Test func validateAndDryRunDoNoWork() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest, to: directory)
        let output = try LorabenchProcess.output(["validate", manifest])
        #expect(output == "\(manifest): ok — experiment cli, 4 runs of 600 steps (2 variants × 2 ranks × 1 seeds)\n")
        let plan = try LorabenchProcess.output(["run", manifest, "--dry-run", "--out", "\(directory)/results"])
        #expect(plan.split(separator: "\n").count == 2 + 4)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/results"))
    }

}

/// The `lorabench` executable built next to this test bundle (or $LORABENCH_EXECUTABLE).
enum LorabenchProcess {
    static var executable: URL {
        get throws {
            if let path = ProcessInfo.processInfo.environment["LORABENCH_EXECUTABLE"] { return URL(fileURLWithPath: path) }
            // Linux runs the tests from an executable, macOS from a bundle; both sit in the build products folder.
            let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            for folder in [testBinary.deletingLastPathComponent(), Bundle.main.bundleURL.deletingLastPathComponent()] {
                let candidate = folder.appendingPathComponent("lorabench")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no lorabench executable next to \(testBinary.path); build it or set LORABENCH_EXECUTABLE"])
        }
    }

    static func start(_ arguments: [String], output: Any = FileHandle.nullDevice, errors: Any = FileHandle.nullDevice) throws -> Process {
        let process = Process()
        process.executableURL = try executable
        process.arguments = arguments
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        return process
    }

    /// Runs to the end and returns the exit status.
    static func run(_ arguments: [String]) throws -> Int32 {
        let process = try start(arguments)
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs to the end and returns the exit status and what it wrote to standard error.
    static func failure(_ arguments: [String]) throws -> (status: Int32, errors: String) {
        let pipe = Pipe()
        let process = try start(arguments, errors: pipe)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func output(_ arguments: [String]) throws -> String {
        let pipe = Pipe()
        let process = try start(arguments, output: pipe)
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
