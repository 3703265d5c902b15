import Foundation
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whether a Slurm is there to submit to: `.ci/run` starts one (scripts/slurm-local) and points
/// `SLURM_CONF` at it.
private let slurmIsRunning: Bool = {
    let skipped = "skipped: the Slurm tests need sbatch on PATH and a running Slurm (scripts/slurm-local start; .ci/run does it as root)"
    guard SlurmCluster().isAvailable else {
        print(skipped)
        return false
    }
    // Installed is not running: sinfo answers only when a controller does.
    let sinfo = Process()
    sinfo.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    sinfo.arguments = ["sinfo", "--noheader"]
    sinfo.standardOutput = FileHandle.nullDevice
    sinfo.standardError = FileHandle.nullDevice
    guard (try? sinfo.run()) != nil else {
        print(skipped)
        return false
    }
    sinfo.waitUntilExit()
    if sinfo.terminationStatus != 0 { print(skipped + " (sinfo found no controller)") }
    return sinfo.terminationStatus == 0
}()

/// Sweeps on a real Slurm, from submit to collect, against the same manifest run here: the
/// quickstart bit for bit, a cancelled task resubmitted with --resume, and a task warned before
/// its time limit that checkpoints, is requeued and continues.
@Suite(.serialized, .enabled(if: slurmIsRunning, "needs a running Slurm: scripts/slurm-local start"))
struct SlurmClusterTests {
    static let projectRoot = Fixtures.projectRoot.path

    /// Runs long enough (seconds each in a debug build) to be cancelled or signalled mid-run.
    static let manifest = """
    experiment: slurm-long
    task: {name: synthetic, input_dim: 64, hidden_dim: 64, output_dim: 32, true_rank: 4, train_size: 512, eval_size: 128}
    training: {learning_rate: 1e-2, steps: 4000, batch_size: 32, eval_interval: 1000, log_interval: 100, save_every: 500}
    sweep:
      variants: [lora, dora]
      ranks: [4]

    """

    @Test func theQuickstartOnSlurmGivesTheNumbersOfALocalRun() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = "\(Self.projectRoot)/Experiments/quickstart.yaml"
        let results = "\(directory)/slurm"
        let start = Date()
        let submitted = try LorabenchProcess.output(["run", manifest, "--slurm", "--out", results])
        #expect(submitted.hasPrefix("submitted job "), "\(submitted)")
        let finished = try waitForSweep(results, timeout: 600)
        #expect(finished, "the sweep did not finish: \((try? status(results)) ?? "")")
        let collected = try LorabenchProcess.output(["collect", results])
        print("quickstart on the local Slurm: submit to collected in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        #expect(collected.contains("quickstart: 12 runs — 12 completed"), "\(collected)")
        print(try String(contentsOfFile: "\(results)/slurm/array.sbatch", encoding: .utf8))

        #expect(try LorabenchProcess.run(["run", manifest, "--out", "\(directory)/local"]) == 0)
        try expectSameResults(results, "\(directory)/local")
        // Collecting again changes nothing.
        let summary = try Data(contentsOf: URL(fileURLWithPath: "\(results)/summary.csv"))
        _ = try LorabenchProcess.output(["collect", results])
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(results)/summary.csv")) == summary)
    }

