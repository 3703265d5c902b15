import Foundation
import LoRABenchTensorIO

/// What `lorabench run --slurm` asks Slurm for, beyond one task per run.
public struct SlurmRequest: Sendable, Equatable {
    public var partition: String?
    /// `--time`, in any form sbatch accepts (`30`, `2:00:00`, `1-00:00:00`).
    public var time: String?
    /// CPUs per task; also each run's BLAS threads unless the manifest fixes `blas_threads`.
    public var cpusPerTask: Int?
    public var memory: String?
    /// At most this many tasks at once (`--array=…%K`).
    public var maxParallel: Int?
    /// Further `#SBATCH` lines, verbatim (`--account=x`, `--qos=y`).
    public var extraArguments: [String] = []
    /// Seconds before the time limit at which Slurm warns the task (SIGUSR1), so that the run
    /// checkpoints and is requeued.
    public var warningSeconds = 120

    public init(partition: String? = nil, time: String? = nil, cpusPerTask: Int? = nil, memory: String? = nil,
                maxParallel: Int? = nil, extraArguments: [String] = []) {
        self.partition = partition
        self.time = time
        self.cpusPerTask = cpusPerTask
        self.memory = memory
        self.maxParallel = maxParallel
        self.extraArguments = extraArguments
    }
}

/// `slurm/jobs.json`: what was submitted, so that `status`, `collect` and `--resume` see the
/// sweep as its tasks do.
public struct SlurmRecord: Codable, Equatable, Sendable {
    public struct Job: Codable, Equatable, Sendable {
        public var jobID: String
        public var submitted: String
        /// Task i of the array trains `runs[i]`.
        public var runs: [String]

        enum CodingKeys: String, CodingKey {
            case jobID = "job_id", submitted, runs
        }
    }

    /// The manifest as given on the command line, for the resubmit line `collect` prints.
    public var manifest: String
    /// The copy the tasks read, relative to the results folder (`slurm/<name>.yaml`: the file
    /// name is kept, since an experiment may be named after it).
    public var manifestCopy: String
    /// Each run's BLAS threads (the manifest's, or the CPUs per task).
    public var blasThreads: Int
    public var jobs: [Job]

    enum CodingKeys: String, CodingKey {
        case manifest, manifestCopy = "manifest_copy", blasThreads = "blas_threads", jobs
    }
}

/// A run's state as `lorabench status` reports it.
public enum RunState: Equatable, Sendable {
    case completed, diverged(reason: String), failed(reason: String)
    /// In Slurm's queue: pending, running or requeued.
    case queued(jobID: String, task: Int, state: String)
    /// Neither finished nor queued; `checkpointStep` is where `--resume` continues it.
    case missing(checkpointStep: Int?)

    public var name: String {
        switch self {
        case .completed: return "completed"
        case .diverged: return "diverged"
        case .failed: return "failed"
        case let .queued(_, _, state): return state == "RUNNING" || state == "COMPLETING" ? "running" : "pending"
        case .missing: return "missing"
        }
    }

    public var detail: String {
        switch self {
        case .completed: return ""
        case let .diverged(reason), let .failed(reason): return reason
        case let .queued(jobID, task, state): return "job \(jobID) task \(task) (\(state))"
        case let .missing(step): return step.map { "checkpoint at step \($0)" } ?? ""
        }
    }

    /// Whether `--resume` submits it again.
    public var needsSubmission: Bool {
        switch self {
        case .failed, .missing: return true
        case .completed, .diverged, .queued: return false
        }
    }
}

/// A sweep run as a Slurm job array: `submit` writes `slurm/array.sbatch` (task i trains run i
/// of the pending runs, exactly as `lorabench run --only` does) and records the job in
/// `slurm/jobs.json`; tasks write only their own run folders; `collect` then rebuilds the
/// experiment's metrics.csv and summary.csv from them, under the results lock.
public struct SlurmSweep {
    public let layout: ResultsLayout
    public let manifest: Manifest
    public let record: SlurmRecord

    public var slurmDirectory: String { "\(layout.root)/slurm" }
    public var scriptFile: String { Self.scriptFile(root: layout.root) }
    public var logsDirectory: String { "\(slurmDirectory)/logs" }

    static func scriptFile(root: String) -> String { "\(root)/slurm/array.sbatch" }
    static func recordFile(root: String) -> String { "\(root)/slurm/jobs.json" }

    /// The sweep submitted into `directory`, as its tasks read it.
    public static func open(directory: String) throws -> SlurmSweep {
        let recordPath = recordFile(root: directory)
        guard let data = FileManager.default.contents(atPath: recordPath) else {
            throw ResultsError.missingFile(path: recordPath, producer: "lorabench run MANIFEST --slurm --out \(directory)")
        }
        let record: SlurmRecord
        do {
            record = try JSONDecoder().decode(SlurmRecord.self, from: data)
        } catch {
            throw ResultsError.malformed(path: recordPath, line: 1, message: "not a LoRABench job record: \(error)")
        }
        let manifest = try Manifest.load(path: "\(directory)/\(record.manifestCopy)", defaultBLASThreads: record.blasThreads)
        return SlurmSweep(layout: ResultsLayout(root: directory), manifest: manifest, record: record)
    }

