import Foundation

/// Where a sweep's files live:
///
///     <root>/manifest.yaml                the manifest as run
///     <root>/metrics.csv, summary.csv     every finished run, rebuilt from the run folders
///     <root>/cells.csv                    mean, sd and 95 % interval over seeds per cell, rebuilt with them
///     <root>/selection.csv                with a `selection:` block: the learning rate chosen per cell
///     <root>/compare.csv                  written by `lorabench compare`: paired tests against a baseline
///     <root>/compare-rank.csv             written by `lorabench compare --baseline-rank R`: ranks against rank R
///     <root>/steps-to.csv, steps-to-runs.csv  written by `lorabench compare --steps-to X`: steps to reach X, paired and per run
///     <root>/runs/<run-id>/settings.yaml  written first
///     <root>/runs/<run-id>/metrics.csv, adapter.safetensors (or adapter/ in peft's layout)
///     <root>/runs/<run-id>/predictions.csv  classification tasks: the eval split's predictions at the last step
///     <root>/runs/<run-id>/checkpoints/step-<n>/   every save_every steps: the adapter as above
///                               and training_state.safetensors (written whole, then renamed); at a
///                               rung of successive halving also outcome.json, the run's outcome
///                               had it stopped there
///     <root>/runs/<run-id>/outcome.json   written last: the run's completion marker
public struct ResultsLayout: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `results/<experiment>` under the current directory.
    public static func defaultRoot(experiment: String) -> String { "results/\(experiment)" }

    public var manifestCopy: String { path("manifest.yaml") }
    public var metricsFile: String { path("metrics.csv") }
    public var summaryFile: String { path("summary.csv") }
    public var runsDirectory: String { path("runs") }
    public var cellsFile: String { path("cells.csv") }
    public var selectionFile: String { path("selection.csv") }
    public var compareFile: String { path("compare.csv") }
    public var rankComparisonFile: String { path("compare-rank.csv") }
    public var stepsToFile: String { path("steps-to.csv") }
    public var stepsToRunsFile: String { path("steps-to-runs.csv") }

    public func runDirectory(_ id: String) -> String { "\(runsDirectory)/\(id)" }
    public func settingsFile(_ id: String) -> String { "\(runDirectory(id))/settings.yaml" }
    public func runMetricsFile(_ id: String) -> String { "\(runDirectory(id))/metrics.csv" }
    public func adapterFile(_ id: String) -> String { "\(runDirectory(id))/adapter.safetensors" }
    public func predictionsFile(_ id: String) -> String { "\(runDirectory(id))/predictions.csv" }
    /// The adapter in peft's layout (adapter_model.safetensors + adapter_config.json), for tasks
    /// on a pretrained model.
    public func peftAdapterDirectory(_ id: String) -> String { "\(runDirectory(id))/adapter" }
    public func checkpointsDirectory(_ id: String) -> String { "\(runDirectory(id))/checkpoints" }
    public func checkpointDirectory(_ id: String, step: Int) -> String { "\(checkpointsDirectory(id))/step-\(step)" }
    /// The outcome a run paused at a rung of successive halving would have if stopped there: what
    /// becomes its outcome.json when its learning rate is outranked at the rung.
    public func rungOutcomeFile(_ id: String, step: Int) -> String { "\(checkpointDirectory(id, step: step))/outcome.json" }

    /// The steps of the run's complete checkpoints, ascending (a folder is complete once renamed
    /// from its `.partial` name).
    public func checkpointSteps(_ id: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsDirectory(id))) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst("step-".count)) : nil }.sorted()
    }
    public func outcomeFile(_ id: String) -> String { "\(runDirectory(id))/outcome.json" }

    /// The run's outcome if it finished; nil while it has not (or was interrupted).
    /// A damaged file is an error naming it, its line where it can be found, and what is wrong.
    public func outcome(of id: String) throws -> RunOutcome? {
        let path = outcomeFile(id)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do {
            return try RunOutcome.decode(data)
        } catch let error as DecodingError {
            throw Self.outcomeError(error, path: path, text: String(decoding: data, as: UTF8.self))
        }
    }

    /// JSONDecoder reports no position, so the line is found from the text: the last line of a
    /// truncated file, the line of the key at fault.
    private static func outcomeError(_ error: DecodingError, path: String, text: String) -> ResultsError {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let redo = "remove it and run `lorabench run MANIFEST --resume` to redo the run"
        func line(ofKey key: String) -> Int { (lines.firstIndex { $0.contains("\"\(key)\"") } ?? 0) + 1 }
        func keyPath(_ context: DecodingError.Context) -> String { context.codingPath.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .dataCorrupted(context) where context.codingPath.isEmpty:
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { return .malformed(path: path, line: 1, message: "the file is empty; \(redo)") }
            if !trimmed.hasSuffix("}") {
                return .malformed(path: path, line: lines.count, message: "the JSON ends before its closing '}' (the file is truncated); \(redo)")
            }
            return .malformed(path: path, line: 1, message: "not valid JSON; \(redo)")
        case let .dataCorrupted(context):
            let key = keyPath(context)
            return .malformed(path: path, line: line(ofKey: context.codingPath.last!.stringValue),
                              message: "key '\(key)': \(context.debugDescription); \(redo)")
        case let .keyNotFound(key, _):
            return .malformed(path: path, line: 1, message: "the key '\(key.stringValue)' is missing; \(redo)")
        case let .typeMismatch(type, context), let .valueNotFound(type, context):
            let key = keyPath(context)
            return .malformed(path: path, line: line(ofKey: context.codingPath.last?.stringValue ?? key),
                              message: "key '\(key)' does not hold a value of type \(type); \(redo)")
        @unknown default:
            return .malformed(path: path, line: 1, message: "\(error); \(redo)")
        }
    }

    /// Run folders present on disk, finished or not.
    public var runFolders: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    private func path(_ name: String) -> String { "\(root)/\(name)" }

    /// A run's adapter folders in step order, for the run folder `…/runs/<id>`: every checkpoint
    /// (`save_every`), then the final adapter once the run has finished. A run without
    /// checkpoints is an error saying how to get them.
    public static func adapterTimeline(ofRun runFolder: String) throws -> [(step: Int, folder: String)] {
        let folder = URL(fileURLWithPath: runFolder).standardizedFileURL
        let id = folder.lastPathComponent
        let layout = ResultsLayout(root: folder.deletingLastPathComponent().deletingLastPathComponent().path)
        let steps = layout.checkpointSteps(id)
        guard !steps.isEmpty else { throw ResultsError.noCheckpoints(runFolder: runFolder) }
        var timeline = steps.map { ($0, layout.checkpointDirectory(id, step: $0)) }
        if let outcome = try layout.outcome(of: id) { timeline.append((outcome.stepsCompleted, layout.peftAdapterDirectory(id))) }
        return timeline
    }
}
