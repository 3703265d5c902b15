import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// A sweep that cannot start or continue as asked.
public enum SweepError: Error, Equatable, CustomStringConvertible {
    case existingResults(directory: String, runs: Int)
    case notResultsFolder(directory: String, reason: String)
    case conflictingResubmission(reason: String)
    case unknownRun(id: String, manifest: String)
    case workersNeedExecutable
    /// `--pause-at` outside the training (a worker's option, set by the runner for a rung).
    case pauseOutOfRange(step: Int, steps: Int)
    /// A run's folder holds training past the rung at which, with this manifest, successive
    /// halving stops its learning rate.
    case halvingContradicted(runID: String, rung: Int, step: Int, learningRate: String, manifest: String)

    public var description: String {
        switch self {
        case let .existingResults(directory, runs):
            return "\(directory) already holds \(runs) run folder(s); pass --resume to continue that sweep, or --out to write elsewhere"
        case let .notResultsFolder(directory, reason):
            return "\(directory): \(reason); lorabench writes results only into a new or empty folder, or its own results of the same experiment: choose another --out"
        case let .conflictingResubmission(reason):
            return reason
        case let .unknownRun(id, manifest):
            return "no run '\(id)' in \(manifest); `lorabench run \(manifest) --dry-run` lists the run ids"
        case .workersNeedExecutable:
            return "--jobs > 1 needs the lorabench executable to start workers"
        case let .pauseOutOfRange(step, steps):
            return "--pause-at: found \(step); allowed: a step from 1 to \(steps - 1), before training.steps (\(steps))"
        case let .halvingContradicted(runID, rung, step, learningRate, manifest):
            return "\(runID) trained past rung \(rung) (step \(step)) in an earlier sweep of this folder, but with \(manifest) successive "
                + "halving stops its learning rate \(learningRate) there: selection.halving, the learning rates or the seeds have changed "
                + "since; run the manifest into a new --out, or restore what it was"
        }
    }
}

/// How one attempt at a run ended: with its outcome written, or paused at a rung of successive
/// halving (checkpointed there, its metrics.csv so far written, no outcome.json).
public enum RunEnd: Sendable {
    case finished(RunOutcome)
    case paused(step: Int)
}

/// How to run a sweep.
public struct SweepOptions: Sendable {
    /// Skip runs whose outcome.json exists; continue the others from their last checkpoint
    /// (`save_every`), or from scratch when they have none.
    public var resume = false
    /// Runs trained at once, each in its own worker process.
    public var jobs = 1
    /// The `lorabench` executable that workers run (`jobs > 1`).
    public var workerExecutable: String?

    public init(resume: Bool = false, jobs: Int = 1, workerExecutable: String? = nil) {
        self.resume = resume
        self.jobs = jobs
        self.workerExecutable = workerExecutable
    }

    /// The most runs that fit at once: jobs × the manifest's `blas_threads` ≤ cores.
    public static func maximumJobs(blasThreads: Int, cores: Int) -> Int { max(1, cores / max(1, blasThreads)) }
}

/// Runs a manifest's sweep into a results directory: each pending run is trained (in this
/// process, or in worker processes with `jobs > 1`) and writes its own folder, outcome last;
/// after every run the experiment's metrics.csv and summary.csv are rebuilt from the finished
/// run folders. Nothing is ever appended, so a kill at any moment leaves no partial rows.
public final class ExperimentRunner {
    public let manifest: Manifest
    public let layout: ResultsLayout
    private var builtTask: (any ExperimentTask)?
    /// Each finished run's experiment rows as CSV text, read once from its folder.
    private var rowCache: [String: String] = [:]
    private let lock = NSLock()

    public init(manifest: Manifest, outputDirectory: String? = nil) {
        self.manifest = manifest
        self.layout = ResultsLayout(root: outputDirectory ?? ResultsLayout.defaultRoot(experiment: manifest.experiment))
    }

    /// Each run of the grid with its outcome when it has finished (for `--dry-run`).
    public func plan() throws -> [(run: RunSpec, outcome: RunOutcome?)] {
        try manifest.runs.map { ($0, try layout.outcome(of: $0.id)) }
    }

