import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Two real `lorabench` processes on one results folder, a worker killed mid-run, and outputs
/// that would land on the results' own files.
@Suite(.serialized) struct ResultsSafetyCommandTests {
    /// Two runs long enough (seconds in a debug build) for a second process or a kill to land mid-run.
    static let manifest = """
    experiment: cli-safety
    task: {name: synthetic, input_dim: 64, hidden_dim: 64, output_dim: 32, true_rank: 4, train_size: 512, eval_size: 128}
    training: {learning_rate: 1e-2, steps: 3000, batch_size: 32, eval_interval: 1000, log_interval: 100}
    sweep:
      variants: [lora]
      ranks: [2, 4]

    """

    @Test func aSecondRunOnTheSameFolderStopsAtOnceNamingTheHolder() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest, to: directory)
        let results = "\(directory)/results"
        let lockFile = "\(results)/\(FolderLock.fileName)"

        let first = try LorabenchProcess.start(["run", manifest, "--out", results])
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let holding = waitUntil(timeout: 60) {
            (try? String(contentsOfFile: lockFile, encoding: .utf8))?.hasPrefix("pid \(first.processIdentifier):") ?? false
        }
        #expect(holding, "the first run never took the lock")
        for extra in [[], ["--resume"]] {
            let second = try LorabenchProcess.failure(["run", manifest, "--out", results] + extra)
            #expect(second.status != 0)
            #expect(second.errors.contains("\(results) is in use by another lorabench process (pid \(first.processIdentifier): lorabench run \(manifest))"),
                    "\(second.errors)")
        }
        #expect(first.isRunning, "the second process disturbed the first")

        // The kernel drops a killed holder's lock: no stale lock stops the resumed sweep.
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(try LorabenchProcess.run(["run", manifest, "--out", results, "--resume"]) == 0)
        #expect(try ExperimentSupport.summaryWithoutTiming("\(results)/summary.csv").dropFirst().map { $0[9] } == ["completed", "completed"])
        #expect((try FileManager.default.contentsOfDirectory(atPath: results)).filter { $0.hasSuffix(".tmp") }.isEmpty)
    }

    @Test(.enabled(if: ProcessInfo.processInfo.activeProcessorCount >= 2, "--jobs 2 needs two cores"))
    func aFailedRunMakesTheSweepExitNonZeroAndResumeRedoesIt() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest, to: directory)
        let results = "\(directory)/results"
        let errors = Pipe()
        let sweep = try LorabenchProcess.start(["run", manifest, "--out", results, "--jobs", "2"], errors: errors)
        defer { if sweep.isRunning { kill(sweep.processIdentifier, SIGKILL) } }
        var worker: pid_t?
        let started = waitUntil(timeout: 60) {
            worker = Self.children(of: sweep.processIdentifier).first
            return worker != nil
        }
        #expect(started, "no worker process appeared")
        if let worker { kill(worker, SIGKILL) }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        sweep.waitUntilExit()
        #expect(sweep.terminationStatus != 0)
        #expect(message.contains("1 run(s) failed:") && message.contains("worker was killed by signal 9"), "\(message)")
        #expect(message.contains("lorabench run \(manifest) --resume --out \(results)"))

        #expect(try LorabenchProcess.run(["run", manifest, "--out", results, "--resume"]) == 0)
        #expect(try ExperimentSupport.summaryWithoutTiming("\(results)/summary.csv").dropFirst().map { $0[9] } == ["completed", "completed"])
    }

    @Test func exportNeverWritesOverTheResultsOrAnExistingFileWithoutForce() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(ExperimentSupport.manifest(), to: directory)
        let results = "\(directory)/results"
        #expect(try LorabenchProcess.run(["run", manifest, "--out", results]) == 0)
        let metrics = try Data(contentsOf: URL(fileURLWithPath: "\(results)/metrics.csv"))

        let own = try LorabenchProcess.failure(["export", results, "--metric", "loss", "--out", "\(results)/metrics.csv", "--force"])
        #expect(own.status != 0 && own.errors.contains("refusing to write over the command's own input"), "\(own.errors)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(results)/metrics.csv")) == metrics)

        let existing = "\(directory)/loss.csv"
        try AtomicFile.write("a user's table\n", to: existing)
        let refused = try LorabenchProcess.failure(["export", results, "--metric", "loss", "--out", existing])
        #expect(refused.status != 0 && refused.errors.contains("\(existing): the file exists; pass --force"), "\(refused.errors)")
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "a user's table\n")
        #expect(try LorabenchProcess.run(["export", results, "--metric", "loss", "--out", existing, "--force"]) == 0)
        #expect(try String(contentsOfFile: existing, encoding: .utf8).hasPrefix("run_id,"))
    }

    /// The pids whose parent is `parent`, from /proc.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            // stat is "pid (comm) state ppid …"; comm may hold spaces, so split after its ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
        }
    }
}
