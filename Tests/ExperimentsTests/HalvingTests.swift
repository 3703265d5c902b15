import Foundation
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
import LoRABenchTestSupport
import Testing

/// Successive halving of a selection's learning rates (`selection.halving`): which candidate
/// stops at which rung, the records of it, resuming, the numbers of a continued run, and the
/// manifest's errors.
@Suite struct HalvingTests {
    /// Four learning rates × two seeds at ranks 2 and 4 (two cells), validation loss ranked at
    /// steps 20 and 40 of 60.
    static func yaml(halving: String = "{rungs: [20, 40, 60], keep: [2, 1]}", rates: String = "[1e-3, 3e-3, 1e-2, 3e-2]",
                     selection: Bool = true, saveEvery: Int = 0) -> String {
        ExperimentSupport.manifest(learningRate: rates, sweep: "  variants: [lora]\n  ranks: [2, 4]\n  seeds: [0, 1]")
            .replacingOccurrences(of: "  eval_size: 64\n", with: "  eval_size: 64\n  validation_examples: 64\n")
            .replacingOccurrences(of: "  log_interval: 10\n", with: "  log_interval: 10\n  save_every: \(saveEvery)\n")
            + (selection ? "selection: {metric: loss, halving: \(halving)}\n" : "")
    }

    /// (rank, learning rate as its column writes it) → the runs' validation loss at `step`, from
    /// the experiment's metrics.csv.
    static func validationLoss(_ table: CSVTable, at step: Int) throws -> [[String]: [Double]] {
        let (rank, rate, stepColumn) = (try table.column("rank"), try table.column("learning_rate"), try table.column("step"))
        let (split, metric, value) = (try table.column("split"), try table.column("metric"), try table.column("value"))
        var values: [[String]: [Double]] = [:]
        for (_, fields) in table.records where fields[stepColumn] == String(step) && fields[split] == "validation" && fields[metric] == "loss" {
            values[[fields[rank], fields[rate]], default: []].append(Double(fields[value])!)
        }
        return values
    }

