import Foundation
import LoRABenchTensorIO
import LoRABenchResults

/// A sweep whose selection has `halving:` (Jamieson & Talwalkar 2016; Li et al. 2017): stage by
/// stage, every learning rate still in the running in a cell trains its seeds to the stage's
/// rung, pausing there with a checkpoint; the rung ranks the cell's candidates by mean
/// validation metric over seeds (`Selection.rank`, as the final choice does: a candidate that
/// lost seeds ranks below every one that lost fewer), the best `keep` continue from their
/// checkpoints to the next rung, and the others' runs are recorded `stopped`. The survivors of
/// the last rung before `training.steps` train to the end and the ordinary selection chooses
/// among them.
///
/// Nothing is decided from memory: every ranking is recomputed from the run folders (each run's
/// metrics.csv holds its validation metric at the rung), so a killed sweep resumes to the same
/// decisions, and a run that reached a rung is never trained to it again. A run continued from
/// its rung's checkpoint ends with the numbers of one trained straight through, because a
/// checkpoint holds everything training carries from step to step (`TrainingState`).
///
/// A cell whose runs did not all reach a rung (a failed run, which `--resume` redoes) is not
/// ranked there, and its candidates wait at that rung until the sweep is resumed.
struct SuccessiveHalving {
    let runner: ExperimentRunner
    let settings: HalvingSettings
    /// The selection's metric, on the validation split.
    let metric: EvalMetric

    /// The runs of one cell (every axis but the seed and the learning rate), by learning rate.
    struct Cell {
        struct Candidate {
            /// As the `learning_rate` column writes it.
            var learningRate: String
            /// Its runs, one per seed, in grid order.
            var runs: [RunSpec]
        }

        var candidates: [Candidate]
        /// The rungs at which this cell ranks its candidates, and how many continue from each.
        var decisions: [(rung: Int, keep: Int)]
    }

    /// A run as a rung sees it: reached, with its validation metric there (nil: it diverged
    /// before, a seed its learning rate lost), or not yet.
    enum RungEntry {
        case reached(Double?)
        case notReached
    }

    private var layout: ResultsLayout { runner.layout }

    /// The cells of the manifest's runs, in grid order.
    static func cells(of manifest: Manifest, settings: HalvingSettings) -> [Cell] {
        let columns = manifest.axisColumns
        var order: [[String]] = []
        var candidatesByCell: [[String]: [Cell.Candidate]] = [:]
        for run in manifest.runs {
            let key = zip(columns, run.axisValues).filter { !["run_id", "seed", "learning_rate"].contains($0.0) }.map(\.1)
            let rate = formatNumber(run.learningRate)
            if candidatesByCell[key] == nil { order.append(key) }
            if let index = candidatesByCell[key]?.firstIndex(where: { $0.learningRate == rate }) {
                candidatesByCell[key]![index].runs.append(run)
            } else {
                candidatesByCell[key, default: []].append(Cell.Candidate(learningRate: rate, runs: [run]))
            }
        }
        return order.map { key in
            let candidates = candidatesByCell[key]!
            return Cell(candidates: candidates, decisions: settings.decisionRungs(candidates: candidates.count))
        }
    }

    func run(options: SweepOptions, report: @escaping (ProgressEvent) -> ProgressAnswer) throws {
        let cells = Self.cells(of: runner.manifest, settings: settings)
        var alive = cells.map { Array($0.candidates.indices) }
        var waiting = Set<Int>()  // cells that cannot rank at a rung in this sweep
        for rung in settings.rungs {
            let pause: Int? = rung < runner.manifest.training.steps ? rung : nil
            var jobs: [WorkerPool.Job] = []
            for (index, cell) in cells.enumerated() where !waiting.contains(index) {
                // A cell ranks only at its own rungs; its runs train through the others without pausing.
                guard pause == nil || cell.decisions.contains(where: { $0.rung == rung }) else { continue }
                for candidate in alive[index] {
                    for run in cell.candidates[candidate].runs where try needsTraining(run, pausingAt: pause) {
                        jobs.append(WorkerPool.Job(id: run.id, pauseStep: pause))
                    }
                }
            }
            try runner.train(jobs, options: options, report: report)
            guard pause != nil else { break }
            for (index, cell) in cells.enumerated() where !waiting.contains(index) {
                guard let keep = cell.decisions.first(where: { $0.rung == rung })?.keep else { continue }
                let entries = try alive[index].map { candidate in try cell.candidates[candidate].runs.map { try entry(of: $0, at: rung) } }
                var values: [[Double?]] = []
                for runs in entries {
                    var seeds: [Double?] = []
                    for case let .reached(value) in runs { seeds.append(value) }
                    values.append(seeds)
                }
                guard zip(values, entries).allSatisfy({ $0.count == $1.count }) else {
                    waiting.insert(index)
                    continue
                }
                let order = Selection.rank(values, higherIsBetter: metric.higherIsBetter)
                for (place, position) in order.enumerated() where place >= keep {
                    let candidate = cell.candidates[alive[index][position]]
                    let reached = values[position].compactMap { $0 }
                    let mean = reached.isEmpty ? "no value (every seed diverged before it)"
                        : "mean validation \(metric.name) \(formatNumber(reached.reduce(0, +) / Double(reached.count))) over \(reached.count) seed(s)"
                    let reason = "successive halving stopped it at rung \(settings.rungNumber(ofStep: rung)!) (step \(rung)): learning rate "
                        + "\(candidate.learningRate) ranked \(place + 1) of \(order.count) by \(mean); the best \(keep) continued"
                    for run in candidate.runs {
                        if let outcome = try stop(run, at: rung, learningRate: candidate.learningRate, reason: reason) {
                            _ = report(.runFinished(id: run.id, outcome: outcome))
                        }
                    }
                }
                let kept = Set(order.prefix(keep).map { alive[index][$0] })
                alive[index] = alive[index].filter(kept.contains)
            }
            try runner.rebuildAggregates()
        }
    }

