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

/// What a sweep reports as it goes. The runner emits events; sinks decide how to show them
/// (a live line on a terminal, plain lines in a log, machine lines from a worker).
public enum ProgressEvent: Sendable {
    /// `finished` runs were already done (resume); `stepsPerRun` is the training length.
    case sweepStarted(runs: Int, finished: Int, stepsPerRun: Int)
    case runStarted(id: String)
    /// The run continues from its checkpoint at `step` (after a kill), not from step 0.
    case runResumed(id: String, step: Int)
    /// The run's checkpoint at `step` does not load (`reason`): the one before it is tried, and
    /// without one the run starts again from step 0.
    case checkpointSkipped(id: String, step: Int, reason: String)
    case step(id: String, step: Int, steps: Int, loss: Float)
    /// The run reached a rung of successive halving at `step` and waits there, checkpointed, for
    /// the rung's ranking of its learning rate.
    case runPaused(id: String, step: Int)
    case runFinished(id: String, outcome: RunOutcome)
    case sweepFinished
}

/// A sink's answer to an event: go on, or stop the current run (it is then left unfinished).
public enum ProgressAnswer: Sendable {
    case more, stop
    /// Stop after saving a checkpoint at the current step, so that the run continues from it
    /// (a cluster's warning before its time limit or a preemption).
    case checkpointAndStop
}

public protocol ProgressSink: AnyObject {
    func handle(_ event: ProgressEvent) -> ProgressAnswer
}

/// Counts what is done and estimates what is left, from the steps this process has run.
package struct SweepClock {
    package var runs = 0
    package var done = 0
    package var stepsPerRun = 0
    /// Steps taken per run currently training.
    package var active: [String: (step: Int, loss: Float)] = [:]
    package var latest: String?
    private var executedSteps = 0
    private var start = Date()

    package mutating func apply(_ event: ProgressEvent) {
        switch event {
        case let .sweepStarted(runs, finished, stepsPerRun):
            self.runs = runs
            self.stepsPerRun = stepsPerRun
            done = finished
            executedSteps = 0
            start = Date()
        case let .runStarted(id):
            active[id] = (0, .nan)
        case let .runResumed(id, step):
            active[id] = (step, .nan)
        case let .step(id, step, _, loss):
            executedSteps += step - (active[id]?.step ?? 0)
            active[id] = (step, loss)
            latest = id
        case let .runPaused(id, _):
            active[id] = nil
        case let .runFinished(id, _):
            active[id] = nil
            done += 1
        case .sweepFinished, .checkpointSkipped:
            break
        }
    }

    package var elapsed: TimeInterval { Date().timeIntervalSince(start) }

    /// Seconds left at the rate measured so far; nil before the first step.
    package var eta: TimeInterval? {
        guard executedSteps > 0 else { return nil }
        let remaining = (runs - done) * stepsPerRun - active.values.reduce(0) { $0 + $1.step }
        return elapsed / Double(executedSteps) * Double(max(0, remaining))
    }
}

/// `1h02m`, `3m05s`, `12s`.
package func formatDuration(_ seconds: TimeInterval) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, s % 3600 / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}

/// One line per finished run (and one at the start), for logs and pipes.
public final class PlainProgress: ProgressSink {
    private var clock = SweepClock()
    private let write: (String) -> Void

    public init(write: @escaping (String) -> Void) { self.write = write }

    public func handle(_ event: ProgressEvent) -> ProgressAnswer {
        clock.apply(event)
        switch event {
        case let .sweepStarted(runs, finished, steps):
            write("sweep: \(runs) runs of \(steps) steps" + (finished > 0 ? ", \(finished) already finished" : ""))
        case let .runResumed(id, step):
            write("\(id): resuming from the checkpoint at step \(step)")
        case let .checkpointSkipped(id, step, reason):
            write(skippedCheckpointLine(id: id, step: step, reason: reason))
        case let .runPaused(id, step):
            write("\(id): reached the rung at step \(step); it waits for the ranking of its cell's learning rates there")
        case let .runFinished(id, outcome):
            let eta = clock.eta.map { ", ETA \(formatDuration($0))" } ?? ""
            write("[\(clock.done)/\(clock.runs)] \(id): \(describe(outcome))\(eta)")
        case .sweepFinished:
            write("sweep finished in \(formatDuration(clock.elapsed))")
        case .runStarted, .step:
            break
        }
        return .more
    }
}

/// A single live line on a terminal, redrawn at most ten times a second: runs done/total, the
/// run that last moved, its step and loss, and the ETA. Finished runs that did not complete
/// get a line of their own so they stay visible.
public final class TerminalProgress: ProgressSink {
    private var clock = SweepClock()
    private var lastDraw = Date.distantPast
    private let write: (String) -> Void

    /// `write` receives raw text (with carriage returns), e.g. to standard error.
    public init(write: @escaping (String) -> Void) { self.write = write }

    public func handle(_ event: ProgressEvent) -> ProgressAnswer {
        clock.apply(event)
        switch event {
        case .step:
            if Date().timeIntervalSince(lastDraw) >= 0.1 { draw() }
        case let .runFinished(id, outcome):
            if outcome.status != .completed { write("\r\u{1B}[2K[\(clock.done)/\(clock.runs)] \(id): \(describe(outcome))\n") }
            draw()
        case .sweepFinished:
            write("\r\u{1B}[2Kruns \(clock.done)/\(clock.runs) done in \(formatDuration(clock.elapsed))\n")
        case .sweepStarted, .runStarted, .runResumed, .runPaused:
            draw()
        case let .checkpointSkipped(id, step, reason):
            write("\r\u{1B}[2K" + skippedCheckpointLine(id: id, step: step, reason: reason) + "\n")
            draw()
        }
        return .more
    }

    private func draw() {
        lastDraw = Date()
        var line = "runs \(clock.done)/\(clock.runs)"
        if clock.active.count > 1 { line += " (\(clock.active.count) running)" }
        let shown = clock.latest.flatMap { clock.active[$0] == nil ? nil : $0 } ?? clock.active.keys.min()
        if let id = shown, let current = clock.active[id] {
            line += " · \(id) step \(current.step)/\(clock.stepsPerRun) loss \(String(format: "%.5g", current.loss))"
        }
        if let eta = clock.eta { line += " · ETA \(formatDuration(eta))" }
        write("\r\u{1B}[2K" + line)
    }
}

/// Both sinks' line for `.checkpointSkipped`.
package func skippedCheckpointLine(id: String, step: Int, reason: String) -> String {
    "\(id): the checkpoint at step \(step) cannot be used (\(reason)); falling back to the one before it, or to step 0"
}

/// `completed: 600 steps in 1.2s, eval loss 0.00312` or `diverged: loss is nan at step 12`.
package func describe(_ outcome: RunOutcome) -> String {
    switch outcome.status {
    case .completed:
        let loss = outcome.finalEval["loss"].map { ", eval loss \(String(format: "%.5g", $0))" } ?? ""
        return "completed \(outcome.stepsCompleted) steps in \(String(format: "%.1f", outcome.wallSeconds))s\(loss)"
    case .diverged, .failed, .stopped:
        return "\(outcome.status.rawValue): \(outcome.reason)"
    }
}