    /// The `--dry-run` listing: one line per run with its axes and whether it has finished.
    public func planTable() throws -> String {
        let plan = try plan()
        let finished = plan.filter { $0.outcome != nil }.count
        let header = manifest.axisColumns + ["status"]
        let rows = plan.map { $0.run.axisValues + [$0.outcome?.status.rawValue ?? "pending"] }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        func line(_ fields: [String]) -> String {
            zip(fields, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return "\(manifest.experiment): \(plan.count) runs, \(finished) finished, results in \(layout.root)\n"
            + ([header] + rows).map(line).joined(separator: "\n")
    }

    /// Runs every unfinished run (with successive halving, rung by rung: `SuccessiveHalving`) and
    /// returns the outcome of every finished one, in grid order.
    /// Holds the results folder's lock throughout: a second sweep on the same folder stops at
    /// once with an error naming this process, instead of racing it for the same runs.
    public func run(options: SweepOptions, progress sink: ProgressSink) throws -> [RunOutcome] {
        try layout.checkHoldsResults(of: manifest.experiment)
        let folderLock = try FolderLock(folder: layout.root, holder: "lorabench run \(manifest.file)")
        defer { withExtendedLifetime(folderLock) {} }
        let folders = layout.runFolders
        if !options.resume, !folders.isEmpty { throw SweepError.existingResults(directory: layout.root, runs: folders.count) }
        try AtomicFile.write(manifest.text, to: layout.manifestCopy)
        // A failed run is an error to fix, not a result: resuming redoes it, as it does an unfinished one.
        let pending = try manifest.runs.filter { try layout.outcome(of: $0.id).map { $0.status == .failed } ?? true }
        let report = { (event: ProgressEvent) in self.lock.withLock { sink.handle(event) } }
        _ = report(.sweepStarted(runs: manifest.runs.count, finished: manifest.runs.count - pending.count,
                                 stepsPerRun: manifest.training.steps))
        if let selection = manifest.selection, let halving = selection.halving {
            try SuccessiveHalving(runner: self, settings: halving, metric: selection.metric).run(options: options, report: report)
        } else {
            try train(pending.map { WorkerPool.Job(id: $0.id, pauseStep: nil) }, options: options, report: report)
        }
        try rebuildAggregates()
        _ = report(.sweepFinished)
        return try manifest.runs.compactMap { try layout.outcome(of: $0.id) }
    }

    /// Trains `jobs` (runs, each to the end or to a pause step), in this process or with
    /// `options.jobs` workers, rebuilding the experiment's files after each run that finishes.
    func train(_ jobs: [WorkerPool.Job], options: SweepOptions, report: @escaping (ProgressEvent) -> ProgressAnswer) throws {
        if options.jobs > 1, jobs.count > 1 {
            guard let executable = options.workerExecutable else { throw SweepError.workersNeedExecutable }
            let pool = WorkerPool(executable: executable, manifestPath: manifest.file, outputDirectory: layout.root)
            try pool.run(jobs, workers: options.jobs, layout: layout, progress: report) { _ in
                try self.lock.withLock { try self.rebuildAggregates() }
            }
            return
        }
        for job in jobs {
            guard let run = manifest.runs.first(where: { $0.id == job.id }) else { throw SweepError.unknownRun(id: job.id, manifest: manifest.file) }
            switch try execute(run, pausingAt: job.pauseStep, progress: report) {
            case let .finished(outcome):
                try rebuildAggregates()
                _ = report(.runFinished(id: run.id, outcome: outcome))
            case let .paused(step):
                _ = report(.runPaused(id: run.id, step: step))
            }
        }
    }

    /// Trains the run `id` in this process and writes its folder (a Slurm task's whole job).
    public func execute(runID id: String, progress: @escaping (ProgressEvent) -> ProgressAnswer) throws -> RunOutcome {
        guard case let .finished(outcome) = try execute(runID: id, pausingAt: nil, progress: progress) else {
            preconditionFailure("a run without a pause step always finishes")
        }
        return outcome
    }

    /// Trains the run `id` in this process, to the end or to the rung `pauseStep` of successive
    /// halving (a worker's whole job).
    public func execute(runID id: String, pausingAt pauseStep: Int?, progress: @escaping (ProgressEvent) -> ProgressAnswer) throws -> RunEnd {
        guard let run = manifest.runs.first(where: { $0.id == id }) else {
            throw SweepError.unknownRun(id: id, manifest: manifest.file)
        }
        if let pauseStep, !(1..<manifest.training.steps).contains(pauseStep) {
            throw SweepError.pauseOutOfRange(step: pauseStep, steps: manifest.training.steps)
        }
        return try execute(run, pausingAt: pauseStep, progress: progress)
    }

    /// settings.yaml first, then training (with a checkpoint every `save_every` steps), then
    /// metrics.csv and the adapter, then outcome.json. A folder left by an interrupted attempt
    /// continues from its last checkpoint when it has one for these settings, else is cleared.
    ///
    /// With `pauseStep` (a rung of successive halving) training stops after that step, with a
    /// checkpoint there, next to which goes the outcome the run would have if it were stopped
    /// there (`ResultsLayout.rungOutcomeFile`), and then its metrics.csv so far; no outcome.json.
    func execute(_ run: RunSpec, pausingAt pauseStep: Int? = nil, progress: (ProgressEvent) -> ProgressAnswer) throws -> RunEnd {
        // Held from before the task is built (generating its data runs sgemm too) to the end, so
        // nothing else in this process moves the count while the run computes.
        try BLASThreads.with(manifest.training.blasThreads) { try train(run, pausingAt: pauseStep, progress: progress) }
    }

    private func train(_ run: RunSpec, pausingAt pauseStep: Int?, progress: (ProgressEvent) -> ProgressAnswer) throws -> RunEnd {
        let id = run.id
        // A run paused at a rung continues from the rung's checkpoint, never from a later one.
        let resume = lastCheckpoint(of: run, atMost: pauseStep, progress: progress)
        if resume == nil {
            try FileSystem.remove(layout.runDirectory(id))
            try FileSystem.createDirectory(layout.runDirectory(id))
            try AtomicFile.write(run.settingsYAML, to: layout.settingsFile(id))
        } else {
            try FileSystem.remove(layout.outcomeFile(id))  // a failed attempt's, until this one ends
        }
        _ = progress(.runStarted(id: id))
        if let resume { _ = progress(.runResumed(id: id, step: resume.step)) }

        let task = try builtTask ?? manifest.task.makeTask()
        builtTask = task
        let metadata = ["format": "pt", "run_id": id, "variant": run.variant.label, "scaling": "\(run.scaling)",
                        PeftCheckpoint.baseWeightsKey: run.base.description]
        let trainer = RunTrainer(run: run, training: manifest.training, evalMetrics: manifest.task.evalMetrics,
                                 evaluatesValidation: manifest.task.hasValidationSplit)
        let trained = try trainer.train(task: task, resume: resume, pausingAt: pauseStep, progress: progress) { checkpoint in
            try write(checkpoint, of: id, metadata: metadata)
        }
        if let step = trained.pausedAt {
            // The rung's outcome before its rows: a metrics.csv with the rung's row means both are there.
            try AtomicFile.write(trained.outcome.encoded(), to: layout.rungOutcomeFile(id, step: step))
            try AtomicFile.write(MetricsCSV.runFile(runID: id, rows: trained.rows), to: layout.runMetricsFile(id))
            return .paused(step: step)
        }
        try AtomicFile.write(MetricsCSV.runFile(runID: id, rows: trained.rows), to: layout.runMetricsFile(id))
        var outcome = trained.outcome
        outcome.adapterBytes = try trained.adapter?.save(directory: layout.peftAdapterDirectory(id), file: layout.adapterFile(id), metadata: metadata)
        if let predictions = trained.predictionsCSV { try AtomicFile.write(predictions, to: layout.predictionsFile(id)) }
        try AtomicFile.write(outcome.encoded(), to: layout.outcomeFile(id))
        return .finished(outcome)
    }

    /// The training state of the run's newest checkpoint (at most at `step`) that loads, when its
    /// folder was written for exactly these settings; nil otherwise. A damaged checkpoint is
    /// reported and the one before it tried.
    private func lastCheckpoint(of run: RunSpec, atMost step: Int?, progress: (ProgressEvent) -> ProgressAnswer) -> TrainingState? {
        guard let settings = FileManager.default.contents(atPath: layout.settingsFile(run.id)),
              String(decoding: settings, as: UTF8.self) == run.settingsYAML else { return nil }
        let steps = layout.checkpointSteps(run.id).filter { $0 <= step ?? Int.max }
        for step in steps.reversed() {
            do {
                return try TrainingState.load(step: step, earlierSteps: steps.filter { $0 < step }) { earlier in
                    "\(layout.checkpointDirectory(run.id, step: earlier))/\(TrainingState.fileName)"
                }
            } catch {
                _ = progress(.checkpointSkipped(id: run.id, step: step, reason: "\(error)"))
            }
        }
        return nil
    }

    /// Writes the checkpoint into `.step-<n>.partial/`, then renames it to `step-<n>/`, so a
    /// `step-<n>` folder is always complete.
    private func write(_ checkpoint: RunCheckpoint, of id: String, metadata: [String: String]) throws {
        let directory = layout.checkpointDirectory(id, step: checkpoint.step)
        let partial = "\(layout.checkpointsDirectory(id))/.step-\(checkpoint.step).partial"
        for stale in [partial, directory] { try FileSystem.remove(stale) }
        try FileSystem.createDirectory(partial)
        try checkpoint.adapter.save(directory: partial, file: "\(partial)/adapter.safetensors", metadata: metadata)
        try checkpoint.state.write(to: "\(partial)/\(TrainingState.fileName)")
        try FileSystem.rename(partial, to: directory)
    }

    /// Rewrites the experiment's metrics.csv and summary.csv from every finished run, in grid
    /// order (removing compare.csv when the summary changed), then from summary.csv the learning
    /// rates chosen (selection.csv, with a `selection:` block) and the statistics over seeds per
    /// cell (cells.csv).
    package func rebuildAggregates() throws {
        let evalMetrics = manifest.task.evalMetrics, validation = manifest.task.hasValidationSplit
        let (showingBase, learningRateAxis) = (manifest.sweep.showsBase, manifest.hasLearningRateAxis)
        var metrics = CSV.line(MetricsCSV.experimentColumns(showingBase: showingBase, learningRateAxis: learningRateAxis))
        var summary = CSV.line(SummaryCSV.columns(evalMetrics: evalMetrics, showingBase: showingBase, learningRateAxis: learningRateAxis,
                                                  validation: validation))
        for run in manifest.runs {
            guard let outcome = try layout.outcome(of: run.id) else { continue }
            if let rows = rowCache[run.id] {
                metrics += rows
            } else {
                let file = layout.runMetricsFile(run.id)
                var rows = ""
                if let data = FileManager.default.contents(atPath: file) {
                    rows = try MetricsCSV.experimentRows(axisValues: run.axisValues, runFile: data, path: file).map(CSV.line).joined()
                } else if outcome.status != .failed {  // a failed worker may have died before writing any
                    throw ResultsError.missingFile(path: file, producer: "lorabench run (the run's folder is incomplete)")
                }
                // A failed run is redone by --resume, so its rows are read afresh each time.
                if outcome.status != .failed { rowCache[run.id] = rows }
                metrics += rows
            }
            summary += CSV.line(SummaryCSV.row(axisValues: run.axisValues, outcome: outcome, evalMetrics: evalMetrics, validation: validation))
        }
        try AtomicFile.write(metrics, to: layout.metricsFile)
        // compare.csv pairs the runs of the summary it was computed from; a changed summary (runs
        // added or redone) makes it stale, and only `lorabench compare` knows its baseline to redo it.
        if FileManager.default.contents(atPath: layout.summaryFile) != Data(summary.utf8) {
            for file in [layout.compareFile, layout.rankComparisonFile, layout.stepsToFile, layout.stepsToRunsFile] { try FileSystem.remove(file) }
        }
        try AtomicFile.write(summary, to: layout.summaryFile)

        let results = try ExperimentResults(name: manifest.experiment, summary: CSVTable(data: Data(summary.utf8), path: layout.summaryFile))
        var selected: SelectedSettings?
        if let selection = manifest.selection {
            let cellAxes = Selection.cellAxes(results.axisNames, over: selection.over)
            let choices = Selection.choose(Selection.validationResults(results.runs, cellAxes: cellAxes, column: selection.column),
                                           higherIsBetter: selection.metric.higherIsBetter)
            let settings = SelectedSettings(choices: choices, cellAxes: cellAxes, settings: selection)
            try AtomicFile.write(settings.text, to: layout.selectionFile)
            selected = settings
        }
        try AtomicFile.write(CellTable(results: results, selection: selected).text, to: layout.cellsFile)
    }
}