    @Test func aCancelledTaskIsReportedAndResubmittedWithResume() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest, to: directory, name: "slurm-long.yaml")
        let results = "\(directory)/slurm"
        _ = try LorabenchProcess.output(["run", manifest, "--slurm", "--out", results])
        let sweep = try SlurmSweep.open(directory: results)
        let job = try #require(sweep.record.jobs.first?.jobID)
        let victim = sweep.record.jobs[0].runs[0]
        // Cancel task 0 once its run has saved a checkpoint, so that the resubmitted task continues it.
        let checkpointed = waitUntil(timeout: 300) { !sweep.layout.checkpointSteps(victim).isEmpty }
        #expect(checkpointed)
        try slurmCommand("scancel", ["\(job)_0"])
        #expect(waitUntil(timeout: 120, interval: 0.25) { (try? SlurmCluster().queuedTasks(of: [job]).contains { $0.taskIndex == 0 }) == false })
        #expect(try waitForSweep(results, timeout: 600, allowingMissing: 1))
        let report = try status(results)
        #expect(report.contains("1 completed, 0 diverged, 0 failed, 0 running, 0 pending, 1 missing"), "\(report)")
        #expect(report.contains("\(victim)  missing    checkpoint at step"), "\(report)")

        let collected = try LorabenchProcess.output(["collect", results])
        #expect(collected.contains("lorabench run \(manifest) --slurm --resume --out \(results)"), "\(collected)")
        let resubmitted = try LorabenchProcess.output(["run", manifest, "--slurm", "--resume", "--out", results])
        #expect(resubmitted.contains("1 array task(s)"), "\(resubmitted)")
        #expect(try SlurmSweep.open(directory: results).record.jobs.last?.runs == [victim])
        #expect(try waitForSweep(results, timeout: 600))
        _ = try LorabenchProcess.output(["collect", results])
        #expect(try LorabenchProcess.run(["run", manifest, "--out", "\(directory)/local"]) == 0)
        try expectSameResults(results, "\(directory)/local")
    }

    @Test func aTaskWarnedBeforeItsTimeLimitCheckpointsIsRequeuedAndFinishesTheSame() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try ExperimentSupport.write(Self.manifest.replacingOccurrences(of: "variants: [lora, dora]", with: "variants: [dora]"),
                                                   to: directory, name: "slurm-long.yaml")
        let results = "\(directory)/slurm"
        _ = try LorabenchProcess.output(["run", manifest, "--slurm", "--out", results])
        let sweep = try SlurmSweep.open(directory: results)
        let job = try #require(sweep.record.jobs.first?.jobID)
        let run = sweep.record.jobs[0].runs[0]
        let log = "\(results)/slurm/logs/\(job)_0.out"
        #expect(waitUntil(timeout: 300) { (try? String(contentsOfFile: sweep.layout.settingsFile(run), encoding: .utf8)) != nil })
        usleep(1_500_000)  // well into the run
        // What Slurm does at --signal=B:USR1@120: the signal to the batch shell alone.
        try slurmCommand("scancel", ["--signal=USR1", "--batch", "\(job)_0"])
        // The step the run checkpointed at on the warning (which may fall on a save_every step).
        var signalledStep: Int?
        #expect(waitUntil(timeout: 120) {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            signalledStep = text.firstMatch(of: /checkpointed at step (\d+) on the warning signal/).flatMap { Int($0.1) }
            return signalledStep != nil
        })
        #expect(try waitForSweep(results, timeout: 600))
        let step = try #require(signalledStep)
        #expect(sweep.layout.checkpointSteps(run).contains(step), "no checkpoint at the signalled step \(step)")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("\(run): resuming from the checkpoint at step \(step)"))

        _ = try LorabenchProcess.output(["collect", results])
        #expect(try LorabenchProcess.run(["run", manifest, "--out", "\(directory)/local"]) == 0)
        try expectSameResults(results, "\(directory)/local")
    }

    /// Polls until every run has finished (or all but `allowingMissing`) and no task of the sweep is queued.
    private func waitForSweep(_ results: String, timeout: Double, allowingMissing: Int = 0) throws -> Bool {
        let sweep = try SlurmSweep.open(directory: results)
        return waitUntil(timeout: timeout, interval: 0.25) {
            guard let states = try? sweep.states(cluster: SlurmCluster()) else { return false }
            return !states.contains { if case .queued = $0.state { true } else { false } }
                && states.filter { $0.state == .completed }.count == states.count - allowingMissing
        }
    }

    private func status(_ results: String) throws -> String { try LorabenchProcess.output(["status", results]) }

    private func slurmCommand(_ command: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [command] + arguments
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(command) \(arguments) exited \(process.terminationStatus)")
    }

    /// The two results folders hold the same metrics and summary, timing aside, bit for bit.
    private func expectSameResults(_ a: String, _ b: String) throws {
        #expect(try ExperimentSupport.records("\(a)/metrics.csv") == ExperimentSupport.records("\(b)/metrics.csv"))
        #expect(try ExperimentSupport.summaryWithoutTiming("\(a)/summary.csv") == ExperimentSupport.summaryWithoutTiming("\(b)/summary.csv"))
    }
}
