import Foundation
import LoRABenchTensorIO
import LoRABenchResults

/// Why `collect` wrote nothing.
public enum CollectError: Error, Equatable, CustomStringConvertible {
    /// Rebuilt, the aggregates would hold fewer runs than `file` or the run folders hold.
    case wouldDropRuns(file: String, runs: [String], reason: String, remedy: String)

    public var description: String {
        switch self {
        case let .wouldDropRuns(file, runs, reason, remedy):
            let named = runs.prefix(3).joined(separator: ", ") + (runs.count > 3 ? " and \(runs.count - 3) more" : "")
            return "collect left \(file) and the other aggregates as they were: rebuilt, they would lose \(runs.count) "
                + "\(reason) (\(named)); \(remedy)"
        }
    }
}

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
    /// Further `#SBATCH` lines, verbatim (`--account=x`, `--qos=y`); each one option on one line.
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
    /// Stopped at a rung by successive halving (a folder trained here: Slurm sweeps cannot halve).
    case stopped(reason: String)
    /// In Slurm's queue: pending, running or requeued.
    case queued(jobID: String, task: Int, state: String)
    /// Neither finished nor queued; `checkpointStep` is where `--resume` continues it.
    case missing(checkpointStep: Int?)
    /// Not finished, and Slurm's queue could not be asked (no sbatch here), so it may still be
    /// pending or running: never called missing on a guess.
    case unfinished(checkpointStep: Int?)

    public var name: String {
        switch self {
        case .completed: return "completed"
        case .diverged: return "diverged"
        case .failed: return "failed"
        case .stopped: return "stopped"
        case let .queued(_, _, state): return state == "RUNNING" || state == "COMPLETING" ? "running" : "pending"
        case .missing: return "missing"
        case .unfinished: return "unfinished"
        }
    }

    public var detail: String {
        switch self {
        case .completed: return ""
        case let .diverged(reason), let .failed(reason), let .stopped(reason): return reason
        case let .queued(jobID, task, state): return "job \(jobID) task \(task) (\(state))"
        case let .missing(step): return step.map { "checkpoint at step \($0)" } ?? ""
        case let .unfinished(step):
            return "no outcome yet; may still be queued or running (Slurm's queue was not read)" + (step.map { ", checkpoint at step \($0)" } ?? "")
        }
    }

    /// Whether `--resume` submits it again (it reads the queue, so it never sees `unfinished`).
    public var needsSubmission: Bool {
        switch self {
        case .failed, .missing: return true
        case .completed, .diverged, .stopped, .queued, .unfinished: return false
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
        let record = try SlurmRecord.read(data, path: recordPath, root: directory)
        let copy = "\(directory)/\(record.manifestCopy)"  // `read` has checked that it stays inside the folder
        let manifest = try Manifest.load(path: copy, defaultBLASThreads: record.blasThreads)
        return SlurmSweep(layout: ResultsLayout(root: directory), manifest: manifest, record: record)
    }

    /// Every run of the grid with its state; queued states come from `squeue` when `cluster` is
    /// given, and without it a run not finished is `unfinished`, not missing.
    public func states(cluster: SlurmCluster?) throws -> [(run: RunSpec, state: RunState)] {
        if record.jobs.isEmpty { return try states(queue: []) }
        return try states(queue: cluster?.queuedTasks(of: record.jobs.map(\.jobID)))
    }

    /// Every run's state, given the tasks of this sweep's jobs that `squeue` lists (nil: the
    /// queue is unknown).
    package func states(queue: [QueuedTask]?) throws -> [(run: RunSpec, state: RunState)] {
        var queued: [String: QueuedTask] = [:]
        let jobs = Dictionary(record.jobs.map { ($0.jobID, $0) }, uniquingKeysWith: { $1 })
        for task in queue ?? [] {
            guard let runs = jobs[task.jobID]?.runs, runs.indices.contains(task.taskIndex) else { continue }
            queued[runs[task.taskIndex]] = task
        }
        return try manifest.runs.map { run in
            if let outcome = try layout.outcome(of: run.id) {
                switch outcome.status {
                case .completed: return (run, .completed)
                case .diverged: return (run, .diverged(reason: outcome.reason))
                case .stopped: return (run, .stopped(reason: outcome.reason))
                case .failed: if queued[run.id] == nil { return (run, .failed(reason: outcome.reason)) }
                }
            }
            if let task = queued[run.id] { return (run, .queued(jobID: task.jobID, task: task.taskIndex, state: task.state)) }
            let checkpoint = layout.checkpointSteps(run.id).last
            return (run, queue == nil ? .unfinished(checkpointStep: checkpoint) : .missing(checkpointStep: checkpoint))
        }
    }

    /// Rebuilds metrics.csv and summary.csv from the run folders, under the results lock; the
    /// same folders always give the same files. Runs still in Slurm's queue (asked through
    /// `cluster`) are reported as pending or running. Refuses, writing nothing, when the
    /// aggregates would lose a run they hold or a finished run folder holds.
    public func collect(cluster: SlurmCluster?) throws -> [(run: RunSpec, state: RunState)] {
        let lock = try FolderLock(folder: layout.root, holder: "lorabench collect \(layout.root)")
        defer { withExtendedLifetime(lock) {} }
        try checkCollectKeepsEveryRun()
        try ExperimentRunner(manifest: manifest, outputDirectory: layout.root).rebuildAggregates()
        return try states(cluster: cluster)
    }

    /// Throws `CollectError.wouldDropRuns` when the manifest copy does not give every
    /// finished run folder, or every run summary.csv lists now: rebuilt, the aggregates would
    /// silently hold fewer runs (a damaged jobs.json or manifest copy changes every run id).
    private func checkCollectKeepsEveryRun() throws {
        let collected = Set(try manifest.runs.filter { try layout.outcome(of: $0.id) != nil }.map(\.id))
        let finishedFolders = layout.runFolders.filter { FileManager.default.fileExists(atPath: layout.outcomeFile($0)) }
        let unlisted = finishedFolders.filter { !collected.contains($0) }
        let copy = "\(layout.root)/\(record.manifestCopy)"
        if !unlisted.isEmpty {
            throw CollectError.wouldDropRuns(
                file: layout.summaryFile, runs: unlisted,
                reason: "finished run folder(s) under \(layout.runsDirectory) that the sweep's manifest (\(copy), with blas_threads \(record.blasThreads) from slurm/jobs.json) does not give",
                remedy: "restore the manifest copy and jobs.json the sweep was submitted with, or move those run folders out of runs/ if they belong to another sweep")
        }
        // An unreadable summary holds no runs to keep; rebuilding it is the repair.
        guard let previous = try? CSVTable(contentsOf: layout.summaryFile, producer: "lorabench collect"),
              let column = try? previous.column("run_id") else { return }
        let dropped = previous.records.map { $0.fields.indices.contains(column) ? $0.fields[column] : "" }.filter { !collected.contains($0) }
        if !dropped.isEmpty {
            throw CollectError.wouldDropRuns(
                file: layout.summaryFile, runs: dropped,
                reason: "run(s) that \(layout.summaryFile) lists but whose run folder has no outcome.json, or that the manifest (\(copy)) does not give",
                remedy: "restore those run folders (or the manifest), or, to drop them on purpose, delete \(layout.summaryFile) and collect again")
        }
    }

    /// The command that submits exactly the runs that still need it.
    public var resubmitCommand: String {
        "lorabench run \(ChildProcess.shellQuoted(record.manifest)) --slurm --resume --out \(ChildProcess.shellQuoted(layout.root))"
    }

    /// What `submit` did: one job array per `MaxArraySize` runs, each with its script, its runs in
    /// task order and its job id (nil for a dry run or when nothing needed submitting).
    public struct Submission {
        public struct JobArray {
            public var script: String
            public var scriptFile: String
            public var runs: [String]
            public var jobID: String?
        }

        public var root: String
        public var arrays: [JobArray]
        /// The cluster's largest array (`MaxArraySize`), which split the runs into `arrays`.
        public var maxArraySize: Int

        public var runs: [String] { arrays.flatMap(\.runs) }
    }

    /// Writes the array script for the runs that need it (all of them, or with `resume` those
    /// not finished and not queued) and submits it with `sbatch`, unless `dryRun`; runs beyond
    /// the cluster's `MaxArraySize` go into further arrays, each started after the one before
    /// ends when `maxParallel` caps the tasks at once. `executable` is the lorabench that tasks
    /// run (a path on the shared file system).
    public static func submit(manifestPath: String, outputDirectory: String?, request: SlurmRequest, resume: Bool, dryRun: Bool,
                              executable: String, cluster: SlurmCluster) throws -> Submission {
        try request.validate()
        let probe = try Manifest.load(path: manifestPath)
        if let halving = probe.selection?.halving {
            // Each rung ranks runs that must all have reached it, and a job array starts every run at once.
            throw SlurmInputError.invalidOption(
                option: "--slurm", found: "a manifest with selection.halving (\(halving.location))",
                allowed: "a sweep without successive halving: its rungs wait for every run of a cell, which one job array per sweep "
                    + "cannot do; train it on one machine (`lorabench run --jobs N`), or leave halving out of the selection")
        }
        let root = absolute(outputDirectory ?? ResultsLayout.defaultRoot(experiment: probe.experiment))
        // The folder names the tasks' logs in #SBATCH lines, where Slurm reads a backslash as
        // "expand no %A_%a"; the manifest's file name is kept for its copy.
        guard isOneLine(root), !root.contains("\\") else {
            throw SlurmInputError.invalidOption(option: "--out", found: visible(root), allowed: "a folder path on one line without '\\'")
        }
        let manifestName = URL(fileURLWithPath: manifestPath).lastPathComponent
        guard isOneLine(manifestName) else {
            throw SlurmInputError.invalidOption(option: "MANIFEST", found: visible(manifestName), allowed: "a file name on one line")
        }
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
        let copyName = "slurm/\(manifestName)"
        let maxArraySize = cluster.maxArraySize
        guard maxArraySize > 0 else { throw SlurmInputError.arraysDisabled }

        let lock = try dryRun ? nil : FolderLock(folder: root, holder: "lorabench run \(manifestPath) --slurm")
        defer { withExtendedLifetime(lock) {} }
        var record = previous?.record ?? SlurmRecord(manifest: manifestPath, manifestCopy: copyName, blasThreads: threads, jobs: [])
        record.manifest = manifestPath
        record.manifestCopy = copyName
        // Finished and still-queued runs are left alone; the rest (all of them, the first time) are submitted.
        let pending = try SlurmSweep(layout: layout, manifest: manifest, record: record)
            .states(cluster: cluster).filter(\.state.needsSubmission).map(\.run.id)
        let chunks = stride(from: 0, to: max(pending.count, 1), by: maxArraySize).map { Array(pending[$0..<min($0 + maxArraySize, pending.count)]) }
        var arrays = chunks.enumerated().map { index, runs in
            let script = SlurmScript(experiment: manifest.experiment, root: root, manifestCopy: "\(root)/\(copyName)", executable: executable,
                                     runs: runs, blasThreads: threads, cpusPerTask: cpus, request: request,
                                     arrayNumber: index + 1, arrayCount: chunks.count)
            let file = chunks.count == 1 ? scriptFile(root: root) : "\(root)/slurm/array-\(index + 1)-of-\(chunks.count).sbatch"
            return Submission.JobArray(script: script.text, scriptFile: file, runs: runs, jobID: nil)
        }
        guard !dryRun, !pending.isEmpty else { return Submission(root: root, arrays: arrays, maxArraySize: maxArraySize) }

        try AtomicFile.write(manifest.text, to: layout.manifestCopy)
        try AtomicFile.write(manifest.text, to: "\(root)/\(copyName)")
        try FileSystem.createDirectory("\(root)/slurm/logs")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for index in arrays.indices {
            try AtomicFile.write(arrays[index].script, to: arrays[index].scriptFile)
            let after = request.maxParallel == nil || index == 0 ? nil : arrays[index - 1].jobID
            let jobID = try cluster.submit(script: arrays[index].scriptFile, after: after)
            arrays[index].jobID = jobID
            // Recorded at once: should a later sbatch fail, --resume sees this array's runs as queued.
            record.jobs.append(.init(jobID: jobID, submitted: ISO8601DateFormatter().string(from: Date()), runs: arrays[index].runs))
            try AtomicFile.write(try encoder.encode(record), to: recordFile(root: root))
        }
        return Submission(root: root, arrays: arrays, maxArraySize: maxArraySize)
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

/// `lorabench status` as text: a count line, then one line per run.
public struct SweepStatusTable {
    public var experiment: String
    public var states: [(run: RunSpec, state: RunState)]

    public init(experiment: String, states: [(run: RunSpec, state: RunState)]) {
        self.experiment = experiment
        self.states = states
    }

    public var counts: String {
        let unfinished = states.contains { $0.state.name == "unfinished" } ? ["unfinished"] : []
        let names = ["completed", "diverged", "failed", "running", "pending", "missing"] + unfinished
        let parts = names.map { name in "\(states.filter { $0.state.name == name }.count) \(name)" }
        return "\(experiment): \(states.count) runs — " + parts.joined(separator: ", ")
    }

    public var text: String {
        let width = states.map(\.run.id.count).max() ?? 0
        let stateWidth = max(9, states.map(\.state.name.count).max() ?? 0)
        return ([counts] + states.map { run, state in
            (run.id.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + state.name.padding(toLength: stateWidth, withPad: " ", startingAt: 0)
                + "  " + state.detail).trimmingCharacters(in: .whitespaces)
        }).joined(separator: "\n")
    }
}
