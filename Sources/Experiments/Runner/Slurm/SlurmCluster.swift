import Foundation
import LoRABenchTensorIO

/// A Slurm command that could not do what was asked; each names the command and what it said.
public enum SlurmError: Error, Equatable, CustomStringConvertible {
    case commandMissing(String)
    case commandFailed(command: String, status: Int32, output: String)
    case unexpectedOutput(command: String, output: String)

    public var description: String {
        switch self {
        case let .commandMissing(command):
            return "\(command) is not on PATH: run this on a Slurm login node (or try a local Slurm: scripts/slurm-local start)"
        case let .commandFailed(command, status, output):
            return "\(command) exited with status \(status): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
        case let .unexpectedOutput(command, output):
            return "\(command) printed '\(output.trimmingCharacters(in: .whitespacesAndNewlines))', not what LoRABench expected"
        }
    }
}

/// An array task as `squeue` lists it.
public struct QueuedTask: Equatable, Sendable {
    public var jobID: String
    public var taskIndex: Int
    /// Slurm's state name: PENDING, RUNNING, COMPLETING, REQUEUED, …
    public var state: String

    public init(jobID: String, taskIndex: Int, state: String) {
        self.jobID = jobID
        self.taskIndex = taskIndex
        self.state = state
    }
}

/// The Slurm client commands LoRABench uses: `sbatch` to submit, `squeue` to see what is queued.
/// They read the cluster from their environment (`SLURM_CONF` for a local Slurm).
public struct SlurmCluster: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// `sbatch --parsable SCRIPT`: the job id (the part before a `;cluster` suffix). With `after`,
    /// the job starts only once that job has ended (`--dependency=afterany:`).
    public func submit(script: String, after: String? = nil) throws -> String {
        let output = try run("sbatch", ["--parsable"] + (after.map { ["--dependency=afterany:\($0)"] } ?? []) + [script])
        let jobID = output.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard !jobID.isEmpty, jobID.allSatisfy(\.isNumber) else { throw SlurmError.unexpectedOutput(command: "sbatch --parsable", output: output) }
        return jobID
    }

    /// The array tasks of `jobIDs` still in the queue (pending, running, requeued), one per task.
    /// Each job is asked for on its own: squeue fails a whole query for one id it has forgotten.
    public func queuedTasks(of jobIDs: [String]) throws -> [QueuedTask] {
        try jobIDs.flatMap { jobID -> [QueuedTask] in
            // --array lists each pending task on its own line; %F is the array's job id, %K the task index.
            let arguments = ["--noheader", "--array", "--jobs", jobID, "--format", "%F %K %T"]
            let result = try execute("squeue", arguments)
            // squeue exits 1 both for a job it has forgotten (ended: none of its tasks is queued)
            // and when the controller does not answer ("Socket timed out"): then the queue is
            // unknown, not empty, and a running task must not be reported as missing.
            if result.termination == .exited(1) {
                guard result.errors.contains(Self.forgottenJobMessage) else {
                    throw SlurmError.commandFailed(command: (["squeue"] + arguments).joined(separator: " "), status: 1,
                                                   output: result.errors.isEmpty ? result.output : result.errors)
                }
                return []
            }
            let output = try result.check().output
            return output.split(separator: "\n").compactMap { line -> QueuedTask? in
                let fields = line.split(separator: " ")
                guard fields.count == 3, let index = Int(fields[1]) else { return nil }
                return QueuedTask(jobID: String(fields[0]), taskIndex: index, state: String(fields[2]))
            }
        }
    }

    /// Slurm's default `MaxArraySize`: array task ids run from 0 to 1000.
    public static let defaultMaxArraySize = 1001

    /// The most tasks one job array may have (task ids 0 … MaxArraySize − 1), from `scontrol show
    /// config`; Slurm's default when scontrol cannot say (a dry run away from the cluster).
    public var maxArraySize: Int {
        guard let output = try? run("scontrol", ["show", "config"]) else { return Self.defaultMaxArraySize }
        return Self.maxArraySize(config: output) ?? Self.defaultMaxArraySize
    }

    /// `MaxArraySize = N` from the text of `scontrol show config`.
    package static func maxArraySize(config: String) -> Int? {
        for line in config.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, parts[0] == "MaxArraySize" { return Int(parts[1]).flatMap { $0 >= 0 ? $0 : nil } }
        }
        return nil
    }

    /// Whether `sbatch` can be found on PATH.
    public var isAvailable: Bool {
        (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/sbatch")
        }
    }

    /// What squeue prints for a job id the controller no longer knows.
    package static let forgottenJobMessage = "Invalid job id specified"

    /// Runs `command` (found on PATH by /usr/bin/env, which exits 127 when it is not there).
    private func execute(_ command: String, _ arguments: [String]) throws -> ChildResult {
        let result = try ChildProcess.run("/usr/bin/env", [command] + arguments, environment: environment)
        if result.termination == .exited(127) { throw SlurmError.commandMissing(command) }
        return result
    }

    /// `execute`, then the output of a command that exited with status 0.
    private func run(_ command: String, _ arguments: [String]) throws -> String {
        let result = try execute(command, arguments)
        if case let .exited(status) = result.termination, status != 0 {
            throw SlurmError.commandFailed(command: ([command] + arguments).joined(separator: " "), status: status,
                                           output: result.errors.isEmpty ? result.output : result.errors)
        }
        return try result.check().output  // only a death by signal is left for `check` to report
    }
}
