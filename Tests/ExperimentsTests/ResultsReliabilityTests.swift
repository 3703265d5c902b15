import Foundation
import Testing
@testable import LoRABenchTensorIO
@testable import LoRABenchResults
@testable import LoRABenchExperiments
import LoRABenchTestSupport

/// Results files a sweep reads back and writes again (issue 25: item 10, U3, U9, U10, U11).
@Suite struct ResultsReliabilityTests {
    /// The tiny task, one run per seed, a checkpoint every 20 of 60 steps.
    static func manifest(seeds: String = "[0]") throws -> Manifest {
        try Manifest(yaml: ExperimentSupport.manifest(sweep: "  variants: [lora]\n  ranks: [2]\n  dropout: 0.1\n  seeds: \(seeds)")
            .replacingOccurrences(of: "  log_interval: 10", with: "  log_interval: 10\n  save_every: 20"), file: "m.yaml")
    }

    /// Item 10: `--resume` with seeds added rebuilds summary.csv, so the compare.csv computed
    /// from the old one goes.
    @Test func resumingWithMoreSeedsRemovesTheStaleCompareCSV() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let layout = ResultsLayout(root: "\(directory)/results")
        try ExperimentSupport.run(try Self.manifest(), into: directory)
        try AtomicFile.write("variant,baseline\n", to: layout.compareFile)
        try ExperimentSupport.run(try Self.manifest(), into: directory, resume: true)
        #expect(FileManager.default.fileExists(atPath: layout.compareFile), "nothing changed: compare.csv still holds")

