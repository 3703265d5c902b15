import ArgumentParser
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
import LoRABenchExperiments
import LoRABenchPlotting
import LoRABenchReport
import LoRABenchAnalysis
import LoRABenchBench

/// `lorabench run MANIFEST`: trains every run of a manifest's sweep into results/<experiment>.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a manifest's sweep (variants × ranks × seeds × …) and write tidy CSV results.",
        discussion: """
        Writes results/<experiment>/ (or --out): runs/<run-id>/{settings.yaml,metrics.csv,adapter.safetensors,outcome.json}, \
        and metrics.csv and summary.csv over all finished runs. The schema and outputs are documented in Experiments/README.md.
        """
    )

    @Argument(help: "The experiment manifest (YAML).")
    var manifest: String

    @Option(help: "The results directory of this experiment (default: results/<experiment>).")
    var out: String?

    @Flag(help: "Continue a sweep: skip finished runs, redo unfinished ones.")
    var resume = false

    @Option(help: "Runs trained at once, each in its own worker process (at most cores / the manifest's blas_threads).")
    var jobs = 1

    @Flag(help: "List the runs (and which have finished) without training; with --slurm, print the job script and submit nothing.")
    var dryRun = false

    @OptionGroup(title: "On a Slurm cluster")
    var slurm: SlurmArguments

    /// A worker's job: train this one run in this process (used by --jobs and by Slurm's array tasks).
    @Option(help: .hidden)
    var only: String?

    /// A worker's run stops at this step, a rung of successive halving, checkpointed there.
    @Option(help: .hidden)
    var pauseAt: Int?

    /// The worker is a Slurm array task: it checkpoints and exits 75 on SIGUSR1.
    @Flag(help: .hidden)
    var slurmTask = false

    /// `blas_threads` when the manifest does not set it (a Slurm task's CPUs).
    @Option(help: .hidden)
    var defaultBlasThreads = 1

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        try slurm.validate()
        if slurm.slurm, jobs != 1 { throw ValidationError("--jobs is for this machine; with --slurm, --max-parallel caps the tasks running at once") }
        if pauseAt != nil, only == nil || slurmTask { throw ValidationError("--pause-at is a worker's option: it needs --only and no --slurm-task") }
    }

    func run() throws {
        if slurm.slurm {
            try submitToSlurm()
            return
        }
        let runner = ExperimentRunner(manifest: try Manifest.load(path: manifest, defaultBLASThreads: defaultBlasThreads), outputDirectory: out)
        if let only, slurmTask {
            try runSlurmTask(only, runner: runner)
            return
        }
        if let only {
            _ = try runner.execute(runID: only, pausingAt: pauseAt, progress: WorkerReporter().handle)
            return
        }
        if dryRun {
            print(try runner.planTable())
            return
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let threads = runner.manifest.training.blasThreads
        let workers = min(jobs, SweepOptions.maximumJobs(blasThreads: threads, cores: cores))
        if workers < jobs {
            standardError("note: --jobs \(jobs) lowered to \(workers): \(cores) cores / blas_threads \(threads)\n")
        }
        let options = SweepOptions(resume: resume, jobs: workers, workerExecutable: Self.executablePath)
        let progress: ProgressSink = isatty(STDERR_FILENO) != 0
            ? TerminalProgress(write: standardError) : PlainProgress(write: { standardError($0 + "\n") })
        let outcomes = try runner.run(options: options, progress: progress)
        // Only successive halving stops runs: other sweeps do not mention the status.
        let counts = RunOutcome.Status.allCases.filter { $0 != .stopped || runner.manifest.selection?.halving != nil }
            .map { status in "\(outcomes.filter { $0.status == status }.count) \(status.rawValue)" }
        print("\(outcomes.count) runs finished (\(counts.joined(separator: ", "))); results in \(runner.layout.root)/")
        print("  \(runner.layout.summaryFile)\n  \(runner.layout.metricsFile)")
        let failed = outcomes.filter { $0.status == .failed }
        guard failed.isEmpty else {
            throw CommandError("\(failed.count) run(s) failed:\n" + failed.map { "  \($0.runID): \($0.reason)" }.joined(separator: "\n")
                               + "\nfix the cause and redo them with: lorabench run \(manifest) --resume" + (out.map { " --out \($0)" } ?? ""))
        }
    }

    private func submitToSlurm() throws {
        let submission = try SlurmSweep.submit(manifestPath: manifest, outputDirectory: out, request: slurm.request, resume: resume,
                                               dryRun: dryRun, executable: Self.executablePath ?? "lorabench", cluster: SlurmCluster())
        let root = submission.root
        if dryRun {
            for array in submission.arrays {
                // Several scripts are told apart as `head` does it.
                if submission.arrays.count > 1 { print("==> \(array.scriptFile) <==") }
                print(array.script, terminator: "")
            }
            return
        }
        let submitted = submission.arrays.filter { $0.jobID != nil }
        guard !submitted.isEmpty else {
            print("nothing to submit: every run of \(root) has finished or is in the queue (lorabench status \(root))")
            return
        }
        if submitted.count > 1 {
            print("\(submission.runs.count) runs are more than this cluster's MaxArraySize (\(submission.maxArraySize)) allows in one array: "
                  + "submitted \(submitted.count) job arrays" + (slurm.maxParallel == nil ? "" : ", each starting once the one before has ended (--max-parallel)"))
        }
        for array in submitted {
            print("submitted job \(array.jobID ?? ""): \(array.runs.count) array task(s), script \(array.scriptFile)")
        }
        print("follow it with: lorabench status \(root); when it is done: lorabench collect \(root)")
    }

    /// One array task: its run, checkpointing and exiting 75 on Slurm's warning signal.
    private func runSlurmTask(_ id: String, runner: ExperimentRunner) throws {
        // Each line goes into the task's log as it happens, not through print's buffer (a full
        // block when standard output is a file), which reaches the log only when the process exits
        // normally: a task killed (time limit, preemption, scancel) would lose every line, and the
        // resume line would be missing from the log until the run had ended.
        let log = { (line: String) in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        let sink = CheckpointOnSignal(wrapping: PlainProgress(write: log))
        do {
            let outcome = try runner.execute(runID: id, progress: sink.handle)
            log("\(id): \(outcome.status.rawValue)" + (outcome.reason.isEmpty ? "" : ": \(outcome.reason)"))
        } catch let interrupted as RunInterrupted {
            let step = interrupted.checkpointStep.map { " at step \($0)" } ?? ""
            log("\(id): checkpointed\(step) on the warning signal; the requeued task continues it")
            throw ExitCode(SlurmScript.checkpointedStatus)
        }
    }

    /// This executable, for worker processes: /proc/self/exe where there is one.
    static var executablePath: String? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return Bundle.main.executablePath
    }
}

func standardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// `run --slurm` and what it asks Slurm for.
struct SlurmArguments: ParsableArguments {
    @Flag(help: "Submit the sweep as a Slurm job array (one task per run) instead of training here.")
    var slurm = false

    @Option(help: "The partition to submit to.")
    var partition: String?

    @Option(help: "Each task's time limit, as sbatch takes it (e.g. 2:00:00).")
    var time: String?

    @Option(help: "CPUs per task; also each run's BLAS threads unless the manifest sets blas_threads.")
    var cpusPerTask: Int?

    @Option(help: "Memory per task, as sbatch takes it (e.g. 4G).")
    var mem: String?

    @Option(help: "At most this many tasks at once (--array=...%K).")
    var maxParallel: Int?

    @Option(help: ArgumentHelp("A further sbatch option, repeatable; write it with '=' (--sbatch-arg=--qos=low).", valueName: "arg"))
    var sbatchArg: [String] = []

    func validate() throws {
        let given = [partition, time, cpusPerTask.map(String.init), mem, maxParallel.map(String.init)].contains { $0 != nil } || !sbatchArg.isEmpty
        if given, !slurm { throw ValidationError("--partition, --time, --cpus-per-task, --mem, --max-parallel and --sbatch-arg need --slurm") }
        do {
            try request.validate()
        } catch let error as SlurmInputError {
            throw ValidationError(error.description)
        }
    }

    var request: SlurmRequest {
        SlurmRequest(partition: partition, time: time, cpusPerTask: cpusPerTask, memory: mem, maxParallel: maxParallel, extraArguments: sbatchArg)
    }
}

extension BaseWeightFormat: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }

    public static var allValueStrings: [String] { ["fp32", "nf4", "gguf"] }
}