    static func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }

    /// Each cell's two best rates by mean validation loss at step 20 (metrics.csv) reach step 40,
    /// the better of those two the end; the others' runs are `stopped` at their rung, with rows up
    /// to it, and selection.csv names the rung and the mean there; only the survivor is reported.
    @Test func theHalvingOrderFollowsTheRungMeansOfMetricsCSV() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: Self.yaml(), file: "m.yaml")
        let outcomes = try ExperimentSupport.run(manifest, into: directory)
        let layout = ResultsLayout(root: "\(directory)/results")
        let metrics = try CSVTable(contentsOf: layout.metricsFile, producer: "test")
        let (atFirst, atSecond) = (try Self.validationLoss(metrics, at: 20), try Self.validationLoss(metrics, at: 40))
        let rates = ["0.001", "0.003", "0.01", "0.03"]
        let selected = try #require(try SelectedSettings.load(resultsDirectory: layout.root))
        #expect(selected.isHalving)
        for rank in ["2", "4"] {
            let firstOrder = rates.sorted { Self.mean(atFirst[[rank, $0]]!) < Self.mean(atFirst[[rank, $1]]!) }
            #expect(rates.allSatisfy { atFirst[[rank, $0]]!.count == 2 }, "every candidate's seeds reach the first rung")
            let survivors = Array(firstOrder.prefix(2))
            #expect(Set(atSecond.keys.filter { $0[0] == rank }.map { $0[1] }) == Set(survivors), "only the best two reach step 40")
            let secondOrder = survivors.sorted { Self.mean(atSecond[[rank, $0]]!) < Self.mean(atSecond[[rank, $1]]!) }
            let winner = secondOrder[0]

            for run in manifest.runs where String(run.rank) == rank {
                let rate = formatNumber(run.learningRate)
                let outcome = try #require(outcomes.first { $0.runID == run.id })
                let expected: (RunOutcome.Status, Int) = rate == winner ? (.completed, 60) : survivors.contains(rate) ? (.stopped, 40) : (.stopped, 20)
                #expect(outcome.status == expected.0 && outcome.stepsCompleted == expected.1, "\(run.id) at \(rate)")
                if outcome.status == .stopped {
                    #expect(outcome.reason.hasPrefix("successive halving stopped it at rung \(expected.1 / 20) (step \(expected.1)): learning rate \(rate) ranked "))
                    #expect(outcome.finalEval.isEmpty && outcome.finalValidation?["loss"] != nil)
                    let rows = try ExperimentSupport.records(layout.runMetricsFile(run.id)).dropFirst()
                    #expect(rows.map { Int($0[1])! }.max() == expected.1, "a stopped run's rows end at its rung")
                }
            }
            let cell = ["lora", rank, "2r", "kaiming", "fc1+fc2", "0", "false"]
            #expect(selected.chosen[cell] == winner)
            for row in selected.rows where row.cell == cell {
                let stoppedAt: Int? = row.candidate == winner ? nil : survivors.contains(row.candidate) ? 40 : 20
                #expect(row.stoppedAtStep == stoppedAt && row.stoppedAtRung == stoppedAt.map { $0 / 20 }, "\(row.candidate)")
                if let stoppedAt {
                    let expectedMean = Self.mean((stoppedAt == 20 ? atFirst : atSecond)[[rank, row.candidate]]!)
                    #expect(row.stoppedRuns == 2 && abs(row.stoppedMean! - expectedMean) <= 1e-12 * abs(expectedMean))
                    #expect(row.completed == 0 && row.mean == nil)
                } else {
                    #expect(row.completed == 2 && row.stoppedRuns == 0 && row.stoppedMean == nil)
                }
            }
        }
        let table = try CSVTable(contentsOf: layout.selectionFile, producer: "test")
        #expect(Array(table.header.suffix(12)) == SelectedSettings.fixedColumns + SelectedSettings.halvingColumns)

        // Stopped runs are neither failed nor diverged, and only the chosen rate's runs are reported.
        let cells = try CSVTable(contentsOf: layout.cellsFile, producer: "test")
        let (runs, diverged, failed) = (try cells.column("runs"), try cells.column("diverged"), try cells.column("failed"))
        #expect(cells.records.allSatisfy { $0.fields[runs] == "2" && $0.fields[diverged] == "0" && $0.fields[failed] == "0" })
        let summary = try ExperimentResults.load(directory: layout.root)
        #expect(summary.runs.filter { $0.status == .stopped }.count == 12 && summary.runs.filter { $0.status == .completed }.count == 4)
    }

    /// A survivor continued from its rung checkpoints ends with the rows, outcome and adapter of
    /// the same run trained straight through (the same settings: the same run id); a stopped
    /// run's rows are the straight run's up to its rung.
    @Test func aContinuedRunEndsWithTheNumbersOfARunTrainedStraightThrough() throws {
        let halved = try ExperimentSupport.temporaryDirectory(), plain = try ExperimentSupport.temporaryDirectory()
        defer { for directory in [halved, plain] { try? FileManager.default.removeItem(atPath: directory) } }
        let halving = try Manifest(yaml: Self.yaml(), file: "m.yaml")
        let straight = try Manifest(yaml: Self.yaml(selection: false), file: "m.yaml")
        #expect(halving.runs.map(\.id) == straight.runs.map(\.id), "the selection is not part of a run's settings")
        let outcomes = try ExperimentSupport.run(halving, into: halved)
        try ExperimentSupport.run(straight, into: plain)
        let a = ResultsLayout(root: "\(halved)/results"), b = ResultsLayout(root: "\(plain)/results")
        for outcome in outcomes {
            let id = outcome.runID
            let rows = try ExperimentSupport.records(a.runMetricsFile(id)), straightRows = try ExperimentSupport.records(b.runMetricsFile(id))
            if outcome.status == .completed {
                #expect(rows == straightRows, "\(id): the continued run's rows differ")
                let whole = try #require(try b.outcome(of: id))
                #expect(outcome.finalEval == whole.finalEval && outcome.finalValidation == whole.finalValidation && outcome.bestEval == whole.bestEval)
                #expect(FileManager.default.contents(atPath: a.adapterFile(id)) == FileManager.default.contents(atPath: b.adapterFile(id)))
                #expect(a.checkpointSteps(id) == [20, 40], "paused at both rungs")
            } else {
                #expect(outcome.status == .stopped)
                #expect(rows == [straightRows[0]] + straightRows.dropFirst().filter { Int($0[1])! <= outcome.stepsCompleted })
                #expect(!FileManager.default.fileExists(atPath: a.adapterFile(id)), "a stopped run's adapter is its rung checkpoint's")
            }
        }
    }

    /// Stopped mid-way through the second stage, the sweep resumes to the files of an
    /// uninterrupted one, and no run that had reached the first rung trains up to it again.
    @Test func aStoppedHalvingSweepResumesWithoutRetrainingPastRungs() throws {
        let whole = try ExperimentSupport.temporaryDirectory(), stopped = try ExperimentSupport.temporaryDirectory()
        defer { for directory in [whole, stopped] { try? FileManager.default.removeItem(atPath: directory) } }
        let manifest = try Manifest(yaml: Self.yaml(), file: "m.yaml")
        try ExperimentSupport.run(manifest, into: whole)

        // Stops the first run that reaches step 30 (a survivor on its way to rung 2) once.
        let stopper = StopOnceAtStep(30)
        let runner = ExperimentRunner(manifest: manifest, outputDirectory: "\(stopped)/results")
        #expect(throws: RunInterrupted.self) { _ = try runner.run(options: SweepOptions(), progress: stopper) }
        #expect(stopper.stopped.count == 1)
        let layout = ResultsLayout(root: "\(stopped)/results")
        #expect(manifest.runs.allSatisfy { FileManager.default.fileExists(atPath: layout.rungOutcomeFile($0.id, step: 20)) },
                "every run reached the first rung before the second stage began")

        let recorder = StepRecorder()
        _ = try ExperimentRunner(manifest: manifest, outputDirectory: "\(stopped)/results").run(options: SweepOptions(resume: true), progress: recorder)
        #expect(recorder.firstStep.values.allSatisfy { $0 > 20 }, "a run trained to the first rung again: \(recorder.firstStep)")
        #expect(recorder.resumedAt[stopper.stopped.first!] == 20, "the stopped run continues from its rung checkpoint")

        let a = ResultsLayout(root: "\(whole)/results")
        #expect(try ExperimentSupport.records(a.metricsFile) == ExperimentSupport.records(layout.metricsFile))
        #expect(try ExperimentSupport.summaryWithoutTiming(a.summaryFile) == ExperimentSupport.summaryWithoutTiming(layout.summaryFile))
        #expect(FileManager.default.contents(atPath: a.selectionFile) == FileManager.default.contents(atPath: layout.selectionFile))

        // Resuming a finished halving sweep trains nothing.
        let idle = StepRecorder()
        _ = try ExperimentRunner(manifest: manifest, outputDirectory: "\(stopped)/results").run(options: SweepOptions(resume: true), progress: idle)
        #expect(idle.firstStep.isEmpty)
    }

    /// A run whose rung checkpoint is gone, or that trained past a rung where its rate now stops
    /// (the manifest changed), is never silently mixed in.
    @Test func aFolderTrainedWithOtherRungsIsRefused() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ExperimentSupport.run(try Manifest(yaml: Self.yaml(halving: "{rungs: [20, 60], keep: 3}"), file: "m.yaml"), into: directory)
        let narrower = try Manifest(yaml: Self.yaml(halving: "{rungs: [20, 60], keep: 1}"), file: "m.yaml")
        #expect {
            try ExperimentSupport.run(narrower, into: directory, resume: true)
        } throws: { error in
            guard case let SweepError.halvingContradicted(_, rung, step, _, manifest) = error else { return false }
            return rung == 1 && step == 20 && manifest == "m.yaml"
                && "\(error)".hasSuffix("selection.halving, the learning rates or the seeds have changed since; run the manifest into a new --out, or restore what it was")
        }
    }

    func message(_ halving: String, rates: String = "[1e-3, 3e-3, 1e-2, 3e-2]") -> String {
        do {
            _ = try Manifest(yaml: Self.yaml(halving: halving, rates: rates), file: "m.yaml")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func halvingErrorsNameTheKeyAndWhatIsAllowed() {
        let line = "m.yaml:22:"
        #expect(message("{rungs: [20, 40, 60], keep: [2, 1]}") == "no error")
        #expect(message("{rungs: [20, 60], keep: 2}") == "no error", "one rung before the last takes a count")
        #expect(message("{rungs: [20, 40, 60], keep: [3, 1]}") == "no error")
        #expect(message("{rungs: [20, 60], keep: 2, eta: 3}")
            == "\(line)63: selection.halving.eta: found an unknown key 'eta'; allowed: rungs, keep")
        #expect(message("{keep: 2}") == "\(line)27: selection.halving.rungs: found nothing (the required key 'rungs' is missing); "
            + "allowed: a list of at least two steps, strictly increasing, the last training.steps (60)")
        #expect(message("{rungs: [60], keep: 2}") == "\(line)44: selection.halving.rungs: found one rung; allowed: a list of at least two "
            + "steps, strictly increasing, the last training.steps (60): with one rung every candidate trains to the end")
        #expect(message("{rungs: [0, 60], keep: 2}") == "\(line)45: selection.halving.rungs[0]: found '0'; allowed: a step from 1 to training.steps (60)")
        #expect(message("{rungs: [40, 20, 60], keep: [2, 1]}")
            == "\(line)49: selection.halving.rungs[1]: found 20 after 40; allowed: steps strictly increasing")
        #expect(message("{rungs: [20, 40], keep: 2}") == "\(line)49: selection.halving.rungs[1]: found '40'; allowed: training.steps (60) "
            + "as the last rung: the survivors of the rung before it train to the end")
        #expect(message("{rungs: [30, 60], keep: 2}") == "\(line)45: selection.halving.rungs[0]: found '30'; allowed: a multiple of "
            + "training.eval_interval (20): a rung decides on the validation metric of the evaluation at its step")
        #expect(message("{rungs: [20, 60], keep: 4}") == "\(line)60: selection.halving.keep: found '4'; allowed: an integer from 1 to 3 "
            + "(fewer than the 4 learning rates of the largest cell)")
        #expect(message("{rungs: [20, 60], keep: 0}") == "\(line)60: selection.halving.keep: found '0'; allowed: an integer ≥ 1, fewer than "
            + "the 4 learning rates of the largest cell")
        #expect(message("{rungs: [20, 40, 60], keep: 2}") == "\(line)64: selection.halving.keep: found '2' for 2 rungs before the last; "
            + "allowed: a list of 2 integers, one per rung before the last, strictly decreasing, the first below the 4 learning rates of the largest cell")
        #expect(message("{rungs: [20, 40, 60], keep: [2]}") == "\(line)64: selection.halving.keep: found 1 count; allowed: a list of 2 "
            + "integers, one per rung before the last, strictly decreasing, the first below the 4 learning rates of the largest cell")
        #expect(message("{rungs: [20, 40, 60], keep: [2, 2]}") == "\(line)68: selection.halving.keep[1]: found '2'; allowed: an integer "
            + "from 1 to 1 (fewer than the 2 kept at the rung before)")
        #expect(message("{rungs: [20, 40, 60], keep: [1, 1]}") == "\(line)68: selection.halving.keep[1]: found '1'; allowed: no rung after "
            + "one that keeps 1: leave this rung out of rungs")
    }

    /// The rungs at which a cell ranks: a cell with fewer candidates skips the rungs that would cut none.
    @Test func aCellWithFewCandidatesRanksOnlyWhereItCuts() throws {
        let halving = try #require(try Manifest(yaml: Self.yaml(halving: "{rungs: [20, 40, 60], keep: [3, 1]}"), file: "m.yaml").selection?.halving)
        #expect(halving.decisionRungs(candidates: 4).map(\.rung) == [20, 40])
        #expect(halving.decisionRungs(candidates: 3).map(\.rung) == [40])
        #expect(halving.decisionRungs(candidates: 1).isEmpty)
        #expect(halving.rungNumber(ofStep: 40) == 2 && halving.rungNumber(ofStep: 30) == nil)
    }

    /// A worker's `--pause-at` must lie inside the training: it is a rung before the last step.
    @Test func aPauseOutsideTheTrainingIsRefused() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Manifest(yaml: Self.yaml(), file: "m.yaml")
        let runner = ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/results")
        for step in [0, 60] {
            #expect(throws: SweepError.pauseOutOfRange(step: step, steps: 60)) {
                _ = try runner.execute(runID: manifest.runs[0].id, pausingAt: step, progress: { _ in .more })
            }
        }
        #expect("\(SweepError.pauseOutOfRange(step: 60, steps: 60))" == "--pause-at: found 60; allowed: a step from 1 to 59, before training.steps (60)")
    }

    /// A Slurm job array starts every run at once, so it cannot wait at rungs: refused, naming where the block is.
    @Test func slurmRefusesHalving() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try ExperimentSupport.write(Self.yaml(), to: directory)
        #expect {
            _ = try SlurmSweep.submit(manifestPath: path, outputDirectory: "\(directory)/results", request: SlurmRequest(), resume: false,
                                      dryRun: true, executable: "/opt/lorabench", cluster: SlurmCluster())
        } throws: { error in
            "\(error)" == "--slurm: found a manifest with selection.halving (\(path):22:36); allowed: a sweep without successive halving: its "
                + "rungs wait for every run of a cell, which one job array per sweep cannot do; train it on one machine (`lorabench run "
                + "--jobs N`), or leave halving out of the selection"
        }
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/results"))
    }
}

/// The first step each run trains in a sweep, and where runs resumed.
final class StepRecorder: ProgressSink {
    private(set) var firstStep: [String: Int] = [:]
    private(set) var resumedAt: [String: Int] = [:]

    func handle(_ event: ProgressEvent) -> ProgressAnswer {
        switch event {
        case let .step(id, step, _, _) where firstStep[id] == nil: firstStep[id] = step
        case let .runResumed(id, step): resumedAt[id] = step
        default: break
        }
        return .more
    }
}