        try ExperimentSupport.run(try Self.manifest(seeds: "[0, 1]"), into: directory, resume: true)
        #expect(!FileManager.default.fileExists(atPath: layout.compareFile))
    }

    /// U3: a truncated outcome.json names the file, the line and what is wrong.
    @Test func aTruncatedOutcomeNamesTheFile() throws {
        let directory = try ExperimentSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = try Self.manifest()
        try ExperimentSupport.run(manifest, into: directory)
        let layout = ResultsLayout(root: "\(directory)/results"), id = manifest.runs[0].id
        let whole = try #require(FileManager.default.contents(atPath: layout.outcomeFile(id)))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: layout.outcomeFile(id)))
        let lines = String(decoding: whole.prefix(whole.count / 2), as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).count
        let error = try #require(throws: ResultsError.self) { try layout.outcome(of: id) }
        #expect(error.description.hasPrefix("\(layout.outcomeFile(id)):\(lines): the JSON ends before its closing '}' (the file is truncated)"))

        try Data(#"{"run_id": "x", "status": "done"}"#.utf8).write(to: URL(fileURLWithPath: layout.outcomeFile(id)))
        let missing = try #require(throws: ResultsError.self) { try layout.outcome(of: id) }
        #expect(missing.description.hasPrefix("\(layout.outcomeFile(id)):1: "))
    }

    /// U9: a training set smaller than a batch is an error naming the keys, not a silently smaller batch.
    @Test func fewerTrainingExamplesThanABatchIsAnError() throws {
        var settings = GLUETaskSettings(task: .sst2, prompt: SST2.prompt)
        settings.validationExamples = 67_340
        #expect(throws: Never.self) { try GLUEExperiment.checkBatchFits(trainingExamples: 32, batchSize: 32, settings: settings) }
        let error = try #require(throws: GLUETaskError.self) {
            try GLUEExperiment.checkBatchFits(trainingExamples: 9, batchSize: 32, settings: settings)
        }
        #expect(error.description == "Data/sst2/train.tsv: 9 training example(s) are left after task.validation_examples (67340), fewer "
            + "than training.batch_size (32), so every batch would be smaller than settings.yaml says: lower training.batch_size to at "
            + "most 9, or change task.validation_examples (67340)")
    }

    /// Stops the sweep once at `step` and returns the events of the resumed attempt.
    static func stopAndResume(_ manifest: Manifest, into directory: String, at step: Int,
                              between: () throws -> Void = {}) throws -> [ProgressEvent] {
        let runner = ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/results")
        #expect(throws: RunInterrupted.self) { try runner.run(options: SweepOptions(), progress: StopOnceAtStep(step)) }
        try between()
        let recorder = EventRecorder()
        _ = try ExperimentRunner(manifest: manifest, outputDirectory: "\(directory)/results").run(options: SweepOptions(resume: true),
                                                                                                   progress: recorder)
        return recorder.events
    }

    static func expectSameResults(_ a: String, _ b: String, _ manifest: Manifest) throws {
        let one = ResultsLayout(root: "\(a)/results"), other = ResultsLayout(root: "\(b)/results")
        #expect(try ExperimentSupport.records(one.metricsFile) == ExperimentSupport.records(other.metricsFile))
        #expect(try ExperimentSupport.summaryWithoutTiming(one.summaryFile) == ExperimentSupport.summaryWithoutTiming(other.summaryFile))
        for run in manifest.runs {
            #expect(FileManager.default.contents(atPath: one.adapterFile(run.id)) == FileManager.default.contents(atPath: other.adapterFile(run.id)))
        }
    }

    /// U10: a damaged newest checkpoint is reported, and the run resumes from the one before,
    /// to the numbers of an uninterrupted run.
    @Test func aDamagedLastCheckpointFallsBackToThePreviousOne() throws {
        let manifest = try Self.manifest()
        let whole = try ExperimentSupport.temporaryDirectory(), stopped = try ExperimentSupport.temporaryDirectory()
        defer { for directory in [whole, stopped] { try? FileManager.default.removeItem(atPath: directory) } }
        try ExperimentSupport.run(manifest, into: whole)
        let layout = ResultsLayout(root: "\(stopped)/results"), id = manifest.runs[0].id
        let events = try Self.stopAndResume(manifest, into: stopped, at: 50) {
            let state = "\(layout.checkpointDirectory(id, step: 40))/\(TrainingState.fileName)"
            let data = try #require(FileManager.default.contents(atPath: state))
            try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: state))
        }
        let skipped = events.compactMap { event -> Int? in
            if case let .checkpointSkipped(_, step, reason) = event, reason.contains("step-40/\(TrainingState.fileName)") { return step }
            return nil
        }
        #expect(skipped == [40])
        #expect(events.contains { event in if case .runResumed(id, 20) = event { true } else { false } })
        try Self.expectSameResults(whole, stopped, manifest)
    }

    /// U11: a checkpoint holds only the log rows since the previous one, and a resume from a
    /// later checkpoint joins them back to the numbers of an uninterrupted run.
    @Test func checkpointsHoldOnlyTheLogRowsSinceThePreviousOne() throws {
        let manifest = try Self.manifest()
        let whole = try ExperimentSupport.temporaryDirectory(), stopped = try ExperimentSupport.temporaryDirectory()
        defer { for directory in [whole, stopped] { try? FileManager.default.removeItem(atPath: directory) } }
        try ExperimentSupport.run(manifest, into: whole)
        let layout = ResultsLayout(root: "\(whole)/results"), id = manifest.runs[0].id
        var rowSteps: [Int: [Int]] = [:]
        for step in [20, 40] {
            let file = try SafetensorsFile(path: "\(layout.checkpointDirectory(id, step: step))/\(TrainingState.fileName)")
            let log = try JSONSerialization.jsonObject(with: Data(try #require(file.metadata["log"]).utf8)) as? [String: Any]
            let rows = try #require(log?["rows"] as? [[String: Any]])
            rowSteps[step] = rows.compactMap { $0["step"] as? Int }
        }
        #expect(rowSteps[20]?.first == 0 && rowSteps[20]?.last == 20)
        #expect(rowSteps[40]?.min() == 30 && rowSteps[40]?.max() == 40, "the step-40 checkpoint repeats rows of the step-20 one")

        let events = try Self.stopAndResume(manifest, into: stopped, at: 50)
        #expect(events.contains { event in if case .runResumed(id, 40) = event { true } else { false } })
        try Self.expectSameResults(whole, stopped, manifest)
    }
}

/// Keeps every event of a sweep.
final class EventRecorder: ProgressSink {
    private(set) var events: [ProgressEvent] = []

    func handle(_ event: ProgressEvent) -> ProgressAnswer {
        events.append(event)
        return .more
    }
}