    /// Whether the run must train (further) to reach `pause`, or to the end when it is nil.
    private func needsTraining(_ run: RunSpec, pausingAt pause: Int?) throws -> Bool {
        guard let pause else {
            // A stopped run here is one an earlier sweep stopped that now continues: nothing else stops a survivor.
            return try layout.outcome(of: run.id).map { [.failed, .stopped].contains($0.status) } ?? true
        }
        if case .notReached = try entry(of: run, at: pause) { return true }
        return false
    }

    private func entry(of run: RunSpec, at rung: Int) throws -> RungEntry {
        guard let outcome = try layout.outcome(of: run.id) else {
            // Paused here: the rung's outcome is written before the metrics.csv that holds the rung's row.
            guard FileManager.default.fileExists(atPath: layout.rungOutcomeFile(run.id, step: rung)),
                  let value = try validationValue(of: run.id, at: rung) else { return .notReached }
            return .reached(value)
        }
        switch outcome.status {
        case .failed: return .notReached
        case .stopped where outcome.stepsCompleted < rung: return .notReached
        case .diverged where outcome.stepsCompleted < rung: return .reached(nil)
        case .completed, .diverged, .stopped: return .reached(try validationValue(of: run.id, at: rung))
        }
    }

    /// The run's validation metric at `step`, from its metrics.csv; nil when it logged none there.
    private func validationValue(of id: String, at step: Int) throws -> Double? {
        let path = layout.runMetricsFile(id)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let table = try CSVTable(data: data, path: path)
        let (stepColumn, splitColumn) = (try table.column("step"), try table.column("split"))
        let (metricColumn, valueColumn) = (try table.column("metric"), try table.column("value"))
        let row = table.records.first { record in
            record.fields[stepColumn] == String(step) && record.fields[splitColumn] == EvalSplit.validation.rawValue
                && record.fields[metricColumn] == metric.name
        }
        guard let row else { return nil }
        guard let value = Double(row.fields[valueColumn]) else {
            throw ResultsError.malformed(path: path, line: row.line, message: "column value is '\(row.fields[valueColumn])', not a number")
        }
        return value
    }

    /// Records the run stopped at `rung` (its outcome had it stopped there, with `reason`), and
    /// returns that outcome; nil for a run that needs no record (it diverged, or an earlier sweep
    /// stopped it here). A run trained past the rung contradicts this ranking: an error.
    private func stop(_ run: RunSpec, at rung: Int, learningRate: String, reason: String) throws -> RunOutcome? {
        let outcome = try layout.outcome(of: run.id)
        let trainedPast = (outcome.map { $0.stepsCompleted > rung } ?? false) || layout.checkpointSteps(run.id).contains { $0 > rung }
        guard !trainedPast else {
            throw SweepError.halvingContradicted(runID: run.id, rung: settings.rungNumber(ofStep: rung)!, step: rung,
                                                 learningRate: learningRate, manifest: runner.manifest.file)
        }
        if let outcome {
            // Diverged before or at the rung (a seed lost), or stopped here already; a ranked run has no other outcome.
            guard outcome.status == .diverged || outcome.status == .stopped else {
                throw ResultsError.malformed(path: layout.outcomeFile(run.id), line: 1, message: "the run is \(outcome.status.rawValue) at "
                                             + "step \(outcome.stepsCompleted), though ranked at the rung of step \(rung); remove the file and resume")
            }
            return nil
        }
        let file = layout.rungOutcomeFile(run.id, step: rung)
        var stopped: RunOutcome
        do {
            stopped = try RunOutcome.decode(FileManager.default.contents(atPath: file) ?? Data())
        } catch {
            throw ResultsError.malformed(path: file, line: 1, message: "not the run's outcome at the rung (\(error)); remove the run's "
                                         + "checkpoints/step-\(rung) folder and resume to train it to the rung again")
        }
        stopped.status = .stopped
        stopped.reason = reason
        try AtomicFile.write(stopped.encoded(), to: layout.outcomeFile(run.id))
        return stopped
    }
}
