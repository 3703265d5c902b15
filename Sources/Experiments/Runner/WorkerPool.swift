import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif
import LoRABenchKernels
import LoRABenchTensorIO
import LoRABenchResults
import LoRABenchAdapters
import LoRABenchTraining
import LoRABenchVariants
import LoRABenchModels
import LoRABenchData
import LoRABenchInterop

/// Trains runs in worker processes of the same executable —
/// `lorabench run MANIFEST --out DIR --only RUN_ID` — so that concurrent runs share no state
/// (each has its own BLAS thread pool and allocator) and a crash fails one run, not the sweep.
/// A worker trains exactly as `--jobs 1` would, with the manifest's `blas_threads`, so the
/// numbers are the same.
package struct WorkerPool {
    /// One run to train: to the end, or to `pauseStep`, a rung of successive halving.
    package struct Job: Sendable {
        package var id: String
        package var pauseStep: Int?
    }

    package let executable: String
    package let manifestPath: String
    package let outputDirectory: String

    /// Runs `jobs` with at most `workers` workers alive; `finished` is called after each run that
    /// finishes (not after one that pauses at a rung). Both callbacks are called from the pool's
    /// threads, so they must serialise what they touch (the runner holds its lock in both).
    package func run(_ jobs: [Job], workers: Int, layout: ResultsLayout, progress: @escaping (ProgressEvent) -> ProgressAnswer,
             finished: @escaping (String) throws -> Void) throws {
        nonisolated(unsafe) let progress = progress, finished = finished
        let queue = RunQueue(jobs)
        let group = DispatchGroup()
        for _ in 0..<min(workers, jobs.count) {
            DispatchQueue.global().async(group: group) {
                while let job = queue.take() {
                    let id = job.id
                    do {
                        _ = progress(.runStarted(id: id))
                        switch try runWorker(job, layout: layout, progress: progress) {
                        case let .finished(outcome):
                            try finished(id)
                            _ = progress(.runFinished(id: id, outcome: outcome))
                        case let .paused(step):
                            _ = progress(.runPaused(id: id, step: step))
                        }
                    } catch {
                        queue.fail(error)
                    }
                }
            }
        }
        group.wait()
        if let error = queue.firstError { throw error }
    }

    /// One worker process. Its progress lines become events; a worker asked to pause that exits
    /// normally without an outcome has paused at its rung; if it dies without writing an
    /// outcome, a `failed` outcome with its exit status and last error line is written here.
    private func runWorker(_ job: Job, layout: ResultsLayout, progress: (ProgressEvent) -> ProgressAnswer) throws -> RunEnd {
        let id = job.id
        let pause = job.pauseStep.map { ["--pause-at", String($0)] } ?? []
        let worker = try ChildProcess(executable, ["run", manifestPath, "--out", outputDirectory, "--only", id] + pause)
        let result = worker.wait { line in
            if let event = WorkerReporter.parse(String(line)) { _ = progress(event) }
        }
        if let outcome = try layout.outcome(of: id) { return .finished(outcome) }
        if let step = job.pauseStep, result.termination == .exited(0) { return .paused(step: step) }

        let lastLine = result.errors.split(separator: "\n").last.map { ": \($0)" } ?? ""
        let outcome = RunOutcome(runID: id, status: .failed, reason: "worker \(result.termination)\(lastLine)",
                                 stepsCompleted: 0, finalEval: [:], bestEval: [:], finalTrainLoss: nil, finalRanks: [:],
                                 trainableParameters: 0, totalParameters: 0, wallSeconds: 0, stepsPerSecond: 0, blasThreads: 0)
        try AtomicFile.write(outcome.encoded(), to: layout.outcomeFile(id))
        return .finished(outcome)
    }
}

/// The runs not yet started, handed out one at a time; after an error no new run starts.
private final class RunQueue: @unchecked Sendable {
    private let lock = NSLock()
    private let jobs: [WorkerPool.Job]
    private var next = 0
    private var error: Error?

    package init(_ jobs: [WorkerPool.Job]) { self.jobs = jobs }

    package func take() -> WorkerPool.Job? {
        lock.withLock {
            guard error == nil, next < jobs.count else { return nil }
            defer { next += 1 }
            return jobs[next]
        }
    }

    package func fail(_ error: Error) { lock.withLock { self.error = self.error ?? error } }

    package var firstError: Error? { lock.withLock { error } }
}

/// A worker's side of the pool: progress as `step<TAB>id<TAB>step<TAB>steps<TAB>loss` lines on
/// standard output (at most ten a second) and a `resumed<TAB>id<TAB>step` line when the run
/// continues from a checkpoint (`skipped<TAB>id<TAB>step<TAB>reason` for one that does not load), and a stop when the parent has died, so that an
/// orphaned worker never races a resumed sweep for its run folder.
public final class WorkerReporter: ProgressSink {
    private let parent = getppid()
    private var lastLine = Date.distantPast

    public init() {}

    public func handle(_ event: ProgressEvent) -> ProgressAnswer {
        guard getppid() == parent else { return .stop }
        switch event {
        case let .step(id, step, steps, loss) where step == steps || Date().timeIntervalSince(lastLine) >= 0.1:
            lastLine = Date()
            FileHandle.standardOutput.write(Data("step\t\(id)\t\(step)\t\(steps)\t\(loss)\n".utf8))
        case let .runResumed(id, step):
            FileHandle.standardOutput.write(Data("resumed\t\(id)\t\(step)\n".utf8))
        case let .checkpointSkipped(id, step, reason):
            FileHandle.standardOutput.write(Data("skipped\t\(id)\t\(step)\t\(TSV.field(reason))\n".utf8))
        default:
            break
        }
        return .more
    }

    package static func parse(_ line: String) -> ProgressEvent? {
        let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
        if fields.count == 3, fields[0] == "resumed", let step = Int(fields[2]) { return .runResumed(id: String(fields[1]), step: step) }
        if fields.count == 4, fields[0] == "skipped", let step = Int(fields[2]) {
            return .checkpointSkipped(id: String(fields[1]), step: step, reason: String(fields[3]))
        }
        guard fields.count == 5, fields[0] == "step", let step = Int(fields[2]), let steps = Int(fields[3]),
              let loss = Float(fields[4]) else { return nil }
        return .step(id: String(fields[1]), step: step, steps: steps, loss: loss)
    }
}