    /// Every run of the grid with its state; queued states come from `squeue` when `cluster` is given.
    public func states(cluster: SlurmCluster?) throws -> [(run: RunSpec, state: RunState)] {
        try states(queue: cluster?.queuedTasks(of: record.jobs.map(\.jobID)) ?? [])
    }

    /// Every run's state, given the tasks of this sweep's jobs that `squeue` lists.
    package func states(queue: [QueuedTask]) throws -> [(run: RunSpec, state: RunState)] {
        var queued: [String: QueuedTask] = [:]
        let jobs = Dictionary(record.jobs.map { ($0.jobID, $0) }, uniquingKeysWith: { $1 })
        for task in queue {
            guard let runs = jobs[task.jobID]?.runs, runs.indices.contains(task.taskIndex) else { continue }
            queued[runs[task.taskIndex]] = task
        }
        return try manifest.runs.map { run in
            if let outcome = try layout.outcome(of: run.id) {
                switch outcome.status {
                case .completed: return (run, .completed)
                case .diverged: return (run, .diverged(reason: outcome.reason))
                case .failed: if queued[run.id] == nil { return (run, .failed(reason: outcome.reason)) }
                }
            }
            if let task = queued[run.id] { return (run, .queued(jobID: task.jobID, task: task.taskIndex, state: task.state)) }
            return (run, .missing(checkpointStep: layout.checkpointSteps(run.id).last))
        }
    }

    /// Rebuilds metrics.csv and summary.csv from the run folders, under the results lock; the
    /// same folders always give the same files.
    public func collect() throws -> [(run: RunSpec, state: RunState)] {
        let lock = try FolderLock(folder: layout.root, holder: "lorabench collect \(layout.root)")
        defer { withExtendedLifetime(lock) {} }
        try ExperimentRunner(manifest: manifest, outputDirectory: layout.root).rebuildAggregates()
        return try states(cluster: nil)
    }

    /// The command that submits exactly the runs that still need it.
    public var resubmitCommand: String {
        "lorabench run \(shellQuoted(record.manifest)) --slurm --resume --out \(shellQuoted(layout.root))"
    }

    /// What `submit` did: the script, the runs in task order, and the job id (nil for a dry run
    /// or when nothing needed submitting).
    public struct Submission {
        public var script: String
        public var runs: [String]
        public var jobID: String?
        public var scriptFile: String
    }

    /// Writes the array script for the runs that need it (all of them, or with `resume` those
    /// not finished and not queued) and submits it with `sbatch`, unless `dryRun`. `executable`
    /// is the lorabench that tasks run (a path on the shared file system).
    public static func submit(manifestPath: String, outputDirectory: String?, request: SlurmRequest, resume: Bool, dryRun: Bool,
                              executable: String, cluster: SlurmCluster) throws -> Submission {
        let probe = try Manifest.load(path: manifestPath)
        let root = absolute(outputDirectory ?? ResultsLayout.defaultRoot(experiment: probe.experiment))
        let layout = ResultsLayout(root: root)
        let previous = FileManager.default.fileExists(atPath: recordFile(root: root)) ? try open(directory: root) : nil
        if !resume {
            if previous != nil || !layout.runFolders.isEmpty {
                throw SweepError.existingResults(directory: root, runs: max(layout.runFolders.count, previous?.record.jobs.count ?? 0))
            }
            try layout.checkHoldsResults(of: probe.experiment)
        }
        let threads = try blasThreads(manifest: probe, request: request, previous: previous?.record)
        let manifest = try Manifest.load(path: manifestPath, defaultBLASThreads: threads)
        let cpus = request.cpusPerTask ?? threads
        let copyName = "slurm/\(URL(fileURLWithPath: manifestPath).lastPathComponent)"

        let lock = try dryRun ? nil : FolderLock(folder: root, holder: "lorabench run \(manifestPath) --slurm")
        defer { withExtendedLifetime(lock) {} }
        var record = previous?.record ?? SlurmRecord(manifest: manifestPath, manifestCopy: copyName, blasThreads: threads, jobs: [])
        record.manifest = manifestPath
        record.manifestCopy = copyName
        // Finished and still-queued runs are left alone; the rest (all of them, the first time) are submitted.
        let pending = try SlurmSweep(layout: layout, manifest: manifest, record: record)
            .states(cluster: record.jobs.isEmpty ? nil : cluster).filter(\.state.needsSubmission).map(\.run.id)
        let script = SlurmScript(experiment: manifest.experiment, root: root, manifestCopy: "\(root)/\(copyName)", executable: executable,
                                 runs: pending, blasThreads: threads, cpusPerTask: cpus, request: request).text
        guard !dryRun, !pending.isEmpty else { return Submission(script: script, runs: pending, jobID: nil, scriptFile: scriptFile(root: root)) }

        try AtomicFile.write(manifest.text, to: layout.manifestCopy)
        try AtomicFile.write(manifest.text, to: "\(root)/\(copyName)")
        try FileSystem.createDirectory("\(root)/slurm/logs")
        try AtomicFile.write(script, to: scriptFile(root: root))
        let jobID = try cluster.submit(script: scriptFile(root: root))
        record.jobs.append(.init(jobID: jobID, submitted: ISO8601DateFormatter().string(from: Date()), runs: pending))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(record), to: recordFile(root: root))
        return Submission(script: script, runs: pending, jobID: jobID, scriptFile: scriptFile(root: root))
    }

    /// The runs' BLAS threads: the manifest's `blas_threads` when it sets it, else the CPUs per
    /// task (1 by default); a resubmission keeps what the sweep started with, since the thread
    /// count is part of every run's settings.
    private static func blasThreads(manifest: Manifest, request: SlurmRequest, previous: SlurmRecord?) throws -> Int {
        if manifest.training.fixesBLASThreads { return manifest.training.blasThreads }
        guard let previous else { return request.cpusPerTask ?? 1 }
        if let cpus = request.cpusPerTask, cpus != previous.blasThreads {
            throw SweepError.conflictingResubmission(
                reason: "the sweep's runs use \(previous.blasThreads) BLAS thread(s) (its first --cpus-per-task), part of their settings; resubmit with --cpus-per-task \(previous.blasThreads), or set training.blas_threads")
        }
        return previous.blasThreads
    }

    private static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}

