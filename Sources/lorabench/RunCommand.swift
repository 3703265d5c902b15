import ArgumentParser
import Foundation
import LoRABenchKernels
import LoRABenchTensorIO
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

    @Flag(help: "List the runs (and which have finished) without training.")
    var dryRun = false

    /// A worker's job: train this one run in this process (used by --jobs).
    @Option(help: .hidden)
    var only: String?

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        let runner = ExperimentRunner(manifest: try Manifest.load(path: manifest), outputDirectory: out)
        if let only {
            _ = try runner.execute(runID: only, progress: WorkerReporter().handle)
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
        let counts = RunOutcome.Status.allCases.map { status in "\(outcomes.filter { $0.status == status }.count) \(status.rawValue)" }
        print("\(outcomes.count) runs finished (\(counts.joined(separator: ", "))); results in \(runner.layout.root)/")
        print("  \(runner.layout.summaryFile)\n  \(runner.layout.metricsFile)")
        let failed = outcomes.filter { $0.status == .failed }
        guard failed.isEmpty else {
            throw CommandError("\(failed.count) run(s) failed:\n" + failed.map { "  \($0.runID): \($0.reason)" }.joined(separator: "\n")
                               + "\nfix the cause and redo them with: lorabench run \(manifest) --resume" + (out.map { " --out \($0)" } ?? ""))
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