/// The job-array script: task i runs `lorabench run COPY --only RUN_i` in the background and
/// passes Slurm's warning signal on to it; a run that checkpointed on the warning exits 75, and
/// the script requeues its task, which then continues from that checkpoint.
public struct SlurmScript {
    public var experiment: String
    public var root: String
    public var manifestCopy: String
    public var executable: String
    public var runs: [String]
    public var blasThreads: Int
    public var cpusPerTask: Int
    public var request: SlurmRequest

    /// The exit status of a run that saved a checkpoint and stopped (BSD's EX_TEMPFAIL).
    public static let checkpointedStatus: Int32 = 75

    public var text: String {
        var directives = [
            "--job-name=lorabench-\(experiment)",
            "--array=0-\(max(0, runs.count - 1))" + (request.maxParallel.map { "%\($0)" } ?? ""),
            "--output=\(root)/slurm/logs/%A_%a.out",
            "--error=\(root)/slurm/logs/%A_%a.err",
            "--open-mode=append",
            "--cpus-per-task=\(cpusPerTask)",
        ]
        if let partition = request.partition { directives.append("--partition=\(partition)") }
        if let time = request.time { directives.append("--time=\(time)") }
        if let memory = request.memory { directives.append("--mem=\(memory)") }
        directives += ["--requeue", "--signal=B:USR1@\(request.warningSeconds)"] + request.extraArguments
        let command = [shellQuoted(executable), "run", shellQuoted(manifestCopy), "--out", shellQuoted(root), "--only", "\"$run\"",
                       "--slurm-task", "--default-blas-threads", String(blasThreads)].joined(separator: " ")
        return """
        #!/bin/bash
        # LoRABench experiment \(experiment): \(runs.count) run(s); array task i trains run i of the list below.
        \(directives.map { "#SBATCH \($0)" }.joined(separator: "\n"))
        set -uo pipefail
        runs=(
        \(runs.map { "  \($0)" }.joined(separator: "\n"))
        )
        run="${runs[$SLURM_ARRAY_TASK_ID]}"
        # Slurm's warning before the time limit reaches this shell (B:): pass it on, so the run
        # saves a checkpoint and exits \(Self.checkpointedStatus). The trap is set before the run starts.
        trainer=""
        trap 'kill -USR1 "$trainer" 2>/dev/null' USR1
        \(command) &
        trainer=$!
        status=0
        while kill -0 "$trainer" 2>/dev/null; do
          wait "$trainer"
          status=$?
        done
        if [ "$status" -eq \(Self.checkpointedStatus) ]; then
          # Requeued, the task continues the run from the checkpoint it just saved.
          scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
        fi
        exit "$status"

        """
    }
}

/// `text` as one shell word: left bare when it is plainly safe, else single-quoted.
package func shellQuoted(_ text: String) -> String {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+=:,@".contains($0)) }) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// `lorabench status` as text: a count line, then one line per run.
public struct SweepStatusTable {
    public var experiment: String
    public var states: [(run: RunSpec, state: RunState)]

    public init(experiment: String, states: [(run: RunSpec, state: RunState)]) {
        self.experiment = experiment
        self.states = states
    }

    public var counts: String {
        let names = ["completed", "diverged", "failed", "running", "pending", "missing"]
        let parts = names.map { name in "\(states.filter { $0.state.name == name }.count) \(name)" }
        return "\(experiment): \(states.count) runs — " + parts.joined(separator: ", ")
    }

    public var text: String {
        let width = states.map(\.run.id.count).max() ?? 0
        return ([counts] + states.map { run, state in
            (run.id.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + state.name.padding(toLength: 9, withPad: " ", startingAt: 0)
                + "  " + state.detail).trimmingCharacters(in: .whitespaces)
        }).joined(separator: "\n")
    }
}
